"""Scale: a 10,000-evaluation campaign with 30,000 attempts, and `status` beside it.

Run: ``.venv/bin/python benchmarks/scale.py [--points N] [--failure-rate F]``. A 100 x 100 grid
(grid strategy, cap 50, 1-second jobs on the simulated cluster) runs through the production
master and SQLite store, with two thirds of all attempts failing as node failures, so that the
10,000 points take about 30,000 attempts. Meanwhile a separate process asks for the status, as
a user at another terminal would, every ``--probe-every`` seconds of wall time, and records how
long each answer took. Reported:

* master CPU time per attempt and per evaluation (target <= 5 ms per job), peak RSS (<= 150 MB);
* status answer times while the campaign grows (target < 1 s throughout), and at the end, both
  the query alone and the whole ``orchestrator status`` command (interpreter start included);
* ``history --json`` at the end, for comparison.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grid_campaign import (
    CPU_PER_JOB_TARGET_MS,
    RSS_TARGET_MB,
    run_measured,
    side_of,
    verdict,
    write_config,
)

from orchestrator import queries
from orchestrator.states import ExperimentState

ROOT = Path(__file__).resolve().parents[1]
STATUS_TARGET_S = 1.0
MILESTONES = (1_000, 5_000, 10_000)      # points done: where the status answer time is shown


def timed_status(url: str) -> tuple[float, float, int, int]:
    """Wall and CPU seconds the status query took (on a shared machine the CPU time is the
    steadier figure), and the points done and attempts it reported."""
    wall, cpu = time.perf_counter(), time.process_time()
    data = queries.query(url, queries.status)
    return (time.perf_counter() - wall, time.process_time() - cpu,
            data["evaluations"] + data["failed_points"], data["attempts"])


def probe(url: str, every: float, out: Path) -> int:
    """The status-asking process: one JSON line per answer, until the campaign has ended."""
    with open(out, "a", encoding="utf-8") as fh:
        while True:
            try:
                seconds, cpu, done, attempts = timed_status(url)
                state = queries.query(url, lambda s, exp: exp.state)
            except Exception as exc:  # noqa: BLE001  (the database may not exist yet: ask again)
                fh.write(json.dumps({"error": str(exc).splitlines()[0]}) + "\n")
                state = None
            else:
                fh.write(json.dumps({"s": seconds, "cpu": cpu, "done": done,
                                     "attempts": attempts}) + "\n")
            fh.flush()
            if state == ExperimentState.FINISHED:
                return 0
            time.sleep(every)


def cli_seconds(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000,
                        help="grid size (rounded to a square)")
    parser.add_argument("--failure-rate", type=float, default=2 / 3)
    parser.add_argument("--probe-every", type=float, default=5.0, help="wall seconds between asks")
    parser.add_argument("--probe", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        return probe(args.probe[0], args.probe_every, Path(args.probe[1]))
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        work = Path(tmp) / "work"
        config = write_config(Path(tmp), side_of(args.points), name="scale",
                              failure_rate=args.failure_rate)
        url = f"sqlite:///{work / 'state.db'}"
        answers = Path(tmp) / "answers.jsonl"
        prober = subprocess.Popen([sys.executable, __file__, "--probe", url, str(answers),
                                   "--probe-every", str(args.probe_every)], cwd=ROOT)
        run = run_measured(config, work)
        prober.wait(timeout=120)
        probes = [json.loads(line) for line in answers.read_text().splitlines()]
        final_query, final_cpu, done, attempts = timed_status(url)
        status_cli = cli_seconds("status", str(work / "state.db"))
        history_cli = cli_seconds("history", str(work / "state.db"), "--json")
    answered = [p for p in probes if "s" in p]
    slowest = max(answered, key=lambda p: p["s"]) if answered else None
    most_cpu = max((p["cpu"] for p in answered), default=0.0)
    per_attempt = 1000 * run.cpu_s / attempts
    rows = [
        ("points done / attempts", f"{done} / {attempts}", ""),
        ("wall time of the campaign",
         f"{run.wall_s:.0f} s (simulated makespan {run.sim.report['makespan_hours']:.1f} h)", ""),
        ("master CPU per attempt",
         f"{per_attempt:.2f} ms ({1000 * run.cpu_s / done:.2f} ms per point)",
         verdict(per_attempt <= CPU_PER_JOB_TARGET_MS, f"<= {CPU_PER_JOB_TARGET_MS:g} ms")),
        ("peak RSS", f"{run.rss_mb:.0f} MB",
         verdict(run.rss_mb <= RSS_TARGET_MB, f"<= {RSS_TARGET_MB:g} MB")),
        ("status answers during the run", f"{len(answered)}", ""),
        ("slowest status answer during the run",
         "-" if slowest is None else f"{slowest['s']:.3f} s at {slowest['done']} points / "
                                     f"{slowest['attempts']} attempts",
         "" if slowest is None
         else verdict(slowest["s"] < STATUS_TARGET_S, f"< {STATUS_TARGET_S:g} s")),
        *[(f"status answer near {points:,} points", _answer_near(answered, points), "")
          for points in MILESTONES if points <= done],
        ("most CPU of a status answer during the run", f"{most_cpu:.3f} s", ""),
        ("status query at the end", f"{final_query:.3f} s ({final_cpu:.3f} s CPU)",
         verdict(final_query < STATUS_TARGET_S, f"< {STATUS_TARGET_S:g} s")),
        ("`orchestrator status` at the end (whole command)", f"{status_cli:.2f} s", ""),
        ("`orchestrator history --json` at the end", f"{history_cli:.2f} s", ""),
    ]
    print("| figure | value | target |\n|---|---|---|")
    for name, value, mark in rows:
        print(f"| {name} | {value} | {mark} |")
    return 0


def _answer_near(answered: list[dict[str, float]], points: int) -> str:
    """The status answer given when the campaign was nearest ``points`` points done."""
    if not answered:
        return "-"
    near = min(answered, key=lambda p: abs(p["done"] - points))
    return f"{near['s']:.3f} s ({near['cpu']:.3f} s CPU) at {near['done']:.0f} points"


if __name__ == "__main__":
    sys.exit(main())
