"""Watching a running experiment from a terminal: ``status --watch`` and ``events --follow``.

Both only read (one short read per refresh, like any read command) and end with exit 0 on
Ctrl-C. On a terminal ``--watch`` redraws in place, as ``watch(1)`` does; into a pipe or file it
writes one block per refresh. Both stop by themselves once the experiment has ended and no
master is left to write to it.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import exitcodes, queries
from .errors import NoExperiment
from .models import Event, Experiment, Lease
from .output import terminal_width
from .render import fit

HOME_AND_CLEAR = "\x1b[H\x1b[J"     # cursor to the top left, erase to the end of the screen
FOLLOW_POLL_S = 1.0
KIND_WIDTH = 14                     # the event kinds are short words: finished, retry, ...


def is_tty(out: TextIO) -> bool:
    return bool(getattr(out, "isatty", lambda: False)())


def ended(state: str, master: dict[str, Any] | None) -> bool:
    """Nothing more will change: the experiment is over and no master is still winding down."""
    return state in queries.ENDED and not (master and master["alive"])


def last_heartbeat(s: Session, exp: Experiment) -> datetime | None:
    """When a master last said it was alive (None: none ever ran)."""
    lease = s.get(Lease, exp.id)
    return None if lease is None else lease.heartbeat_at


# ---- status --watch ----------------------------------------------------------------------------

def watch(read: Callable[[], tuple[str, bool]], interval: float, title: str | None, *,
          out: TextIO | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Show ``read()``'s text every ``interval`` seconds until it says the experiment ended
    (its second value) or Ctrl-C; under a header line naming ``title``, unless None."""
    out = out or sys.stdout
    tty = is_tty(out)
    try:
        while True:
            try:
                text, finished = read()
            except NoExperiment as exc:
                text, finished = f"waiting: {exc}", False
            lines = [] if title is None else [
                fit(f"every {interval:g} s: {title}    {datetime.now():%H:%M:%S}",
                    terminal_width()), ""]
            shown = "\n".join([*lines, text])
            if tty:
                out.write(HOME_AND_CLEAR + shown + "\n")
            else:               # a blank line between blocks people read; none in a data stream
                out.write(shown + ("\n\n" if title else "\n"))
            out.flush()
            if finished:
                return exitcodes.OK
            sleep(interval)
    except KeyboardInterrupt:
        return exitcodes.OK


def add_watch(p: argparse.ArgumentParser) -> None:
    p.add_argument("--watch", nargs="?", type=float, const=2.0, default=None, metavar="SECONDS",
                   help="refresh every SECONDS (default 2) until the experiment ends or Ctrl-C")


# ---- events --follow ---------------------------------------------------------------------------

def events_since(s: Session, exp: Experiment, after_id: int, limit: int | None
                 ) -> tuple[list[dict[str, Any]], int, str, dict[str, Any] | None]:
    """Events newer than ``after_id`` (the last ``limit`` of them when given), the newest id,
    and the experiment's state and master, all in one read."""
    query = select(Event).where(Event.experiment_id == exp.id, Event.id > after_id)
    if limit is None:
        rows = list(s.execute(query.order_by(Event.id)).scalars())
    else:
        rows = list(reversed(s.execute(query.order_by(Event.id.desc()).limit(limit)).scalars()
                             .all()))
    records = [{"at": queries.iso(e.at), "kind": e.kind, "message": e.message, "data": e.data}
               for e in rows]
    newest = rows[-1].id if rows else after_id
    return records, newest, exp.state, queries.master_info(s, exp)


def event_line(event: dict[str, Any], fmt: str, width: int | None) -> str:
    """One event as a line of the stream in ``fmt`` (json: one JSON document per line)."""
    if fmt == "json":
        return json.dumps(event, sort_keys=True, default=str)
    cells = [event["at"] or "", event["kind"], event["message"]]
    if fmt == "csv":
        line = io.StringIO()
        csv.writer(line, lineterminator="").writerow(cells)
        return line.getvalue()
    if fmt == "value":
        return "\t".join(cells)
    return fit(f"{event['at']}  {event['kind']:<{KIND_WIDTH}}  {event['message']}", width)


def follow(target: str, fmt: str, limit: int, *, wide: bool = False,
           out: TextIO | None = None, sleep: Callable[[float], None] = time.sleep,
           poll_s: float = FOLLOW_POLL_S) -> int:
    """Print the last ``limit`` events, then each new one as it is recorded, until the
    experiment has ended (and its master exited) or Ctrl-C."""
    out = out or sys.stdout
    width = None if wide else terminal_width()
    after, first, said_no_master = 0, True, False
    if fmt == "csv":
        out.write("at,kind,message\n")
    try:
        while True:
            rows, after, state, master = queries.query(
                target, partial(events_since, after_id=after, limit=limit if first else None))
            first = False
            for row in rows:
                out.write(event_line(row, fmt, width) + "\n")
            alive = bool(master and master["alive"])
            if not alive and not said_no_master and state not in queries.ENDED and fmt == "table":
                out.write(f"(no master is running; {state} is the last known state: waiting "
                          "for a master to resume it, Ctrl-C to stop)\n")
                said_no_master = True
            said_no_master = said_no_master and not alive
            out.flush()
            if ended(state, master):
                return exitcodes.OK
            sleep(poll_s)
    except KeyboardInterrupt:
        return exitcodes.OK
