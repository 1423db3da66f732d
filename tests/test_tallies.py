"""The database-side sums behind ``status`` agree with a row-by-row count, on SQLite and
PostgreSQL (the two dialects compute time differences differently)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session

from orchestrator import tallies
from orchestrator.models import Attempt, Experiment
from orchestrator.store import create_schema, make_engine
from tests.test_postgres import pg_url  # noqa: F401  (the fixture)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
RUNS = [(0.0, 90.5), (10.0, None), (20.0, 20.0), (30.0, 25.0), (None, None)]   # (start, end) s


def busy_of(url: str) -> float:
    engine = make_engine(url)
    create_schema(engine)
    with Session(engine) as s, s.begin():
        exp = Experiment(name="t", fingerprint="f", instance="i", definition={}, settings={})
        s.add(exp)
        s.flush()
        experiment_id = exp.id
        for n, (start, end) in enumerate(RUNS):
            s.add(Attempt(experiment_id=experiment_id, number=1, name=f"t-a{n}", run_dir="/x",
                          started_at=None if start is None else T0 + timedelta(seconds=start),
                          ended_at=None if end is None else T0 + timedelta(seconds=end)))
    with Session(engine) as s:
        busy = tallies.busy_seconds(s, experiment_id, T0 + timedelta(seconds=100))
    engine.dispose()
    return busy


EXPECTED = 90.5 + 90.0 + 0.0 + 0.0      # a running job counts up to "until"; negatives are 0


def test_busy_seconds_on_sqlite(tmp_path):
    assert busy_of(f"sqlite:///{tmp_path / 'state.db'}") == pytest.approx(EXPECTED, abs=1e-3)


@pytest.mark.postgres
def test_busy_seconds_on_postgres(pg_url):  # noqa: F811
    assert busy_of(pg_url) == pytest.approx(EXPECTED, abs=1e-3)
