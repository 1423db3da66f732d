"""The eager DSICE variant under kill -9: a restarted master replays it exactly.

In synchronous rounds its decisions depend only on the rounds' values, so a killed and restarted
campaign equals an uninterrupted one (the 50-kill run in tests/test_crash_safety.py). In refill
mode (its default) they depend on which results arrive together; the master journals every tell
group and ask, and replaying that journal on a fresh strategy reproduces every ask and the
stored stages."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.states import JournalKind
from orchestrator.strategies import build_strategy, replay_journal
from tests.chaos import run_chaos


def test_eager_default_is_refill_and_sync_can_be_chosen(write_config) -> None:
    eager = load_config(write_config("a.toml", strategy="dsice"))
    assert eager.model.search.variant == "eager" and eager.model.search.mode == "refill"
    paper = load_config(write_config("b.toml", strategy="dsice", search_extra='variant = "paper"'))
    assert paper.model.search.mode == "sync"
    sync = load_config(write_config("c.toml", strategy="dsice", search_extra='mode = "sync"'))
    assert sync.model.search.mode == "sync" and "mode" not in sync.search_definition()


@pytest.mark.slow
def test_chaos_kill9_eager_in_refill_mode_replays_its_journal(write_config, tmp_path):
    run_chaos(write_config, tmp_path, kills_wanted=8, compare=False)
    db = tmp_path / "work" / "state.db"
    con = sqlite3.connect(db)
    steps = [(JournalKind(kind), free, [tuple(p) for p in json.loads(points)])
             for kind, free, points in con.execute(
                 "select kind, free, points from search_journal order by seq")]
    assert steps and steps[0][0] is JournalKind.ASK
    outcomes = {tuple(map(int, k.split(","))): v for k, v in con.execute(
        "select p.key, e.value from points p join evaluations e on e.point_id = p.id")}
    config = load_config(next(Path(tmp_path).glob("chaos.toml")))
    replayed = replay_journal(build_strategy(config, 3), steps, outcomes)
    assert replayed.strategy.done
    assert set(p for p, _ in replayed.strategy.history) == set(outcomes)
    stored = con.execute("select number, base, best, moved from stages order by number").fetchall()
    assert [(s.number, list(s.base), list(s.best) if s.best else None, s.moved)
            for s in replayed.strategy.stages] == [
        (n, json.loads(b), json.loads(best) if best else None, bool(m))
        for n, b, best, m in stored]
