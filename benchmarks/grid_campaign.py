"""The campaign the master's cost is measured on (``overhead.py``, ``scale.py``, ``dashboard.py``):
a square grid of near-instant jobs (grid strategy, cap 50, 1-second jobs and polls) through the
production master and store on the simulated cluster, timed around the run."""
from __future__ import annotations

import math
import resource
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import orchestrator.master  # noqa: F401  (loaded here, before any clock starts)
from orchestrator.simulate import Simulation, run_simulation

CAP = 50
CPU_PER_JOB_TARGET_MS = 5.0
RSS_TARGET_MB = 150.0
OBJECTIVE = Path(__file__).resolve().with_name("bowl.py")


def side_of(points: int) -> int:
    """The grid's side: ``points`` rounded up to a square."""
    return math.isqrt(points - 1) + 1


def write_config(directory: Path, side: int, *, name: str, journal: str = "delete",
                 failure_rate: float = 0.0) -> Path:
    """A ``side`` x ``side`` grid; with ``failure_rate`` that share of attempts dies as node
    failures, retried without limit (so every point is measured in the end)."""
    path = directory / f"{name}.toml"
    retries = "infra_retries = 1000" if failure_rate else ""
    path.write_text(textwrap.dedent(f"""\
        [experiment]
        name = "{name}"
        sqlite_journal = "{journal}"
        [objective]
        key = "loss"
        [parameters]
        x = {{ linear = {{ start = 0, stop = {side - 1}, num = {side} }} }}
        y = {{ linear = {{ start = 0, stop = {side - 1}, num = {side} }} }}
        [trial]
        command = "true"
        {retries}
        [search]
        strategy = "grid"
        [scheduler]
        cap = {CAP}
        poll_interval = 1.0
        [simulate]
        duration_mean_hours = {1 / 3600}
        failure_rate = {failure_rate}
        objective = "{OBJECTIVE}:objective"
        """))
    return path


@dataclass(frozen=True)
class Measured:
    """A finished campaign with what it cost this process."""

    sim: Simulation
    cpu_s: float          # time.process_time around the run: the master (and the simulation)
    wall_s: float
    rss_mb: float         # peak RSS of this process so far

    @property
    def attempts(self) -> int:
        return self.sim.scheduler.submits

    @property
    def cpu_per_attempt_ms(self) -> float:
        return 1000 * self.cpu_s / self.attempts


def run_measured(config: Path, work_dir: Path) -> Measured:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    sim = run_simulation(config, work_dir=work_dir)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return Measured(sim, cpu, wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def verdict(ok: bool, target: str) -> str:
    return f"{target}: {'met' if ok else 'MISSED'}"
