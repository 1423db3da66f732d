"""Fail fast: stop an experiment whose trials fail the same way before any has succeeded.

A typo in the command, a forgotten result file or a wrong objective key makes every trial fail
alike; running the whole search would cost hundreds of jobs. While no trial attempt has
succeeded, once ``experiment.fail_fast`` distinct points have had a program failure with the
same cause, the master cancels what is in flight, records the experiment as failed with that
reason, and exits non-zero. Infrastructure failures (node failures, vanished jobs) never count;
neither does trouble submitting (the submitter waits that out). One success disarms it for good.

``retry --all-failed`` reopens such an experiment; the failures before it do not count again
(the retry event records the last attempt id it had seen).
"""
from __future__ import annotations

import re
from collections import defaultdict

from sqlalchemy import select

from .context import Context
from .models import Attempt, Event
from .states import AttemptKind, AttemptState, FailureKind

PATH_RE = re.compile(r"\S*/\S*")
REOPEN_EVENTS = ("retry",)


def cause_of(reason: str | None) -> str:
    """What makes two failures 'the same': the reason's first clause, paths blanked (the run
    directory differs per point; the stderr tail after ';' may name the point's values)."""
    first = (reason or "unknown").split("; ", 1)[0]
    return PATH_RE.sub("<path>", first)


class FailFast:
    """Asked once per cycle; answers the failure message once the experiment should stop."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.threshold = ctx.config.model.experiment.fail_fast
        self._armed = self.threshold > 0
        self._after = self._reopened_after() if self._armed else 0

    def verdict(self) -> str | None:
        """The reason to stop now, or None (and None for ever once a trial has succeeded)."""
        if not self._armed:
            return None
        with self.ctx.read() as s:
            trials = select(Attempt).where(Attempt.experiment_id == self.ctx.experiment_id,
                                           Attempt.kind == AttemptKind.TRIAL,
                                           Attempt.id > self._after)
            if s.execute(trials.where(Attempt.state == AttemptState.SUCCEEDED)
                         .limit(1)).first() is not None:
                self._armed = False
                return None
            failed = s.execute(trials.where(Attempt.failure_kind == FailureKind.PROGRAM)
                               .order_by(Attempt.id)).scalars().all()
            points: dict[str, set[int]] = defaultdict(set)
            example: dict[str, str] = {}
            for attempt in failed:
                cause = cause_of(attempt.reason)
                points[cause].add(attempt.point_id or 0)
                example.setdefault(cause, attempt.reason or cause)
        for cause, ids in points.items():
            if len(ids) >= self.threshold:
                return (f"the first {len(ids)} points tried all failed the same way and none "
                        f"succeeded (fail_fast = {self.threshold}): {example[cause]}")
        return None

    def _reopened_after(self) -> int:
        """The last attempt id seen by the latest retry: older failures were fixed."""
        with self.ctx.read() as s:
            datas = s.execute(select(Event.data).where(
                Event.experiment_id == self.ctx.experiment_id,
                Event.kind.in_(REOPEN_EVENTS))).scalars().all()
        return max((int(d["after_attempt"]) for d in datas
                    if isinstance(d, dict) and "after_attempt" in d), default=0)
