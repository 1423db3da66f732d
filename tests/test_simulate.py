"""The simulated cluster and the ``simulate`` command: real master, real SQLite, virtual time."""
from __future__ import annotations

import json
import math
import sqlite3
import statistics
import tempfile
import textwrap
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.config_model import SearchSection
from orchestrator.simulate import run_simulation, scratch_root
from scheduler_adapters.base import JobSpec, JobState
from scheduler_adapters.simulated import EPOCH, SimulatedScheduler, VirtualClock
from tests.conftest import ROOT

HOUR = 3600.0


def bowl(params: dict) -> float:
    return (params["x"] - 2) ** 2 + (params["y"] - 4) ** 2 + 1.0


def make_spec(tmp_path: Path, name: str, params: dict, time_limit: int | None = None) -> JobSpec:
    run_dir = tmp_path / name
    run_dir.mkdir(exist_ok=True)
    (run_dir / "params.json").write_text(json.dumps(params))
    return JobSpec(name=name, command=("true",), workdir=run_dir, time_limit_s=time_limit,
                   env={"ORCH_RESULT_FILE": str(run_dir / "result.json")})


def cluster(**kwargs) -> tuple[VirtualClock, SimulatedScheduler]:
    clock = VirtualClock()
    options = {"result_key": "loss", "cap": 2, "duration_mean_s": HOUR, **kwargs}
    return clock, SimulatedScheduler(clock, bowl, **options)


# ---- the simulated scheduler -----------------------------------------------------------------
def test_cap_queues_jobs_and_starts_them_as_slots_free(tmp_path):
    clock, sched = cluster(cap=2)
    ids = [sched.submit(make_spec(tmp_path, f"j{i}", {"x": i, "y": 4})) for i in range(5)]
    states = sched.status(ids)
    assert [states[i].state for i in ids] == [JobState.RUNNING] * 2 + [JobState.PENDING] * 3
    clock.advance_to(EPOCH + 1.5 * HOUR)
    states = sched.status(ids)
    assert [states[i].state for i in ids] == ([JobState.SUCCEEDED] * 2 + [JobState.RUNNING] * 2
                                              + [JobState.PENDING])
    # The queued jobs started when the slots freed, not when somebody asked.
    assert states[ids[2]].started_at == states[ids[0]].ended_at == EPOCH + HOUR
    clock.advance_to(EPOCH + 10 * HOUR)
    states = sched.status(ids)
    assert all(states[i].state is JobState.SUCCEEDED for i in ids)
    assert states[ids[4]].started_at == EPOCH + 2 * HOUR and sched.peak_running == 2
    assert sched.busy_seconds == pytest.approx(5 * HOUR)
    assert sched.status_calls == 3


def test_result_file_appears_at_the_virtual_end_time_only(tmp_path):
    clock, sched = cluster()
    spec = make_spec(tmp_path, "j", {"x": 5, "y": 0})
    job = sched.submit(spec)
    clock.advance_to(EPOCH + HOUR - 1)
    assert sched.status([job])[job].state is JobState.RUNNING
    assert not (spec.workdir / "result.json").exists()
    clock.advance_to(EPOCH + HOUR)
    status = sched.status([job])[job]
    assert status.state is JobState.SUCCEEDED and status.exit_code == 0
    assert json.loads((spec.workdir / "result.json").read_text()) == {"loss": 26.0}
    assert sorted(p.name for p in spec.workdir.iterdir()) == ["params.json", "result.json"]
    assert sched.find_by_name(["j", "other"]) == {"j": job}
    assert sched.status(["404"])["404"].state is JobState.UNKNOWN


def test_durations_follow_the_seeded_distribution(tmp_path):
    def durations(seed: int, distribution: str) -> list[float]:
        directory = tmp_path / f"{distribution}-{seed}"
        directory.mkdir(exist_ok=True)
        _, sched = cluster(cap=1000, duration_spread=0.15, distribution=distribution, seed=seed)
        for i in range(300):
            sched.submit(make_spec(directory, f"j{i}", {"x": 0, "y": 0}))
        return [job.duration for job in sched.jobs.values()]

    for distribution in ("normal", "lognormal"):
        first = durations(1, distribution)
        assert statistics.mean(first) == pytest.approx(HOUR, rel=0.03)
        assert statistics.stdev(first) / HOUR == pytest.approx(0.15, rel=0.2)
        assert durations(1, distribution) == first           # the same seed: the same cluster
        assert durations(2, distribution) != first
    _, fixed = cluster(duration_spread=0.0)
    fixed.submit(make_spec(tmp_path, "fixed", {"x": 0, "y": 0}))
    assert fixed.jobs["1"].duration == HOUR


def test_failures_time_limits_and_objective_errors(tmp_path):
    clock, sched = cluster(cap=500, failure_rate=0.3, seed=3)
    ids = [sched.submit(make_spec(tmp_path, f"j{i}", {"x": 1, "y": 1})) for i in range(400)]
    clock.advance_to(EPOCH + 2 * HOUR)
    states = sched.status(ids)
    failed = [i for i in ids if states[i].state is JobState.NODE_FAIL]
    assert 0.23 <= len(failed) / len(ids) <= 0.37
    assert all(states[i].state is JobState.SUCCEEDED for i in ids if i not in failed)
    assert not any((tmp_path / sched.jobs[i].name / "result.json").exists() for i in failed)
    # A failed attempt dies part-way: it ends before a full run would have.
    assert all(states[i].ended_at < EPOCH + HOUR for i in failed)

    clock, sched = cluster(duration_spread=0.0)
    late = sched.submit(make_spec(tmp_path, "late", {"x": 0, "y": 0}, time_limit=600))
    broken = sched.submit(make_spec(tmp_path, "broken", {"y": 0}))      # bowl() needs x
    clock.advance_to(EPOCH + HOUR)
    states = sched.status([late, broken])
    assert states[late].state is JobState.TIMEOUT and states[late].ended_at == EPOCH + 600
    assert states[broken].state is JobState.FAILED and "KeyError" in states[broken].reason


def test_cancel_frees_the_slot(tmp_path):
    clock, sched = cluster(cap=1)
    first = sched.submit(make_spec(tmp_path, "a", {"x": 0, "y": 0}))
    second = sched.submit(make_spec(tmp_path, "b", {"x": 0, "y": 0}))
    clock.advance_to(EPOCH + 60)
    sched.cancel([first])
    states = sched.status([first, second])
    assert states[first].state is JobState.CANCELLED
    assert states[second].state is JobState.RUNNING and states[second].started_at == EPOCH + 60


def test_virtual_sleep_skips_idle_polls_but_never_an_event(tmp_path):
    clock, sched = cluster(duration_spread=0.0, duration_mean_s=HOUR + 30)
    clock.sleep(60)
    assert clock.now() == EPOCH + 60                    # nothing running: one poll interval
    sched.submit(make_spec(tmp_path, "j", {"x": 0, "y": 0}))     # ends at EPOCH + 3690
    clock.sleep(60)
    # The idle polls in between would all have seen "running": land on the first poll tick
    # at or after the job's end, as a master polling every 60 s would see it.
    assert clock.now() == EPOCH + 60 + 60 * math.ceil((HOUR + 30) / 60)
    assert clock.sleeps == 2
    with pytest.raises(ValueError):
        clock.advance_to(EPOCH)


# ---- the simulate command ----------------------------------------------------------------------
SMALL = """
[experiment]
name = "small"

[objective]
key = "loss"

[parameters]
x = { values = [0, 1, 2, 3, 4, 5, 6] }
y = { values = [0, 1, 2, 3, 4, 5, 6] }
z = { values = [0, 1, 2, 3, 4] }

[trial]
command = "true"

[search]
strategy = "dsice"

[scheduler]
cap = 5
poll_interval = 30

[simulate]
duration_mean_hours = 2.0
duration_spread = 0.2
failure_rate = 0.1
seed = 7
objective = "objective.py:loss"
"""

OBJECTIVE = """
def loss(params):
    return (params["x"] - 5) ** 2 + 2 * (params["y"] - 1) ** 2 + (params["z"] - 3) ** 2 + 0.5
"""


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    (tmp_path / "objective.py").write_text(OBJECTIVE)
    path = tmp_path / "small.toml"
    path.write_text(textwrap.dedent(SMALL))
    return path


def test_simulate_json_reports_the_campaign(small_config, cli):
    proc = cli("simulate", str(small_config), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key in ("makespan_hours", "gpu_hours", "utilisation", "evaluations", "reruns", "best",
                "stages", "speculation"):
        assert key in report
    assert report["best"] == {"params": {"x": 5, "y": 1, "z": 3}, "value": 0.5}
    assert report["cap"] == 5 and report["reruns"] > 0         # 10 % of attempts fail
    assert report["attempts"] == report["evaluations"] + report["failed_points"] + report["reruns"]
    assert 0 < report["utilisation"] <= 1
    assert report["utilisation"] == pytest.approx(
        report["gpu_hours"] / (5 * report["makespan_hours"]), abs=1e-3)
    stages = report["stages"]
    assert [s["number"] for s in stages] == list(range(1, len(stages) + 1))
    assert stages[0]["start_hours"] == 0 and stages[-1]["end_hours"] == report["makespan_hours"]
    assert all(a["end_hours"] == b["start_hours"] for a, b in zip(stages, stages[1:]))
    assert sum(s["points"] for s in stages) == report["evaluations"] + report["failed_points"]
    assert report["speculation"]["extra_evaluations"] == 0
    assert report["master"]["status_calls_per_cycle"] <= 1
    # Flags override the [simulate] table; without --json the report is text.
    text = cli("simulate", str(small_config), "--cap", "3", "--seed", "8",
               "--duration-mean-hours", "5", "--failure-rate", "0")
    assert text.returncode == 0, text.stderr
    assert "cap 3, jobs 5 h +- 20%, 0.0% failures, seed 8" in text.stdout
    assert " 0 reruns" in text.stdout and "utilisation" in text.stdout


def test_the_same_seed_gives_the_same_report(small_config):
    first = run_simulation(small_config).report
    assert run_simulation(small_config).report == first
    other = run_simulation(small_config, {"seed": 8}).report
    assert other["seed"] == 8 and other["best"] == first["best"]
    assert other["makespan_hours"] != first["makespan_hours"]


def test_table_objective_and_errors(small_config, tmp_path, cli, capsys):
    table = tmp_path / "measured.csv"
    rows = ["x,y,z,loss"] + [f"{x},{y},{z},{abs(x - 1) + abs(y - 6) + abs(z - 0)}"
                             for x in range(7) for y in range(7) for z in range(5)]
    table.write_text("\n".join(rows) + "\n")
    proc = cli("simulate", str(small_config), "--table", str(table), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["best"] == {"params": {"x": 1, "y": 6, "z": 0}, "value": 0.0}

    work = tmp_path / "busy"
    work.mkdir()
    (work / "something").write_text("")
    for args, message in [
            (["--work-dir", str(work)], "not empty"),
            (["--objective", f"{tmp_path}/objective.py:nothing"], "no function 'nothing'"),
            (["--objective", "no_such_module:f"], "cannot import no_such_module"),
            (["--failure-rate", "1.5"], "simulate.failure_rate"),
            (["--table", str(tmp_path / "small.toml")], "no column 'x'")]:
        assert main(["simulate", str(small_config), *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def _decisions(work_dir: Path) -> dict:
    """What the search decided, as the master stored it: stages, their points and outcomes."""
    con = sqlite3.connect(work_dir / "state.db")
    stages = con.execute("select number, level, base, points, best, best_value, moved "
                         "from stages order by number").fetchall()
    values = dict(con.execute("select p.key, e.value from points p join evaluations e "
                              "on e.point_id = p.id").fetchall())
    stage_points = [json.loads(s[3]) for s in stages]
    return {"stages": stages,
            "values": [[values[",".join(map(str, p))] for p in pts] for pts in stage_points]}


@pytest.mark.skipif("speculation" not in SearchSection.model_fields,
                    reason="search.speculation is not in the config model yet (lead's prefetch)")
def test_speculation_leaves_the_search_decisions_unchanged(small_config):
    with tempfile.TemporaryDirectory(dir=scratch_root()) as tmp:
        off = run_simulation(small_config, work_dir=Path(tmp, "off"), speculation="off")
        on = run_simulation(small_config, work_dir=Path(tmp, "on"), speculation="on")
        assert _decisions(Path(tmp, "on")) == _decisions(Path(tmp, "off"))
    assert on.report["best"] == off.report["best"]
    assert on.report["speculation"]["mode"] == "on"
    assert on.report["makespan_hours"] <= off.report["makespan_hours"]


def test_the_paper_campaign_config_loads_with_its_objective(tmp_path):
    from orchestrator.simulate import load_objective, load_simulation
    config, options = load_simulation(ROOT / "configs" / "paper-campaign.toml", {},
                                      tmp_path / "work", scratch=True)
    assert config.shape == (10, 11, 11, 11) and config.model.scheduler.cap == 26
    assert (options.duration_mean_hours, options.duration_spread, options.failure_rate) == (
        9.0, 0.15, 0.03)
    assert config.work_dir == (tmp_path / "work").resolve()
    assert config.model.experiment.sqlite_journal == "wal"
    score = load_objective(options.objective, config.config_dir)
    best = {"lr": 1e-4, "w2": 50, "w3": 0.01, "w4": 0.01}         # the paper's best point
    assert score(best) == 2.0 and score({**best, "w2": 20}) > 2.0
