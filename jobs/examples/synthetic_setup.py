"""A synthetic setup job (the two-stage workflow without a GPU): it "pre-trains" by writing a
checkpoint that holds the centre of the synthetic objective; trials read it with
``synthetic --checkpoint FILE``. Reports the checkpoint's path in its result.

    python -m jobs.examples.synthetic_setup --center x=0.5 --sleep 1 [--fail-attempts N]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from jobs.result import Env, write_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--center", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail-attempts", type=int, default=0, help="first N attempts fail")
    parser.add_argument("--record", help="append one line per run here (tests)")
    args = parser.parse_args(argv)
    attempt = int(os.environ.get(Env.ATTEMPT, "1"))
    if args.record:
        with open(args.record, "a", encoding="utf-8") as fh:
            fh.write(f"setup attempt {attempt} pid {os.getpid()}\n")
    time.sleep(args.sleep)
    if attempt <= args.fail_attempts:
        print("synthetic_setup: failing on purpose", file=sys.stderr)
        return 3
    run_dir = Path(os.environ.get(Env.RUN_DIR, "."))
    checkpoint = run_dir / "checkpoint.json"
    centers = {k: float(v) for k, v in (c.split("=", 1) for c in args.center)}
    checkpoint.write_text(json.dumps({"center": centers}))
    write_result({"checkpoint": str(checkpoint.resolve()), "loss": 0.0})
    return 0


if __name__ == "__main__":
    sys.exit(main())
