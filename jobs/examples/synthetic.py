"""A synthetic trial program for demos and tests.

Objective ``loss``: a quadratic bowl over the trial's parameters, sum of (v - centre)^2, on
log10(v) for parameters named with ``--log``. Deterministic, with optional sleeping and optional,
reproducible failures of several kinds so that every path of the master can be exercised.

    python -m jobs.examples.synthetic --center x=0.5 --log lr --center lr=-2 --sleep 0.1
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

from jobs.result import Env, load_params, write_result

FAIL_MODES = ("exit", "nan", "nothing", "text", "huge", "hang", "missing-key", "binary", "empty",
              "truncated", "directory")


def loss(params: dict[str, object], centers: dict[str, float], logs: set[str]) -> float:
    total = 0.0
    for name, value in sorted(params.items()):
        if isinstance(value, str):
            continue          # a categorical parameter: only selects behaviour
        v = float(value)  # type: ignore[arg-type]
        if name in logs:
            v = math.log10(v)
        total += (v - centers.get(name, 0.0)) ** 2
    return total


def unit_random(*parts: object) -> float:
    """A reproducible number in [0, 1) from the point, attempt and seed."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def fail(mode: str, result_path: Path) -> int:
    if mode == "exit":
        print("synthetic: failing on purpose", file=sys.stderr)
        return 3
    if mode == "nan":
        write_result({"loss": float("nan")}, result_path)
    elif mode == "text":
        write_result({"loss": "not a number"}, result_path)
    elif mode == "missing-key":
        write_result({"other": 1.0}, result_path)
    elif mode == "huge":
        result_path.write_text('{"loss": 1.0, "pad": "' + "x" * (2 << 20) + '"}')
    elif mode == "binary":
        result_path.write_bytes(b"\xff\xfe\x00garbage")
    elif mode == "empty":
        result_path.write_bytes(b"")
    elif mode == "truncated":
        result_path.write_text('{"loss": 1.2')
    elif mode == "directory":
        result_path.mkdir()
    elif mode == "hang":
        time.sleep(3600)
    return 0          # "nothing" and the bad-file modes: exit 0 as if all went well


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--center", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--log", action="append", default=[], metavar="NAME")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds to pretend to work")
    parser.add_argument("--sleep-spread", type=float, default=0.0, metavar="S",
                        help="plus 0..S seconds, drawn per point (durations vary like real jobs)")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="chance an attempt fails")
    parser.add_argument("--fail-attempts", type=int, default=0, help="first N attempts fail")
    parser.add_argument("--fail-when", action="append", default=[], metavar="NAME=VALUE",
                        help="points with this value always fail")
    parser.add_argument("--fail-mode", choices=FAIL_MODES, default="exit")
    parser.add_argument("--checkpoint", help="a setup job's checkpoint with the centre to use")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", help="append 'start end pid params-json' lines here (tests)")
    args = parser.parse_args(argv)

    params = load_params()
    attempt = int(os.environ.get(Env.ATTEMPT, "1"))
    result_path = Path(os.environ.get(Env.RESULT_FILE, "result.json"))
    centers = {k: float(v) for k, v in (c.split("=", 1) for c in args.center)}
    if args.checkpoint:
        centers.update(json.loads(Path(args.checkpoint).read_text())["center"])
    started = time.time()
    pause = args.sleep + args.sleep_spread * unit_random(params, "duration", args.seed)
    if pause:
        time.sleep(pause)
    failing = (attempt <= args.fail_attempts
               or any(str(params.get(k)) == v for k, v in (f.split("=", 1) for f in args.fail_when))
               or unit_random(params, attempt, args.seed) < args.fail_rate)
    if args.record:
        with open(args.record, "a", encoding="utf-8") as fh:
            fh.write(f"{started:.6f} {time.time():.6f} {os.getpid()} "
                     f"{json.dumps(params, sort_keys=True)}\n")
    if failing:
        return fail(args.fail_mode, result_path)
    write_result({"loss": loss(params, centers, set(args.log)), "attempt": attempt}, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
