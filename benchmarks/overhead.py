"""Master overhead: 10,000 near-instant jobs through the real master on the simulated cluster.

Run: ``.venv/bin/python benchmarks/overhead.py [--jobs N] [--profile]``. A 100 x 100 grid
(grid strategy, cap 50, 1-second jobs, 1-second polls) goes through the production master and
SQLite store; the jobs cost nothing, so what is measured is the master itself:

* master CPU time per job (``time.process_time`` around ``Master.run``; target <= 5 ms),
* scheduler status calls per master cycle (target <= 2: one batched query per poll),
* the size of the state database, and the peak RSS of this process (target <= 150 MB).

``--profile`` runs the master under cProfile and prints the functions of ``orchestrator/``
that cost most (cumulative), and the SQL statements most often executed.
"""
from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import resource
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

import orchestrator.master  # noqa: F401  (loaded here, before the clock starts)
from orchestrator.simulate import Simulation, run_simulation

CAP = 50
CPU_PER_JOB_TARGET_MS = 5.0
STATUS_PER_CYCLE_TARGET = 2.0
RSS_TARGET_MB = 150.0


def objective(params: dict[str, float]) -> float:
    """A cheap bowl: the jobs must cost nothing so the master's own cost shows."""
    return (params["x"] - 37) ** 2 + (params["y"] - 61) ** 2


def write_config(directory: Path, side: int, journal: str) -> Path:
    path = directory / "overhead.toml"
    path.write_text(textwrap.dedent(f"""\
        [experiment]
        name = "overhead"
        sqlite_journal = "{journal}"
        [objective]
        key = "loss"
        [parameters]
        x = {{ linear = {{ start = 0, stop = {side - 1}, num = {side} }} }}
        y = {{ linear = {{ start = 0, stop = {side - 1}, num = {side} }} }}
        [trial]
        command = "true"
        [search]
        strategy = "grid"
        [scheduler]
        cap = {CAP}
        poll_interval = 1.0
        [simulate]
        duration_mean_hours = {1 / 3600}
        objective = "{Path(__file__).resolve()}:objective"
        """))
    return path


def count_statements(engine_class: type[Engine]) -> Counter[str]:
    """Count every SQL statement any engine executes (first line, parameters aside)."""
    counts: Counter[str] = Counter()

    @event.listens_for(engine_class, "before_cursor_execute")
    def _count(conn, cursor, statement, *_args):  # type: ignore[no-untyped-def]
        counts[" ".join(statement.split())[:110]] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="grid size (rounded to a square)")
    parser.add_argument("--journal", choices=("delete", "wal"), default="delete",
                        help="SQLite journal mode (experiment.sqlite_journal); default: delete")
    parser.add_argument("--profile", action="store_true", help="profile the master (cProfile)")
    args = parser.parse_args()
    side = math.isqrt(args.jobs - 1) + 1
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        config = write_config(Path(tmp), side, args.journal)
        rss_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        statements = count_statements(Engine) if args.profile else None
        profiler = cProfile.Profile() if args.profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        sim: Simulation = run_simulation(config, work_dir=Path(tmp) / "work")
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        db_bytes = (Path(tmp) / "work" / "state.db").stat().st_size
    jobs = sim.scheduler.submits
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_job_ms = 1000 * cpu / jobs
    per_cycle = sim.report["master"]["status_calls_per_cycle"]
    rows = [
        ("jobs", f"{jobs}", ""),
        ("master cycles", f"{sim.master.cycles}", ""),
        ("wall time", f"{wall:.1f} s", ""),
        ("master CPU time per job", f"{per_job_ms:.2f} ms",
         _verdict(per_job_ms <= CPU_PER_JOB_TARGET_MS, f"<= {CPU_PER_JOB_TARGET_MS:g} ms")),
        ("status calls per cycle", f"{per_cycle:.2f}",
         _verdict(per_cycle <= STATUS_PER_CYCLE_TARGET, f"<= {STATUS_PER_CYCLE_TARGET:g}")),
        ("database size", f"{db_bytes / 1e6:.1f} MB ({db_bytes / jobs / 1e3:.2f} kB per job)", ""),
        ("peak RSS", f"{rss_mb:.0f} MB ({rss_before_mb:.0f} MB before the run: the imports)",
         _verdict(rss_mb <= RSS_TARGET_MB, f"<= {RSS_TARGET_MB:g} MB")),
    ]
    print("| figure | value | target |\n|---|---|---|")
    for name, value, verdict in rows:
        print(f"| {name} | {value} | {verdict} |")
    print(f"\nbest {sim.report['best']}, evaluations {sim.report['evaluations']}")
    if profiler:
        print("\nmaster functions by cumulative time (orchestrator/ only):")
        stats = pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative")
        stats.print_stats(r"orchestrator/", 25)
        print("most executed SQL statements:")
        assert statements is not None
        for statement, count in statements.most_common(12):
            print(f"{count:8d}  {statement}")
    return 0


def _verdict(ok: bool, target: str) -> str:
    return f"{target}: {'met' if ok else 'MISSED'}"


if __name__ == "__main__":
    sys.exit(main())
