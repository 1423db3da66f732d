"""A simulated batch cluster on a virtual clock, for campaign simulations and overhead benchmarks.

Nothing runs: a job occupies one of ``cap`` slots for a duration drawn from a seeded
distribution, fails with a seeded probability per attempt, and otherwise "measures" its point by
calling ``objective(params)`` and writing the result file the master reads, at the job's virtual
end time (lazily: when the scheduler is next asked anything at or after that time). Jobs beyond
the cap wait ``PENDING`` and start first in, first out.

Draws are seeded by (seed, parameters, attempt number) (`job_identity`),
so the same attempt of the same point gets the same duration and the same fate whatever order
the master submits in: two runs that differ only in submission order (speculation off or on)
face the same cluster.

:class:`VirtualClock` is the master's clock and sleep. ``sleep(dt)`` stands for "poll again in
dt seconds"; when no job starts or ends before then, the polls in between would all see the same
answers, so it skips them and lands on the first poll tick (now + k * dt) at or after the next job
event. The master thus observes every event at the tick a real master polling every dt seconds
would, and a campaign of hundreds of 9-hour jobs takes as many master cycles as it has events.
"""
from __future__ import annotations

import heapq
import json
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ._files import write_atomic
from .base import JobSpec, JobState, JobStatus, Scheduler

# 2026-01-01T00:00:00Z: a fixed start, so that simulated timestamps are reproducible.
EPOCH = 1_767_225_600.0
RESULT_ENV = "ORCH_RESULT_FILE"      # the result-file protocol (jobs/result.py), restated here
PARAMS_FILE = "params.json"          # because adapters do not import jobs/
FAILURE_REASON = "simulated node failure"

Objective = Callable[[Mapping[str, Any]], float]
Distribution = Literal["normal", "lognormal"]


class VirtualClock:
    """Simulated time in epoch seconds; ``sleep`` jumps instead of waiting."""

    def __init__(self, start: float = EPOCH) -> None:
        self._now = float(start)
        self.next_event: Callable[[], float | None] = lambda: None   # set by the scheduler
        self.sleeps = 0

    def now(self) -> float:
        return self._now

    def advance_to(self, t: float) -> None:
        if t < self._now:
            raise ValueError(f"the virtual clock cannot go back ({t} < {self._now})")
        self._now = float(t)

    def sleep(self, dt: float) -> None:
        """Advance to the next poll tick at which something may have changed (see module doc)."""
        if dt <= 0:
            raise ValueError(f"sleep needs a positive interval, got {dt}")
        self.sleeps += 1
        event = self.next_event()
        if event is None or event <= self._now + dt:
            self.advance_to(self._now + dt)
        else:
            self.advance_to(self._now + math.ceil((event - self._now) / dt) * dt)


@dataclass
class SimJob:
    job_id: str
    name: str
    result_file: Path
    params: dict[str, Any]
    submitted: float
    duration: float          # seconds the job runs (until its failure or time limit, if any)
    fate: JobState           # how it ends: SUCCEEDED (if the objective works), NODE_FAIL, TIMEOUT
    state: JobState = JobState.PENDING
    started: float | None = None
    ended: float | None = None
    reason: str | None = None

    @property
    def end_time(self) -> float:
        assert self.started is not None
        return self.started + self.duration


def job_identity(spec: JobSpec) -> str:
    """What a job is, independent of run directories and of the random experiment instance in
    job names: its parameters and attempt number. Draws keyed by it repeat across simulations."""
    keys = [f"{k}={v}" for k, v in sorted(spec.env.items())
            if k.startswith("ORCH_PARAM_") or k == "ORCH_ATTEMPT"]
    return ";".join(keys) if keys else spec.name     # a job not from the master: its name


class SimulatedScheduler(Scheduler):
    """A cluster of ``cap`` identical slots on a :class:`VirtualClock` (see module doc)."""

    kind = "simulated"

    def __init__(self, clock: VirtualClock, objective: Objective, *, result_key: str,
                 cap: int, duration_mean_s: float, duration_spread: float = 0.0,
                 distribution: Distribution = "normal", failure_rate: float = 0.0,
                 seed: int = 0) -> None:
        if cap < 1:
            raise ValueError(f"cap must be >= 1, got {cap}")
        if duration_mean_s <= 0:
            raise ValueError(f"the mean duration must be > 0, got {duration_mean_s}")
        if duration_spread < 0:
            raise ValueError(f"the duration spread must be >= 0, got {duration_spread}")
        if not 0 <= failure_rate < 1:
            raise ValueError(f"the failure rate must be in [0, 1), got {failure_rate}")
        if distribution not in ("normal", "lognormal"):
            raise ValueError(f"distribution must be normal or lognormal, got {distribution!r}")
        self.clock = clock
        self.objective = objective
        self.result_key = result_key
        self.cap = cap
        self.mean = float(duration_mean_s)
        self.spread = float(duration_spread)
        self.distribution = distribution
        self.failure_rate = float(failure_rate)
        self.seed = seed
        self.jobs: dict[str, SimJob] = {}
        self._by_name: dict[str, str] = {}
        self._queue: deque[SimJob] = deque()
        self._running: list[tuple[float, int, SimJob]] = []    # heap of (end time, id, job)
        self.status_calls = 0
        self.submits = 0
        self.peak_running = 0
        clock.next_event = self.next_event

    # ---- the Scheduler interface -----------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        self._advance()
        self.submits += 1
        job_id = str(self.submits)
        duration, fate = self._draw(job_identity(spec))
        if spec.time_limit_s is not None and duration > spec.time_limit_s:
            duration, fate = float(spec.time_limit_s), JobState.TIMEOUT
        params = json.loads((spec.workdir / PARAMS_FILE).read_text(encoding="utf-8"))
        result_file = Path(spec.env.get(RESULT_ENV) or spec.workdir / "result.json")
        job = SimJob(job_id, spec.name, result_file, params, self.clock.now(), duration, fate)
        self.jobs[job_id] = job
        self._by_name[spec.name] = job_id
        self._queue.append(job)
        self._start_queued(self.clock.now())
        return job_id

    def status(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        self.status_calls += 1
        self._advance()
        return {job_id: self._status_of(job_id) for job_id in job_ids}

    def cancel(self, job_ids: Iterable[str]) -> None:
        self._advance()
        now = self.clock.now()
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is None or job.state.terminal:
                continue
            if job.state is JobState.PENDING:
                self._queue.remove(job)
            else:
                self._running = [r for r in self._running if r[2] is not job]
                heapq.heapify(self._running)
            job.state, job.ended, job.reason = JobState.CANCELLED, now, "cancelled"
        self._start_queued(now)

    def find_by_name(self, names: Iterable[str]) -> dict[str, str]:
        self._advance()
        return {n: self._by_name[n] for n in names if n in self._by_name}

    def user_active_jobs(self) -> int:
        """The virtual cluster runs the experiment's jobs only."""
        self._advance()
        return len(self._queue) + len(self._running)

    # ---- what the simulation tells ---------------------------------------------------------------
    def next_event(self) -> float | None:
        """When the next job ends (and so the next queued one starts); None if nothing runs."""
        return self._running[0][0] if self._running else None

    @property
    def busy_seconds(self) -> float:
        """Slot-seconds used so far by every job, finished or not (the GPU-hours bill)."""
        now = self.clock.now()
        return sum((job.ended if job.ended is not None else now) - job.started
                   for job in self.jobs.values() if job.started is not None)

    # ---- internals -------------------------------------------------------------------------------
    def _draw(self, identity: str) -> tuple[float, JobState]:
        rng = random.Random(f"{self.seed}:{identity}")
        if self.spread == 0:
            duration = self.mean
        elif self.distribution == "lognormal":
            sigma = math.sqrt(math.log1p(self.spread ** 2))
            duration = rng.lognormvariate(math.log(self.mean) - sigma ** 2 / 2, sigma)
        else:
            # Clipped at 10 % of the mean: a job never takes no time at all.
            duration = max(0.1 * self.mean, rng.gauss(self.mean, self.spread * self.mean))
        if rng.random() < self.failure_rate:
            return duration * rng.random(), JobState.NODE_FAIL   # it dies along the way
        return duration, JobState.SUCCEEDED

    def _advance(self) -> None:
        """Play every job end up to now, in time order, starting queued jobs on the freed slots."""
        now = self.clock.now()
        while self._running and self._running[0][0] <= now:
            end, _, job = heapq.heappop(self._running)
            self._finish(job, end)
            self._start_queued(end)

    def _start_queued(self, at: float) -> None:
        while self._queue and len(self._running) < self.cap:
            job = self._queue.popleft()
            job.state, job.started = JobState.RUNNING, at
            heapq.heappush(self._running, (job.end_time, int(job.job_id), job))
        self.peak_running = max(self.peak_running, len(self._running))

    def _finish(self, job: SimJob, end: float) -> None:
        job.ended = end
        if job.fate is JobState.NODE_FAIL:
            job.state, job.reason = JobState.NODE_FAIL, FAILURE_REASON
            return
        if job.fate is JobState.TIMEOUT:
            job.state, job.reason = JobState.TIMEOUT, "simulated time limit"
            return
        try:
            value = float(self.objective(job.params))
        except Exception as exc:  # the "program" failed: the user's objective raised
            job.state, job.reason = JobState.FAILED, f"objective raised {type(exc).__name__}: {exc}"
            return
        # no fsync: a simulated campaign writes thousands of these and survives no reboot
        write_atomic(job.result_file, json.dumps({self.result_key: value}), fsync=False)
        job.state = JobState.SUCCEEDED

    def _status_of(self, job_id: str) -> JobStatus:
        job = self.jobs.get(job_id)
        if job is None:
            return JobStatus(job_id, JobState.UNKNOWN)
        exit_code = None
        if job.state is JobState.SUCCEEDED:
            exit_code = 0
        elif job.state is JobState.FAILED:
            exit_code = 1
        return JobStatus(job_id, job.state, exit_code=exit_code, reason=job.reason,
                         node=None if job.started is None else "sim",
                         started_at=job.started, ended_at=job.ended)

