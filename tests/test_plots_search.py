"""The search-space plots (slice, DSICE path, parallel coordinates) and the fixed objective and
utilisation plots, drawn from real experiments run by a real master on a SQLite file."""
from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from orchestrator import plots, plots_search, queries
from orchestrator.cli import main
from orchestrator.search_view import search_data

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt

PNG = b"\x89PNG\r\n\x1a\n"
DSICE_SPACE = 'x = { values = [0, 1, 2, 3, 4, 5, 6] }\ny = { values = [0.001, 0.01, 0.1, 1.0] }'


def start(path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["start", str(path)])
    assert code == 0, err.getvalue()


@pytest.fixture(scope="module")
def dsice(tmp_path_factory) -> Path:
    """A finished DSICE search on a 7 x 4 grid whose points with x = 5 fail."""
    from .conftest import BASE_CONFIG, DEFAULTS
    path = tmp_path_factory.mktemp("dsice") / "exp.toml"
    path.write_text(BASE_CONFIG.format(**{
        **DEFAULTS, "strategy": "dsice", "parameters": DSICE_SPACE, "retries": 0,
        "command": "{python} -m jobs.examples.synthetic --center x=2 --log y --center y=-2 "
                   "--fail-when x=5"}))
    start(path)
    return path


@pytest.fixture(scope="module")
def early_failures(tmp_path_factory) -> Path:
    """A grid search whose first evaluations (x = 0, in grid order) all fail."""
    from .conftest import BASE_CONFIG, DEFAULTS
    path = tmp_path_factory.mktemp("early") / "exp.toml"
    path.write_text(BASE_CONFIG.format(**{
        **DEFAULTS, "retries": 0, "cap": 1,
        "command": "{python} -m jobs.examples.synthetic --center x=2 --fail-when x=0"})
        # failures first by design: fail fast must not end the search before it measures
        .replace('work_dir = "work"', 'work_dir = "work"\nfail_fast = 0'))
    start(path)
    return path


def test_search_data_numbers_evaluations_and_stages(dsice):
    data = queries.query(str(dsice), search_data)
    evs = data["evaluations"]
    assert [e["order"] for e in evs] == list(range(1, len(evs) + 1))
    assert sorted(e["n"] for e in evs) == list(range(1, len(evs) + 1))
    assert data["parameters"] == ["x", "y"] and data["candidates"]["y"] == [0.001, 0.01, 0.1, 1.0]
    failed = [e for e in evs if e["value"] is None]
    assert failed and all(e["params"]["x"] == 5 for e in failed)
    stages = data["stages"]
    assert len(stages) >= 2 and stages[0]["base"] == [3, 2]
    staged = {tuple(p) for st in stages for p in st["points"]}
    for e in evs:
        if tuple(e["index"]) in staged:
            assert e["stage"] is not None and e["level"] is not None
    assert any(e["job_id"] for e in evs)


def test_failed_points_stay_inside_the_objective_axes(early_failures):
    data = queries.query(str(early_failures), queries.plot_data)
    assert data["values"][:3] == [None, None, None]     # x = 0 comes first on the grid
    fig = plots.objective(plt, data)
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    assert low < 1 and high > len(data["values"])       # evaluation 1 (failed) is drawn
    plt.close(fig)


def test_utilisation_draws_queued_apart_and_the_cap_not_in_the_failure_colour(early_failures):
    data = queries.query(str(early_failures), queries.plot_data)
    fig = plots.utilisation(plt, data)
    running_ax, queued_ax = fig.axes
    assert running_ax.get_ylabel() == "jobs running" and queued_ax.get_ylabel() == "queued"
    cap_lines = [line for line in running_ax.get_lines() if line.get_label().startswith("cap")]
    assert len(cap_lines) == 1 and cap_lines[0].get_color() != plots.FAILED_STATES_COLOUR
    assert cap_lines[0].get_ydata()[0] == data["cap"]
    plt.close(fig)


def test_slice_plot_has_a_panel_per_parameter_coloured_by_order(dsice):
    data = queries.query(str(dsice), search_data)
    fig = plots_search.slices(plt, data)
    panels = [ax for ax in fig.axes if ax.get_xlabel() in ("x", "y")]
    assert [ax.get_xlabel() for ax in panels] == ["x", "y"]
    measured = sum(e["value"] is not None for e in data["evaluations"])
    failed = len(data["evaluations"]) - measured
    x_panel, y_panel = panels
    assert y_panel.get_xscale() == "log"                 # 0.001 .. 1 spans three decades
    coloured = x_panel.collections[0]
    assert len(coloured.get_offsets()) == measured
    assert list(coloured.get_array()) == [e["order"] for e in data["evaluations"]
                                          if e["value"] is not None]
    crosses = x_panel.collections[1].get_offsets()
    assert len(crosses) == failed and all(float(x) == 5 for x, _ in crosses)
    low, high = x_panel.get_xlim()
    assert low < 0 and high > 6
    plt.close(fig)


def test_dsice_path_follows_the_base_of_every_stage(dsice):
    data = queries.query(str(dsice), search_data)
    fig = plots_search.dsice_path(plt, data)
    stages = data["stages"]
    for k, ax in enumerate(fig.axes):
        base_line = next(line for line in ax.get_lines() if line.get_label() == "base point")
        assert list(base_line.get_xdata()) == [st["number"] for st in stages]
        assert list(base_line.get_ydata()) == [st["base"][k] for st in stages]
        on_line, = [c for c in ax.collections
                    if c.get_label() == "line search along this parameter"]
        assert len(on_line.get_offsets()) > 0
    assert [ax.get_ylabel() for ax in fig.axes] == ["x", "y"]
    plt.close(fig)


def test_parallel_coordinates_draw_one_line_per_value(dsice):
    data = queries.query(str(dsice), search_data)
    fig = plots_search.parallel(plt, data)
    ax = fig.axes[0]
    lines = ax.collections[0].get_segments()
    measured = [e for e in data["evaluations"] if e["value"] is not None]
    assert len(lines) == len(measured)
    assert all(len(seg) == 3 for seg in lines)           # x, y, objective
    best = lines[-1]                                      # drawn last, on top
    assert best[-1][1] == pytest.approx(0.0)              # the lowest value at the bottom
    plt.close(fig)


def test_write_all_search_plots(dsice, tmp_path):
    data = queries.query(str(dsice), search_data)
    paths = plots_search.write_all(data, tmp_path / "plots")
    assert [p.name for p in paths] == list(plots_search.FILES)
    for p in paths:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 15_000, p.name


def test_search_plots_of_a_grid_search_without_stages(early_failures, tmp_path):
    data = queries.query(str(early_failures), search_data)
    fig = plots_search.dsice_path(plt, data)
    assert "no stage finished yet" in fig.axes[0].texts[0].get_text()
    plt.close(fig)


def test_plot_command_writes_six_pngs_into_the_work_directory(dsice, cli):
    proc = cli("plot", str(dsice))
    assert proc.returncode == 0, proc.stderr
    out = dsice.parent / "work" / "plots"
    written = [Path(line) for line in proc.stdout.splitlines()]
    assert [p.name for p in written] == [*plots.FILES, *plots_search.FILES]
    assert all(p.parent == out and p.read_bytes()[:8] == PNG for p in written)
    proc = cli("plot", str(dsice.parent / "work" / "state.db"))       # the database: same place
    assert proc.returncode == 0 and proc.stdout.splitlines()[0] == str(out / "objective.png")
    proc = cli("plot", "postgresql://nobody@localhost/none")
    assert proc.returncode == 2 and "needs --out" in proc.stderr
