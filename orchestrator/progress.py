"""Progress of a running master: one line updated in place on a terminal, plain log lines
otherwise (cron, files), nothing but the summary with --quiet."""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .render import measured


class Progress:
    def __init__(self, out: TextIO | None = None, *, quiet: bool = False,
                 line_interval_s: float = 30.0) -> None:
        self.out = out or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.line_interval_s = line_interval_s
        self._last_line = ""
        self._last_time = 0.0
        self._width = 0

    def update(self, snap: dict[str, Any]) -> None:
        if self.quiet:
            return
        stage = f"stage {snap['stage']} " if snap.get("stage") else ""
        best = "-" if snap.get("best") is None else f"{snap['best']:.6g}"
        line = (f"{stage}round {snap['round']}: {snap['running']} running, {snap['pending']} "
                f"pending, {snap['done']} done, best {best}")
        if self.tty:
            pad = max(0, self._width - len(line))
            self.out.write("\r" + line + " " * pad)
            self.out.flush()
            self._width = len(line)
        elif line != self._last_line and time.monotonic() - self._last_time >= self.line_interval_s:
            self.out.write(line + "\n")
            self.out.flush()
            self._last_time = time.monotonic()
        self._last_line = line

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
