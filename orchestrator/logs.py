"""``orchestrator logs CONFIG POINT [--attempt N] [--follow]``: a trial's output and run directory.

POINT is what ``retry`` takes (``x=1,y=0.5`` or a grid index ``3,5,5``), or ``setup`` for the
setup job. The attempt's record comes from the database (read-only, like ``status``); its
stdout and stderr are read from the run directory, where the adapters write them.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import exitcodes, queries
from .admin_commands import point_key_of
from .errors import UsageError
from .models import Attempt, Experiment, Point
from .outcomes import STDERR_FILE, STDOUT_FILE
from .output import add_target
from .render import block
from .render import point as point_text
from .states import AttemptKind, AttemptState

SETUP_POINT = "setup"
FOLLOW_POLL_S = 1.0
DEFAULT_TAIL = 200


def logs_args(p: argparse.ArgumentParser) -> None:
    add_target(p)
    p.add_argument("point", metavar="POINT",
                   help="parameter values 'x=1,y=0.5', a grid index '3,5,5', or 'setup'")
    p.add_argument("--attempt", type=int, metavar="N", help="attempt N (default: the latest)")
    p.add_argument("--tail", type=int, default=DEFAULT_TAIL, metavar="LINES",
                   help=f"the last LINES of each file (default {DEFAULT_TAIL}; 0: all)")
    p.add_argument("--follow", action="store_true",
                   help="keep printing new output until the attempt ends")


def attempt_record(s: Session, exp: Experiment, point: str, number: int | None
                   ) -> dict[str, Any]:
    """The chosen attempt of a point (or of the setup job), with its point and run directory."""
    query = select(Attempt).where(Attempt.experiment_id == exp.id)
    if point == SETUP_POINT:
        query, params = query.where(Attempt.kind == AttemptKind.SETUP), None
    else:
        key = point_key_of(point, exp.definition)
        row = s.execute(select(Point).where(Point.experiment_id == exp.id,
                                            Point.key == key)).scalars().first()
        if row is None:
            raise UsageError(f"point {point!r} was never asked for by the search")
        query, params = query.where(Attempt.point_id == row.id), row.params
    attempts = s.execute(query.order_by(Attempt.number)).scalars().all()
    if not attempts:
        raise UsageError(f"point {point!r} has no attempt yet")
    chosen = attempts[-1] if number is None else next(
        (a for a in attempts if a.number == number), None)
    if chosen is None:
        numbers = ", ".join(str(a.number) for a in attempts)
        raise UsageError(f"point {point!r} has attempts {numbers}, not {number}")
    return {"params": params, "attempt": chosen.number, "attempts": len(attempts),
            "state": chosen.state, "job_id": chosen.job_id, "node": chosen.node,
            "reason": chosen.reason, "run_dir": chosen.run_dir,
            "active": chosen.state in AttemptState.ACTIVE}


def logs(args: argparse.Namespace) -> int:
    if args.attempt is not None and args.attempt < 1:
        raise UsageError("--attempt must be at least 1")
    if args.tail < 0:
        raise UsageError("--tail must not be negative")

    def read() -> dict[str, Any]:
        return queries.query(args.target,
                             lambda s, exp: attempt_record(s, exp, args.point, args.attempt))
    record = read()
    print(block([
        ("point", SETUP_POINT if record["params"] is None else point_text(record["params"])),
        ("attempt", f"{record['attempt']} of {record['attempts']}"),
        ("state", record["state"] + (f" ({record['reason']})" if record["reason"] else "")),
        ("job", f"{record['job_id'] or '-'}" + (f" on {record['node']}" if record["node"] else "")),
        ("run dir", record["run_dir"]),
    ], width=None))
    run_dir = Path(record["run_dir"])
    files = [(run_dir / STDOUT_FILE, "stdout"), (run_dir / STDERR_FILE, "stderr")]
    offsets = {}
    for path, label in files:
        print(f"--- {label}: {path}" + ("" if path.exists() else " (not written yet)"))
        offsets[path] = show_file(path, args.tail, sys.stdout)
    if args.follow:
        follow(files, offsets, lambda: read()["active"])
    return exitcodes.OK


def show_file(path: Path, tail: int, out: TextIO) -> int:
    """Print the last ``tail`` lines (all when 0); return the offset read up to."""
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    lines = data.decode("utf-8", errors="replace").splitlines()
    shown = lines if tail == 0 else lines[-tail:]
    if len(shown) < len(lines):
        out.write(f"[... {len(lines) - len(shown)} earlier lines; --tail 0 shows all]\n")
    out.write("".join(line + "\n" for line in shown))
    out.flush()
    return len(data)


def follow(files: list[tuple[Path, str]], offsets: dict[Path, int], active: Any) -> None:
    """Print what is appended to the files, labelled, until the attempt is no longer active."""
    running = True
    while running:
        running = active()            # read once more after the attempt ended: the last lines
        for path, label in files:
            offsets[path] = print_new(path, label, offsets.get(path, 0), sys.stdout,
                                      whole=not running)
        if running:
            time.sleep(FOLLOW_POLL_S)


def print_new(path: Path, label: str, offset: int, out: TextIO, *, whole: bool) -> int:
    """Print the complete lines appended since ``offset`` (``whole``: the unfinished one too)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return offset
    if not whole:
        data = data[:data.rfind(b"\n") + 1]
    if data:
        text = data.decode("utf-8", errors="replace")
        out.write("".join(f"[{label}] {line}\n" for line in text.splitlines()))
        out.flush()
    return offset + len(data)
