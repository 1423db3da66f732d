"""The peers benchmark's virtual cluster, its two driving modes, its figures and the tuning-space
loader (benchmarks/cluster.py, peer_tables.py, landscapes.py, peers.py)."""
from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from cluster import ClusterSpec, VirtualCluster
from landscapes import LANDSCAPES, levy10, tuning_space
from peer_strategies import CoordinateSearch
from peer_tables import RunSummary, summarise

from search import DSICE, Strategy

EXACT = {"spread": 0.0, "attempt_failure_rate": 0.0}      # every job exactly 9 h, none fails


class InOrder(Strategy):
    """Asks the points of a fixed list in order, as many as it is told are free (refill
    contract: ``ask(free)``); records every ``free`` and every tell group."""

    def __init__(self, shape: tuple[int, ...], order: list[tuple[int, ...]]) -> None:
        super().__init__(shape)
        self.order = order
        self.free_seen: list[int | None] = []
        self.told: list[list[tuple[int, ...]]] = []
        self._free: int | None = None

    def ask(self, free: int | None = None) -> list[tuple[int, ...]]:
        self.free_seen.append(free)
        self._free = free
        return super().ask()

    def _propose(self) -> list[tuple[int, ...]]:
        todo = [p for p in self.order if p not in self._results and p not in self._outstanding]
        return todo[: self._free or 1]

    def _observe(self, results) -> None:
        self.told.append(list(results))

    @property
    def done(self) -> bool:
        return len(self._results) == len(self.order)


def grid(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(n) for n in shape)))


def value(point: tuple[int, ...]) -> float:
    return float(sum(point))


def test_exact_jobs_sync_rounds_and_utilisation():
    points = grid((2, 3))
    campaign = VirtualCluster(ClusterSpec(cap=4, **EXACT), value, budget=100).run(
        InOrder((2, 3), points), "sync")
    assert [(e.started, e.ended) for e in campaign.evaluations] == [(0, 9)] * 4 + [(9, 18)] * 2
    assert campaign.makespan == 18 and campaign.busy_hours == 54
    assert campaign.utilisation == pytest.approx(54 / (4 * 18))
    assert campaign.stopped and not campaign.stalled and campaign.asks == 6


def test_failed_evaluation_holds_a_quarter_of_its_job():
    def cannot_run_odd(point: tuple[int, ...]) -> float | None:
        return None if sum(point) % 2 else 1.0
    campaign = VirtualCluster(ClusterSpec(cap=6, **EXACT), cannot_run_odd, budget=100).run(
        InOrder((2, 3), grid((2, 3))), "sync")
    held = {e.point: e.busy_hours for e in campaign.evaluations}
    assert held == {p: 2.25 if sum(p) % 2 else 9.0 for p in grid((2, 3))}
    assert [e.value for e in campaign.evaluations if e.busy_hours == 2.25] == [None] * 3


def test_attempts_that_die_are_retried_at_the_cost_of_their_time():
    spec = ClusterSpec(cap=5, attempt_failure_rate=0.5, seed=3)
    campaign = VirtualCluster(spec, value, budget=100).run(InOrder((4, 5), grid((4, 5))), "refill")
    retried = [e for e in campaign.evaluations if e.attempts > 1]
    assert retried, "with half the attempts dying some evaluation must have been retried"
    for e in campaign.evaluations:
        draws = [spec.attempt(e.point, k, True) for k in range(1, e.attempts + 1)]
        assert [completed for _, completed in draws] == [False] * (e.attempts - 1) + [True]
        assert e.busy_hours == pytest.approx(sum(hours for hours, _ in draws))
    # A retried evaluation cost more than its final attempt alone.
    e = retried[0]
    assert e.busy_hours > spec.attempt(e.point, e.attempts, True)[0]


def test_attempt_draws_are_seeded_and_near_their_rates():
    spec = ClusterSpec(seed=7)
    draws = [spec.attempt((i,), 1, True) for i in range(20_000)]
    assert draws == [ClusterSpec(seed=7).attempt((i,), 1, True) for i in range(20_000)]
    died = sum(not ok for _, ok in draws) / len(draws)
    assert 0.025 < died < 0.035
    full = np.array([h for h, ok in draws if ok])
    assert full.mean() == pytest.approx(9.0, rel=0.01)
    assert full.std() / full.mean() == pytest.approx(0.15, rel=0.05)
    hours, ok = spec.attempt((5,), 1, False)
    assert ok and hours == pytest.approx(0.25 * spec.attempt((5,), 1, True)[0])


def test_refill_starts_a_job_the_moment_a_slot_frees_and_tells_in_completion_order():
    strategy = InOrder((5, 6), grid((5, 6)))
    campaign = VirtualCluster(ClusterSpec(cap=4, seed=1), value, budget=100).run(
        strategy, "refill")
    evaluations = campaign.evaluations
    assert len(evaluations) == 30 and campaign.stopped
    ends = sorted(e.ended for e in evaluations)
    later = sorted(e.started for e in evaluations if e.started > 0)
    assert later == ends[: len(later)]            # each start is the end of an earlier job
    for t in {e.started for e in evaluations}:
        assert sum(e.started <= t < e.ended for e in evaluations) <= 4
    assert [p for group in strategy.told for p in group] == [e.point for e in evaluations]
    # Asked for the whole cap at first, then for the one slot each completion frees; once the
    # list is spent, asked with the slots that stay free.
    assert strategy.free_seen == [4] + [1] * 26 + [1, 2, 3]
    assert campaign.utilisation > 0.9


def test_sync_waits_for_the_whole_round():
    strategy = InOrder((5, 6), grid((5, 6)))
    campaign = VirtualCluster(ClusterSpec(cap=4, seed=1), value, budget=100).run(
        strategy, "sync")
    rounds = [campaign.evaluations[i:i + 4] for i in range(0, 30, 4)]
    for before, after in itertools.pairwise(rounds):
        assert min(e.started for e in after) == max(e.ended for e in before)
    assert [len(g) for g in strategy.told] == [4] * 7 + [2]
    assert campaign.utilisation < 0.95


def test_same_seed_same_campaign_other_seed_other_durations():
    def run(seed: int, mode: str):
        return VirtualCluster(ClusterSpec(cap=26, seed=seed), LANDSCAPES["paper-4d-smooth"]()
                              .outcome, budget=2000).run(DSICE((10, 11, 11, 11), cap=26), mode)
    for mode in ("sync", "refill"):
        a, b, c = run(0, mode), run(0, mode), run(1, mode)
        assert a.evaluations == b.evaluations
        assert [e.point for e in a.evaluations] != [] and a.makespan != c.makespan
        assert a.stopped and len(a.evaluations) == 386


def test_repeats_are_told_at_once_and_cost_nothing():
    peer = _Repeating(InOrder((1, 3), grid((1, 3))))
    campaign = VirtualCluster(ClusterSpec(cap=1, **EXACT), value, budget=100).run(peer, "refill")
    assert len(campaign.evaluations) == 3 and campaign.duplicates == 1
    assert campaign.asks == 4 and campaign.busy_hours == 27
    assert peer.told_repeat == [((0, 0), 0.0)]


class _Repeating:
    """A peer adapter (no ``Strategy`` filtering) that asks for its first point a second time."""

    def __init__(self, inner: InOrder) -> None:
        self.inner = inner
        self.told_repeat: list[tuple[tuple[int, ...], float]] = []
        self._repeated = False

    @property
    def done(self) -> bool:
        return self.inner.done

    def ask(self, free: int | None = None) -> list[tuple[int, ...]]:
        if self.inner.history and not self._repeated:
            self._repeated = True
            return [self.inner.history[0][0]]
        return self.inner.ask(free)

    def tell(self, results) -> None:
        known = {p: v for p, v in results.items() if p in self.inner._results}
        self.told_repeat += list(known.items())
        fresh = {p: v for p, v in results.items() if p not in known}
        if fresh:
            self.inner.tell(fresh)


def test_budget_caps_the_evaluations_and_the_run_does_not_count_as_stopped():
    campaign = VirtualCluster(ClusterSpec(cap=3, **EXACT), value, budget=7).run(
        InOrder((4, 4), grid((4, 4))), "refill")
    assert len(campaign.evaluations) == 7 and not campaign.stopped and not campaign.stalled


def test_summary_figures_of_a_dsice_campaign():
    problem = LANDSCAPES["paper-4d-smooth"]()
    campaign = VirtualCluster(ClusterSpec(seed=0), problem.outcome, budget=2000).run(
        DSICE(problem.shape, cap=26), "sync")
    s = summarise(campaign, problem, name=problem.name, strategy="dsice", seed=0,
                  budget=2000, seconds=0.0)
    first_opt = next(k for k, e in enumerate(campaign.evaluations, 1)
                     if e.value == problem.optimum)
    assert s.opt_evals == first_opt and s.near_evals <= s.opt_evals
    assert s.opt_hours == campaign.evaluations[first_opt - 1].ended
    assert s.regret[1] == 0.0 and s.stopped_at == 386 and s.best_at == first_opt
    assert s.gpu_hours == pytest.approx(campaign.busy_hours)
    assert 0.4 < s.utilisation < 0.7
    assert RunSummary.from_dict(json.loads(json.dumps(s.as_dict()))) == s


def test_coordinate_search_stops_after_a_sweep_without_a_move():
    problem = LANDSCAPES["sphere-4d"]()
    campaign = VirtualCluster(ClusterSpec(seed=0), problem.outcome, budget=1000).run(
        CoordinateSearch(problem.shape, cap=26), "sync")
    assert campaign.stopped and min(e.value for e in campaign.evaluations) == problem.optimum


def test_tuning_space_loader(tmp_path):
    pnpoly = tuning_space("pnpoly_rtx2080ti")
    assert pnpoly.shape == (4, 31, 11, 3) and pnpoly.name == "pnpoly-rtx2080ti"
    assert pnpoly.optimum == pytest.approx(0.01591, rel=1e-3)
    assert pnpoly.valid.mean() == pytest.approx(0.913, abs=0.001)
    bad = tuple(int(i) for i in np.argwhere(~pnpoly.valid)[0])
    assert pnpoly.outcome(bad) is None
    good = tuple(int(i) for i in np.argwhere(pnpoly.valid)[0])
    assert pnpoly.outcome(good) == pytest.approx(float(pnpoly.table[good]))
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.npz"):
        tuning_space("broken", tmp_path)


def test_every_shipped_space_loads_with_a_runnable_optimum():
    for name in ("convolution-rtxtitan", "dedispersion-a4000", "convolution-w6600",
                 "gemm-rtx2080ti"):
        problem = LANDSCAPES[name]()
        assert problem.optimum < problem.median and 0 < problem.valid.mean() < 1


def test_levy_10d_optimum_off_centre():
    problem = levy10()
    assert problem.outcome((6,) * 10) == pytest.approx(0.0, abs=1e-12)
    assert problem.outcome((4,) * 10) > 1 and problem.median > 1     # the centre is not it
    for axis, i in itertools.product(range(10), range(9)):
        if i != 6:
            assert problem.outcome((6,) * axis + (i,) + (6,) * (9 - axis)) > 0.1


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None
                    or importlib.util.find_spec("nevergrad") is None,
                    reason="the bench extra (optuna, nevergrad) is not installed")
def test_peers_command_end_to_end(tmp_path, capsys):
    import peers
    out, runs = tmp_path / "report.md", tmp_path / "runs.jsonl"
    assert peers.main(["--problems", "sphere-4d", "--strategies", "optuna-tpe", "ng-ngopt",
                       "dsice", "--seeds", "1", "--budget", "40", "--stop-budget", "500",
                       "--workers", "1", "--out", str(out), "--json", str(runs)]) == 0
    text = capsys.readouterr().out
    assert text == out.read_text()
    for needle in ("### sphere-4d", "| optuna-tpe | refill |", "| ng-ngopt | sync |",
                   "| dsice | sync |", "did not stop (> 40)", "Targets of issue 12"):
        assert needle in text
    assert len(runs.read_text().splitlines()) == 6
    # Reusing the saved runs runs nothing again and reports the same tables.
    assert peers.main(["--problems", "sphere-4d", "--strategies", "optuna-tpe", "ng-ngopt",
                       "dsice", "--seeds", "1", "--budget", "40", "--stop-budget", "500",
                       "--workers", "1", "--reuse", str(runs)]) == 0
    again = capsys.readouterr().out
    assert "6 runs reused" in again and "0 run now" in again
    assert again.split("### sphere-4d")[1] == text.split("### sphere-4d")[1]
