"""Refill mode: results told as they are recorded, ask(free) whenever slots free, and a journal
that a restarted master replays exactly."""
from __future__ import annotations

import json
import random
import sqlite3
import textwrap
from pathlib import Path

import pytest

from orchestrator.config import ConfigError, load_config
from orchestrator.simulate import run_simulation
from orchestrator.states import JournalKind
from orchestrator.strategies import ReplayDiverged, build_strategy, replay_journal
from search import DSICE
from tests.chaos import SMALL_PARAMS, outcome_sequence, run_chaos

SHAPE = (6, 6, 5)


def loss(p: tuple[int, ...]) -> float:
    return (p[0] - 4) ** 2 + (p[1] - 1) ** 2 + (p[2] - 3) ** 2


def drive(strategy, rng: random.Random, cap: int = 4):
    """A refill driver on a toy cluster: random groups of finished jobs are told in random
    order, then the strategy is asked with the free slots. Returns the journal it wrote."""
    steps, running = [], []
    while not strategy.done:
        free = cap - len(running)
        batch = strategy.ask(free)
        steps.append((JournalKind.ASK, free, batch))
        running += batch
        if not running:
            break
        rng.shuffle(running)
        n = rng.randint(1, len(running))
        group, running = running[:n], running[n:]
        strategy.tell({p: loss(p) for p in group})
        steps.append((JournalKind.TELL, None, group))
    return steps


def test_replaying_a_journal_reproduces_every_ask_and_the_stages():
    first = DSICE(SHAPE, cap=4, mode="async")
    steps = drive(first, random.Random(5))
    outcomes = {p: v for p, v in first.history}
    again = replay_journal(DSICE(SHAPE, cap=4, mode="async"), steps, outcomes)
    assert again.strategy.history == first.history
    assert again.strategy.stages == first.stages and again.strategy.done
    assert again.rounds == sum(1 for kind, _, points in steps if kind is JournalKind.ASK and points)
    # Cut anywhere, the replay stands where the run stood then: what was asked and not told.
    cut = len(steps) // 2 + 1
    partial = replay_journal(DSICE(SHAPE, cap=4, mode="async"), steps[:cut], outcomes)
    asked = [p for kind, _, points in steps[:cut] if kind is JournalKind.ASK for p in points]
    told = {p for kind, _, points in steps[:cut] if kind is JournalKind.TELL for p in points}
    assert partial.current == [p for p in asked if p not in told]
    assert set(partial.strategy.outstanding) == set(partial.current)


def test_a_journal_the_strategy_disagrees_with_is_refused():
    first = DSICE(SHAPE, cap=4, mode="async")
    steps = drive(first, random.Random(1))
    kind, free, points = steps[2]
    assert kind is JournalKind.ASK
    steps[2] = (kind, free, points[::-1] + [(0, 0, 0)])
    with pytest.raises(ReplayDiverged, match="step 3"):
        replay_journal(DSICE(SHAPE, cap=4, mode="async"), steps, dict(first.history))


SIMULATED = """
[experiment]
name = "refill"

[objective]
key = "loss"

[parameters]
x = { values = [0, 1, 2, 3, 4, 5, 6] }
y = { values = [0, 1, 2, 3, 4, 5, 6] }

[trial]
command = "true"

[search]
strategy = "dsice"
variant = "paper"
mode = "refill"
options = { mode = "async" }

[scheduler]
cap = 4
poll_interval = 30

[simulate]
duration_mean_hours = 2.0
duration_spread = 0.3
failure_rate = 0.05
seed = 3
objective = "objective.py:loss"
"""


def test_simulated_refill_campaign_journals_every_step_and_replays(tmp_path):
    (tmp_path / "objective.py").write_text(
        "def loss(p):\n    return (p['x'] - 5) ** 2 + (p['y'] - 1) ** 2\n")
    path = tmp_path / "refill.toml"
    path.write_text(textwrap.dedent(SIMULATED))
    sim = run_simulation(path, work_dir=tmp_path / "work")
    assert sim.report["best"] == {"params": {"x": 5, "y": 1}, "value": 0}
    db = sqlite3.connect(tmp_path / "work" / "state.db")
    steps = [(JournalKind(kind), free, [tuple(p) for p in json.loads(points)]) for kind, free, points
             in db.execute("select kind, free, points from search_journal order by seq")]
    kinds = [kind for kind, _, _ in steps]
    assert kinds[0] is JournalKind.ASK and steps[0][1] == 4
    assert all(a is JournalKind.ASK for a, b in zip(kinds[1:], kinds) if b is JournalKind.TELL)
    # Tells carry groups smaller than a round: results were told as they came in.
    assert any(len(points) < 4 for kind, _, points in steps if kind is JournalKind.TELL)
    outcomes = {tuple(map(int, k.split(","))): v for k, v in db.execute(
        "select p.key, e.value from points p join evaluations e on e.point_id = p.id")}
    config = load_config(path)
    replayed = replay_journal(build_strategy(config, 4), steps, outcomes)
    assert replayed.strategy.done and not replayed.current
    stored = db.execute("select number, level, base, best from stages order by number").fetchall()
    assert [(s.number, s.level, list(s.base), list(s.best) if s.best else None)
            for s in replayed.strategy.stages] == [
        (n, lvl, json.loads(b), json.loads(best) if best else None) for n, lvl, b, best in stored]
    # Deterministic on the virtual cluster: the same seed, the same journal.
    again = run_simulation(path)
    assert again.report == {**sim.report, "experiment": again.report["experiment"]}


def test_async_strategy_needs_refill_mode(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(SIMULATED).replace('mode = "refill"\n', ""))
    with pytest.raises(ConfigError, match="needs mode = \"refill\""):
        load_config(path)


def test_refill_is_part_of_the_search_definition(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(SIMULATED))
    refill = load_config(path)
    path.write_text(textwrap.dedent(SIMULATED).replace('mode = "refill"\n', "")
                    .replace('options = { mode = "async" }\n', ""))
    sync = load_config(path)
    assert "mode" not in sync.search_definition()      # old experiments keep their fingerprint
    assert refill.search_definition()["mode"] == "refill"
    assert refill.fingerprint() != sync.fingerprint()


@pytest.mark.slow
def test_refill_on_local_jobs_equals_an_uninterrupted_run_after_kills(write_config, tmp_path):
    """Synchronous DSICE driven in refill mode: tell groups differ with every kill, the rounds,
    values and stages must not; no point runs twice."""
    run_chaos(write_config, tmp_path, kills_wanted=6,
              search_extra='variant = "paper"\nmode = "refill"', parameters=SMALL_PARAMS)
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    kinds = [k for (k,) in con.execute("select kind from search_journal order by seq")]
    assert kinds and kinds[0] == "ask" and "tell" in kinds
    assert outcome_sequence(tmp_path / "work" / "state.db")[1]


@pytest.mark.slow
def test_chaos_kill9_in_refill_mode_with_async_dsice(write_config, tmp_path):
    """Async DSICE: its decisions depend on the groups, so the history of a killed run is the
    journal's; replaying that journal reproduces every ask, and no point runs twice."""
    run_chaos(write_config, tmp_path, kills_wanted=15,
              search_extra='variant = "paper"\nmode = "refill"\noptions = { mode = "async" }',
              compare=False)
    db = tmp_path / "work" / "state.db"
    con = sqlite3.connect(db)
    steps = [(JournalKind(kind), free, [tuple(p) for p in json.loads(points)]) for kind, free, points
             in con.execute("select kind, free, points from search_journal order by seq")]
    outcomes = {tuple(map(int, k.split(","))): v for k, v in con.execute(
        "select p.key, e.value from points p join evaluations e on e.point_id = p.id")}
    config = load_config(next(Path(tmp_path).glob("chaos.toml")))
    replayed = replay_journal(build_strategy(config, 3), steps, outcomes)
    assert replayed.strategy.done and set(p for p, _ in replayed.strategy.history) == set(outcomes)
