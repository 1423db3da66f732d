"""Fault injection: 20 % of jobs fail and 10 % of scheduler commands fail or hang; the experiment
still completes with the same result as a clean run, without duplicate jobs."""
from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.master import Master
from scheduler_adapters.base import JobSpec, JobStatus, Scheduler, SchedulerUnavailable
from scheduler_adapters.local import LocalScheduler

PARAMS = 'x = { values = [0, 1, 2, 3, 4] }\ny = { values = [0, 1, 2] }'


class FlakyScheduler(Scheduler):
    """Wraps a real adapter; a share of its commands fail, hang (then time out) or fail after
    doing their work, as a loaded login node's scheduler commands do."""

    def __init__(self, inner: Scheduler, rate: float, seed: int) -> None:
        self.inner, self.rate, self.rng = inner, rate, random.Random(seed)
        self.injected: list[str] = []
        self.submitted_names: list[str] = []

    def _maybe_fail(self, what: str) -> None:
        roll = self.rng.random()
        if roll < self.rate / 2:
            self.injected.append(f"{what}: failed")
            raise SchedulerUnavailable(f"{what}: Socket timed out on send/recv operation")
        if roll < self.rate:
            self.injected.append(f"{what}: hung")
            time.sleep(0.05)          # the command hangs; the adapter's timeout ends it
            raise SchedulerUnavailable(f"{what} timed out after 60 s")

    def submit(self, spec: JobSpec) -> str:
        self._maybe_fail("submit")
        job_id = self.inner.submit(spec)
        self.submitted_names.append(spec.name)
        if self.rng.random() < self.rate / 2:
            self.injected.append("submit: got in, then failed")
            raise SchedulerUnavailable("sbatch: error: Batch job submission failed: Socket timed out")
        return job_id

    def status(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        self._maybe_fail("status")
        return self.inner.status(job_ids)

    def cancel(self, job_ids: Iterable[str]) -> None:
        self.inner.cancel(job_ids)

    def find_by_name(self, names: Iterable[str]) -> dict[str, str]:
        self._maybe_fail("find_by_name")
        return self.inner.find_by_name(names)


def outcomes(db: Path) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "select p.key, p.round, e.value from points p join evaluations e on e.point_id = p.id "
        "order by p.id").fetchall()


def test_faults_do_not_change_the_result(write_config, tmp_path):
    clean = load_config(write_config("clean.toml", name="clean", parameters=PARAMS, cap=4))
    assert Master(clean).run() == 0
    expected = outcomes(clean.work_dir / "state.db")
    (tmp_path / "work").rename(tmp_path / "clean-work")

    faulty = load_config(write_config(
        "faulty.toml", name="faulty", parameters=PARAMS, cap=4, retries=8,
        command="{python} -m jobs.examples.synthetic --center x=2 --center y=1 --fail-rate 0.2 --seed 4"))
    flaky = FlakyScheduler(LocalScheduler(faulty.work_dir / "scheduler", slots=4), 0.10, seed=7)
    assert Master(faulty, scheduler=flaky).run() == 0
    db = faulty.work_dir / "state.db"
    assert [(k, r) for k, r, _ in outcomes(db)] == [(k, r) for k, r, _ in expected]
    assert [v for *_, v in outcomes(db)] == [v for *_, v in expected]
    con = sqlite3.connect(db)
    failed_jobs = con.execute("select count(*) from attempts where state='failed'").fetchone()[0]
    assert failed_jobs == 4                                   # 4 of 19 jobs failed (seed 4)
    assert len(flaky.injected) >= 5                           # and so did command faults
    # No duplicate job: every attempt name was submitted exactly once.
    assert len(flaky.submitted_names) == len(set(flaky.submitted_names))
    assert con.execute("select count(*) from attempts").fetchone()[0] == len(flaky.submitted_names)
