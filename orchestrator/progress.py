"""Progress of a running master: one line updated in place on a terminal, plain log lines
otherwise (cron, files), nothing but the summary with --quiet.

The line: ``stage 2 (level 1), round 5: 40/144 done, 4 running, 2 pending, best 0.25 at x=1
y=2, about 3 min left``. The master's snapshot (each cycle) gives the counts; the remaining
work comes from the read model (``queries.status``, the numbers `status` shows), read again
as results come in (see ``_refresh``) through the ``overview`` function the caller passes.
"""
from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from .errors import OrchestratorError
from .render import duration, fit, measured, number

Overview = Callable[[], dict[str, Any]]


class Progress:
    def __init__(self, out: TextIO | None = None, *, quiet: bool = False,
                 line_interval_s: float = 30.0, overview: Overview | None = None,
                 estimate_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.line_interval_s = line_interval_s
        self.overview = overview
        self.estimate_interval_s = estimate_interval_s
        self.clock = clock
        self._known: dict[str, Any] = {}
        self._known_at: float | None = None
        self._known_for: tuple[int | None, int] = (None, 0)     # (stage, done) when read
        self._read_s = 0.0
        self._last_line = ""
        self._last_time: float | None = None
        self._width = 0

    def update(self, snap: dict[str, Any]) -> None:
        if self.quiet:
            return
        line = self.line(snap)
        if self.tty:
            line = fit(line, shutil.get_terminal_size((100, 24)).columns - 1)
            pad = max(0, self._width - len(line))
            self.out.write("\r" + line + " " * pad)
            self.out.flush()
            self._width = len(line)
        elif line != self._last_line and (self._last_time is None or
                                          self.clock() - self._last_time >= self.line_interval_s):
            self.out.write(line + "\n")
            self.out.flush()
            self._last_time = self.clock()
        self._last_line = line

    def line(self, snap: dict[str, Any]) -> str:
        known = self._refresh(snap.get("stage"), snap["done"])
        stage = ""
        if snap.get("stage"):
            level = f" (level {known['level']})" if known.get("stage") == snap["stage"] else ""
            stage = f"stage {snap['stage']}{level}, "
        done = snap["done"]
        estimate = known.get("estimate") or {}
        left = estimate.get("remaining_points")
        if left is not None:       # the total as of the last read; done is this cycle's
            total = f"{done}/{known['evaluations'] + known['failed_points'] + left}"
        else:
            total = f"{done}"
        parts = [f"{stage}round {snap['round']}: {total} done"]
        if estimate.get("remaining_stages_min"):
            n = estimate["remaining_stages_min"]
            parts.append(f"at least {n} stage{'s' if n != 1 else ''} left")
        if estimate.get("remaining_s") is not None:
            parts.append(f"about {duration(self._left_now(estimate['remaining_s']))} left")
        # The best point last: on a narrow terminal it is what gets cut.
        parts += [f"{snap['running']} running", f"{snap['pending']} pending",
                  f"best {self._best(snap, known)}"]
        return ", ".join(parts)

    def _left_now(self, remaining_s: float) -> float:
        """The estimate as read, less the time since it was read."""
        since = 0.0 if self._known_at is None else self.clock() - self._known_at
        return max(0.0, remaining_s - since)

    @staticmethod
    def _best(snap: dict[str, Any], known: dict[str, Any]) -> str:
        best = known.get("best")
        if best is not None and best["value"] == snap.get("best"):
            return measured(best["params"], best["value"])
        return "-" if snap.get("best") is None else number(snap["best"])

    def _refresh(self, stage: int | None, done: int) -> dict[str, Any]:
        """The read model's view, read again when a stage ends, or when results came in and
        enough time has passed: estimate_interval_s, or 20 times what the last read took, so
        that reading never costs the master more than a twentieth of its time."""
        if self.overview is None:
            return {}
        now = self.clock()
        wait = max(self.estimate_interval_s, 20 * self._read_s)
        if (self._known_at is None or stage != self._known_for[0]
                or (done != self._known_for[1] and now - self._known_at >= wait)):
            self._known_at, self._known_for = now, (stage, done)
            try:
                self._known = self.overview()
            except (OrchestratorError, SQLAlchemyError):
                pass               # a progress line is not worth stopping the master for
            self._read_s = self.clock() - now
        return self._known

    def message(self, text: str) -> None:
        self._end_line()
        self.out.write(text + "\n")
        self.out.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        self._end_line()
        best = summary.get("best")
        if best is None:
            self.out.write(f"finished {summary['experiment']}: no successful evaluation\n")
        else:
            self.out.write(f"finished {summary['experiment']}: best "
                           f"{measured(best['params'], best['value'])} "
                           f"({summary['evaluations']} evaluations, "
                           f"{summary['failed_points']} failed points, "
                           f"{summary['wall_seconds']:.0f} s)\n")
        self.out.flush()

    def _end_line(self) -> None:
        if self.tty and self._width:
            self.out.write("\n")
            self._width = 0
