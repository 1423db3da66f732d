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
import pstats
import resource
import sys
import tempfile
from collections import Counter
from pathlib import Path

from grid_campaign import (
    CPU_PER_JOB_TARGET_MS,
    RSS_TARGET_MB,
    run_measured,
    side_of,
    verdict,
    write_config,
)
from sqlalchemy import event
from sqlalchemy.engine import Engine

STATUS_PER_CYCLE_TARGET = 2.0


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
    side = side_of(args.jobs)
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        config = write_config(Path(tmp), side, name="overhead", journal=args.journal)
        rss_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        statements = count_statements(Engine) if args.profile else None
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        run = run_measured(config, Path(tmp) / "work")
        if profiler:
            profiler.disable()
        db_bytes = (Path(tmp) / "work" / "state.db").stat().st_size
    sim, jobs, per_job_ms = run.sim, run.attempts, run.cpu_per_attempt_ms
    per_cycle = sim.report["master"]["status_calls_per_cycle"]
    rows = [
        ("jobs", f"{jobs}", ""),
        ("master cycles", f"{sim.master.cycles}", ""),
        ("wall time", f"{run.wall_s:.1f} s", ""),
        ("master CPU time per job", f"{per_job_ms:.2f} ms",
         verdict(per_job_ms <= CPU_PER_JOB_TARGET_MS, f"<= {CPU_PER_JOB_TARGET_MS:g} ms")),
        ("status calls per cycle", f"{per_cycle:.2f}",
         verdict(per_cycle <= STATUS_PER_CYCLE_TARGET, f"<= {STATUS_PER_CYCLE_TARGET:g}")),
        ("database size", f"{db_bytes / 1e6:.1f} MB ({db_bytes / jobs / 1e3:.2f} kB per job)", ""),
        ("peak RSS", f"{run.rss_mb:.0f} MB ({rss_before_mb:.0f} MB before the run: the imports)",
         verdict(run.rss_mb <= RSS_TARGET_MB, f"<= {RSS_TARGET_MB:g} MB")),
    ]
    print("| figure | value | target |\n|---|---|---|")
    for name, value, mark in rows:
        print(f"| {name} | {value} | {mark} |")
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


if __name__ == "__main__":
    sys.exit(main())
