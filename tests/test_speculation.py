"""Speculative prefetch changes when results arrive, never what the search decides."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.master import Master

PARAMS = ('x = { values = [0, 1, 2, 3, 4, 5, 6] }\ny = { values = [0, 1, 2, 3, 4, 5, 6] }\n'
          'z = { values = [0, 1, 2, 3, 4] }')
COMMAND = "{python} -m jobs.examples.synthetic --center x=5 --center y=1 --center z=3"


def decisions(db: Path) -> tuple[list[tuple], list[tuple]]:
    con = sqlite3.connect(db)
    rounds = con.execute("select p.key, p.round, e.value from points p join evaluations e "
                         "on e.point_id = p.id where p.round is not null "
                         "order by p.round, p.key").fetchall()
    stages = con.execute("select number, level, base, best, best_value from stages "
                         "order by number").fetchall()
    return rounds, stages


def test_speculation_leaves_decisions_unchanged(write_config, tmp_path):
    plain = load_config(write_config("plain.toml", name="plain", parameters=PARAMS, cap=6,
                                     strategy="dsice", command=COMMAND))
    assert Master(plain).run() == 0
    expected = decisions(plain.work_dir / "state.db")
    (tmp_path / "work").rename(tmp_path / "plain-work")

    spec = load_config(write_config("spec.toml", name="spec", parameters=PARAMS, cap=6,
                                    strategy="dsice", command=COMMAND,
                                    search_extra='speculation = "on"'))
    assert Master(spec).run() == 0
    db = spec.work_dir / "state.db"
    assert decisions(db) == expected
    con = sqlite3.connect(db)
    speculative = con.execute("select count(*) from points where origin='speculative'").fetchone()[0]
    assert speculative > 0
    # Speculative points the search later needed were measured once, never twice.
    assert con.execute("select count(*) from points").fetchone()[0] == \
        con.execute("select count(distinct key) from points").fetchone()[0]
    assert con.execute("select state from experiments").fetchone()[0] == "finished"
    assert con.execute("select count(*) from attempts where state in "
                       "('submitting','submitted','pending','running')").fetchone()[0] == 0
