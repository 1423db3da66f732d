"""Dashboard refresh cost on a large experiment: 10,000 evaluations made by the real master on
the simulated cluster (as in ``overhead.py``), then the dashboard's per-refresh read.

Run: ``.venv/bin/python benchmarks/dashboard.py [--jobs N] [--repeat R]``. Measured:

* the read of one refresh (what holds SQLite's shared lock; the master waits for it to
  commit), median of ``--repeat``; target <= 1 s at 10,000 evaluations (the page then waits
  10 times as long as the read before the next refresh, so reads take at most a tenth of the
  time, whatever the size),
* building the Plotly figures from it (after the read), and the JSON the browser downloads.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestrator.dashboard import figures, sources
from orchestrator.simulate import run_simulation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_campaign import side_of, write_config

READ_TARGET_S = 1.0


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="grid size (rounded to a square)")
    parser.add_argument("--repeat", type=int, default=5, help="refreshes timed (median)")
    parser.add_argument("--database", metavar="FILE",
                        help="time this state database instead of simulating a new one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dashboard-") as tmp:
        db = Path(args.database) if args.database else Path(tmp) / "work" / "state.db"
        if not args.database:
            run_simulation(write_config(Path(tmp), side_of(args.jobs), name="overhead"),
                           work_dir=db.parent)
        source = sources.Source("overhead", f"sqlite:///{db.resolve()}")
        reader = sources.Reader()
        try:
            cpu0 = time.process_time()
            read_s, read = timed(lambda: reader.read(source, sources.snapshot), args.repeat)
            read_cpu_s = (time.process_time() - cpu0) / args.repeat
            figures_s, page = timed(lambda: sources.page(read), args.repeat)
        finally:
            reader.close()
    body = json.dumps(page, default=str, allow_nan=False)
    bars = sum(len(t["x"]) for t in page["figures"]["timeline"]["data"])
    ok = read_s <= READ_TARGET_S
    print("| figure | value | target |\n|---|---|---|")
    print(f"| evaluations | {page['progress']['done']} | |")
    print(f"| read of one refresh (shared lock held), median of {args.repeat} | {read_s:.2f} s "
          f"({read_cpu_s:.2f} s CPU) | <= {READ_TARGET_S:g} s: {'met' if ok else 'MISSED'} |")
    print(f"| Plotly figures, after the read | {figures_s:.2f} s | |")
    print(f"| JSON per refresh | {len(body) / 1e6:.1f} MB | |")
    print(f"| timeline bars drawn | {bars} (at most {figures.MAX_TIMELINE_BARS} attempts) | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
