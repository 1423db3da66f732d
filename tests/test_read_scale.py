"""What keeps the master and the read commands fast at 10,000 points (benchmarks/scale.py has
the figures): no statement the master runs cycle after cycle scans a growing table, the read
views built from plain rows say what the stored objects say, and an older database gains the
indexes."""
from __future__ import annotations

import re
import sqlite3
import textwrap
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from orchestrator import queries
from orchestrator.models import Attempt, Evaluation, Point
from orchestrator.simulate import run_simulation
from orchestrator.store import create_schema, make_engine

GROWING = ("attempts", "points", "evaluations", "events", "search_journal", "stages")
# A whole table read, or an index searched by the experiment alone: every row the experiment
# ever made (one experiment per database).
SCAN = re.compile(rf"\b(SCAN ({'|'.join(GROWING)})\b|SEARCH ({'|'.join(GROWING)}) USING "
                  r"(COVERING )?INDEX \w+ \(experiment_id=\?\))")
# The largest value of an indexed column: SQLite reads one index entry, whatever its plan says.
MIN_MAX = re.compile(r"SELECT (max|min)\(\w+\.\w+\) AS \w+ FROM \w+ WHERE \w+\.experiment_id = \?$")

OBJECTIVE = """\
def loss(params):
    if params["x"] == 1 and params["y"] == 2:
        raise ValueError("this point always fails")
    return (params["x"] - 2) ** 2 + 0.0 * params["y"]     # ties: every y at x = 2
"""


def campaign(tmp_path: Path, strategy: str, name: str = "reads") -> Path:
    (tmp_path / "objective.py").write_text(OBJECTIVE)
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(f"""\
        [experiment]
        name = "{name}"
        [objective]
        key = "loss"
        [parameters]
        x = {{ values = [0, 1, 2, 3, 4, 5] }}
        y = {{ values = [0, 1, 2, 3, 4, 5] }}
        [trial]
        command = "true"
        retries = 1
        infra_retries = 50
        [search]
        strategy = "{strategy}"
        [scheduler]
        cap = 4
        [simulate]
        duration_mean_hours = 1.0
        duration_spread = 0.2
        failure_rate = 0.4
        objective = "objective.py:loss"
        """))
    return path


def normalised(statement: str) -> str:
    """One text for a statement whatever the length of its IN lists."""
    return re.sub(r"\((?:\?, )+\?\)", "(?)", " ".join(statement.split()))


@pytest.mark.parametrize("strategy", ["grid", "dsice"])
def test_no_statement_of_the_master_cycle_scans_a_growing_table(tmp_path, strategy):
    seen: Counter[str] = Counter()
    example: dict[str, tuple[str, Any]] = {}

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            key = normalised(statement)
            seen[key] += 1
            example.setdefault(key, (statement, parameters[0] if executemany else parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        sim = run_simulation(campaign(tmp_path, strategy), work_dir=tmp_path / "work")
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    cycles = sim.master.cycles
    assert cycles >= 20 and sim.report["evaluations"] >= 20
    per_cycle = [key for key, count in seen.items() if count >= cycles / 2]
    assert any("FROM attempts" in key for key in per_cycle)      # the poll itself is looked at
    db = sqlite3.connect(tmp_path / "work" / "state.db")
    scans = {}
    for key in per_cycle:
        if MIN_MAX.match(key):
            continue
        statement, parameters = example[key]
        plan = " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}",
                                                         parameters))
        if SCAN.search(plan):
            scans[key[:160]] = plan
    db.close()
    assert scans == {}


def reference(tmp_path: Path) -> list[tuple[Point, Evaluation]]:
    """The stored points with their evaluations and attempts, as ORM objects (the old way)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'work' / 'state.db'}", readonly=True)
    with Session(engine) as s:
        rows = [(p, ev) for p, ev in s.execute(
            select(Point, Evaluation).join(Evaluation).options(selectinload(Point.attempts))
            .order_by(Point.id))]
        s.expunge_all()
    engine.dispose()
    return rows


def test_read_views_from_plain_rows_say_what_the_stored_objects_say(tmp_path):
    run_simulation(campaign(tmp_path, "grid"), work_dir=tmp_path / "work")
    db = str(tmp_path / "work" / "state.db")
    rows = reference(tmp_path)
    assert any(len(p.attempts) > 1 for p, _ in rows)            # retried points are there
    assert any(ev.value is None for _, ev in rows)              # and a failed one

    history = queries.query(db, queries.history)
    assert [(h["n"], h["index"], h["value"], h["attempts"], h["failures"], h["run_dir"])
            for h in history] == [
        (n, list(p.index), ev.value, len(p.attempts),
         [a.reason for a in p.attempts if a.failure_kind], p.attempts[-1].run_dir)
        for n, (p, ev) in enumerate(rows, 1)]

    exported = queries.query(db, queries.export)["evaluations"]
    assert [[(a["number"], a["name"], a["state"], a["reason"]) for a in e["attempts"]]
            for e in exported] == [[(a.number, a.name, a.state, a.reason) for a in p.attempts]
                                   for p, _ in rows]

    # Ties at x = 2: the first of them in round order is the best everywhere, numbered as in
    # the history.
    first_tied = next(n for n, (p, ev) in enumerate(rows, 1) if ev.value == 0.0)
    best = queries.query(db, lambda s, exp: queries.best(s, exp, top=6))
    status = queries.query(db, queries.status)
    summary = queries.query(db, lambda s, exp: queries.summary(s, exp, datetime.now(timezone.utc)))
    assert best["best"]["evaluation"] == status["best"]["evaluation"] == first_tied
    assert best["best"]["params"] == status["best"]["params"] == summary["best"]["params"]
    assert best["best"]["attempts"] == len(rows[first_tied - 1][0].attempts)
    assert [t["value"] for t in best["top"]] == [0.0] * 6
    assert (summary["evaluations"], summary["failed_points"]) == (
        sum(ev.value is not None for _, ev in rows), sum(ev.value is None for _, ev in rows))

    plot = queries.query(db, queries.plot_data)
    assert len(plot["attempts"]) == sum(len(p.attempts) for p, _ in rows)
    assert sorted(plot["values"], key=str) == sorted((ev.value for _, ev in rows), key=str)


def test_an_older_database_gains_the_indexes_at_the_next_start(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = make_engine(url)
    create_schema(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_attempts_point")      # as an earlier version made it
    create_schema(engine)
    engine.dispose()
    db = sqlite3.connect(tmp_path / "state.db")
    plan = db.execute("EXPLAIN QUERY PLAN SELECT max(number) FROM attempts WHERE point_id = 1"
                      ).fetchall()
    db.close()
    assert "ix_attempts_point" in plan[0][3]
    assert Attempt.__table__.indexes      # the model declares the indexes create_schema adds
