"""EagerDSICE: what it does with idle slots, when it moves and stops, and how it is built."""
from __future__ import annotations

import pytest

from orchestrator.config import ConfigError, load_config
from orchestrator.strategies import build_strategy
from search import DSICE, EagerDSICE, ExploringDSICE, Index, make_eager
from search.neighbours import direction

from .search_helpers import drive, drive_refill


def bowl(p: Index) -> float:
    """A separable bowl on 11 x 11 x 11 with its minimum at (8, 2, 7)."""
    return float((p[0] - 8) ** 2 + 2 * (p[1] - 2) ** 2 + 0.5 * (p[2] - 7) ** 2)


def test_slots_the_stage_cannot_use_get_the_combined_estimate_first() -> None:
    s = EagerDSICE((11, 11, 11), cap=40, explore_budget=0)
    first = s.ask()
    own = DSICE((11, 11, 11), cap=40).ask()        # the stage's own list: 31 points
    assert first[:len(own)] == own and len(first) == 40     # the rest fills the idle slots
    s.tell({p: bowl(p) for p in first})
    second = s.ask()
    centre = (5, 5, 5)
    # Every axis line through the centre has a fit with its minimum off the centre: their
    # steps added up give a point off all three lines, asked for before anything else fills in.
    off_lines = [p for p in second if sum(a != b for a, b in zip(p, centre)) >= 2]
    assert (8, 2, 7) in off_lines


def test_a_better_point_anywhere_restarts_the_run_there() -> None:
    s = EagerDSICE((11, 11, 11), cap=40, explore_budget=0)
    drive(s, bowl)
    assert s.runs > 1 and s.best == ((8, 2, 7), 0.0) and s.base == (8, 2, 7)
    moved_to = [r.best for r in s.stages if r.moved]
    assert moved_to[-1] == (8, 2, 7)
    assert sorted(p for r in s.stages for p in r.points) == sorted(p for p, _ in s.history)


def test_escalation_stops_at_max_level() -> None:
    for top in (1, 2, 3):
        s = EagerDSICE((7, 7, 7), cap=8, max_level=top, explore_budget=0)
        drive(s, bowl)
        assert max(r.level for r in s.stages) <= top and s.stages[-1].level == top
        assert not s.stages[-1].moved


def test_patience_stops_a_search_that_finds_nothing_better() -> None:
    def flat(p: Index) -> float:          # a needle in a corner, far off the lines
        return 0.0 if p == (0, 0, 0) else 1.0

    s = EagerDSICE((9, 9, 9), cap=6, patience=30, explore_budget=0)
    journal = drive_refill(s, flat, 6, seed=2)
    told = sum(len(entry) for kind, entry in journal if kind == "tell")   # type: ignore[arg-type]
    assert s.stopped and s.done
    assert told <= 30 + 6                 # the patience, plus what was out when it ran out
    # The stage cut short by the stop is recorded: the records still partition the history.
    assert sorted(p for r in s.stages for p in r.points) == sorted(p for p, _ in s.history)
    assert not s.stages[-1].moved


def test_refill_keeps_every_slot_busy_while_the_search_has_work() -> None:
    s = EagerDSICE((11, 11, 11), cap=12, explore_budget=20, seed=4)
    journal = drive_refill(s, bowl, 12, seed=1)
    asks = [entry for kind, entry in journal if kind == "ask"]
    # Every ask but the last few (the search running out of work) fills every free slot.
    filled = [len(batch) == free for free, batch in asks[:-3]]   # type: ignore[misc]
    assert sum(filled) / len(filled) >= 0.9
    assert s.best is not None and s.best[1] == 0.0


def test_options_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match="unknown option 'explore' for variant 'eager'"):
        make_eager((3, 3), cap=2, explore=5)
    for bad, message in (({"patience": 0}, "patience must be >= 1"),
                         ({"explore_share": 2.0}, "explore_share must be in"),
                         ({"max_level": 0}, "max_level must be >= 1"),
                         ({"explore_budget": -1}, "explore_budget must be >= 0")):
        with pytest.raises(ValueError, match=message):
            make_eager((3, 3), cap=2, **bad)


@pytest.mark.parametrize("extra, kind", [("", EagerDSICE),
                                          ('variant = "paper"', DSICE),
                                          ('variant = "paper"\n[search.options]\nrestarts = 1',
                                           ExploringDSICE)])
def test_the_config_picks_the_variant(write_config, extra: str, kind: type) -> None:
    config = load_config(write_config(strategy="dsice", search_extra=extra))
    assert type(build_strategy(config, 4)) is kind


def test_variant_names_are_checked_and_paper_keeps_old_definitions(write_config) -> None:
    with pytest.raises(ConfigError, match="variant"):
        load_config(write_config(strategy="dsice", search_extra='variant = "fast"'))
    eager = load_config(write_config("a.toml", strategy="dsice"))
    paper = load_config(write_config("b.toml", strategy="dsice", search_extra='variant = "paper"'))
    assert eager.search_definition()["variant"] == "eager"
    # An experiment begun before variants existed has the paper's definition, without the key.
    assert "variant" not in paper.search_definition()
    with pytest.raises(ConfigError, match="unknown option 'explore_budgett'"):
        build_strategy(load_config(write_config(
            "c.toml", strategy="dsice", search_extra="[search.options]\nexplore_budgett = 3")), 4)


def test_direction_of_a_restart_record_is_well_defined() -> None:
    s = EagerDSICE((11, 11, 11), cap=40, explore_budget=0)
    drive(s, bowl)
    for r in s.stages:
        if r.moved:
            assert r.best is not None and direction(r.base, r.best)
