"""The live dashboard, looked at in a real headless Chromium: on finished experiments, on one
whose master is running (the page refreshes itself and shows new results, then says that no
master is watching), over a directory of experiments, with a token; and its figures and
read-only connections directly."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import InternalError, OperationalError

from orchestrator import queries
from orchestrator.dashboard import DashboardError, app, figures, sources
from orchestrator.errors import NoExperiment
from orchestrator.search_view import search_data

from .browser import Browser, chromium_binary
from .conftest import BASE_CONFIG, DEFAULTS, ROOT
from .test_plots_search import DSICE_SPACE, start
from .test_postgres import pg_config, pg_url  # noqa: F401  (a fresh PostgreSQL database)

pytest.importorskip("bottle")
pytest.importorskip("plotly")

CHARTS = ("objective", "path", "timeline", "slots")


def write(path: Path, **fields: object) -> Path:
    """A config whose work directory is runs/NAME beside it (experiments side by side)."""
    text = textwrap.dedent(BASE_CONFIG.format(**{**DEFAULTS, **fields}))
    path.write_text(text.replace('work_dir = "work"', f'work_dir = "runs/{fields["name"]}"'))
    return path


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> Path:
    """A directory with two finished experiments: a DSICE search whose points with x = 5 fail,
    and a grid search."""
    root = tmp_path_factory.mktemp("campaign")
    start(write(root / "dsice.toml", name="dsice", strategy="dsice", parameters=DSICE_SPACE,
                retries=0, command="{python} -m jobs.examples.synthetic --center x=2 --log y "
                                   "--center y=-2 --fail-when x=5"))
    start(write(root / "grid.toml", name="grid"))
    return root


class Dashboard:
    def __init__(self, target: Path | str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "dashboard", str(target), "--port", "0",
             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "http://" not in line:
            self.proc.kill()
            raise AssertionError(f"no address printed: {line!r} {self.proc.communicate()[1]}")
        self.banner = line
        self.url = line.split(" at ", 1)[1].split(" ", 1)[0]

    def get(self, path: str) -> tuple[int, bytes]:
        base = self.url.split("?")[0]
        try:
            with urllib.request.urlopen(base + path, timeout=30) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def dashboards() -> Iterator[list[Dashboard]]:
    started: list[Dashboard] = []
    yield started
    for d in started:
        d.stop()


@pytest.fixture
def browser(tmp_path) -> Iterator[Browser]:
    b = Browser(chromium_binary(), tmp_path / "profile")
    yield b
    b.close()


def status_of(config: Path) -> dict:
    return queries.query(str(config), queries.status)


def evaluations_so_far(config: Path) -> int:
    try:
        return int(status_of(config)["evaluations"])
    except NoExperiment:              # the master has not created it yet
        return 0


def shown_number(browser: Browser) -> int:
    return int(browser.text("#progress-done").split("/")[0])


def charts_rendered(browser: Browser) -> bool:
    return bool(browser.evaluate(" && ".join(
        f"document.querySelector('#chart-{c} .main-svg') !== null" for c in CHARTS)))


def test_finished_experiment_in_the_browser(campaign, dashboards, browser):
    config = campaign / "dsice.toml"
    expected = status_of(config)
    dashboards.append(d := Dashboard(config))
    assert "127.0.0.1" in d.url and "this machine only" in d.banner
    browser.open(d.url)
    browser.wait_for("document.body.dataset.refreshes >= 1", what="the first refresh")
    browser.wait_for(" && ".join(f"document.querySelector('#chart-{c} .main-svg')" for c in
                                 CHARTS), what="four rendered charts")
    done = expected["evaluations"] + expected["failed_points"]
    assert browser.text("#progress-done") == f"{done} / {done}"
    assert browser.text("#state") == "finished"
    assert browser.text("#progress-best") == "0"
    assert browser.text("#progress-best-params").startswith("x=2 y=0.01")
    assert browser.text("#progress-left") == "nothing (finished)"
    assert browser.text("#progress-stage") == f"{expected['stage']} (level {expected['level']})"
    assert "No master is watching" in browser.text("#watch")
    assert browser.evaluate("document.title") == "dsice: finished"
    # What the charts hold: a marker per measured value, a cross per failed point, a DSICE
    # panel per parameter, a bar per attempt.
    points = browser.evaluate("Array.from(document.querySelectorAll("
                              "'#chart-objective .scatterlayer .trace')).map("
                              "t => t.querySelectorAll('.point').length)")
    assert points[0] == expected["evaluations"] and points[2] == expected["failed_points"]
    assert browser.evaluate("Array.from(document.querySelectorAll("
                            "'#chart-path text[class^=\"y\"][class$=\"title\"]'))"
                            ".map(t => t.textContent)") == ["x", "y"]     # ytitle, y2title
    bars = browser.evaluate("document.querySelectorAll('#chart-timeline .bars .point').length")
    assert bars >= expected["attempts"]               # a run bar each, plus queued bars
    kinds = browser.evaluate("Array.from(document.querySelectorAll('#events tbody tr'))"
                             ".map(r => r.children[1].textContent)")
    assert kinds[0] == "finished" and "stage" in kinds
    assert browser.text("#queue-count") == "(nothing in flight)"


def test_running_experiment_refreshes_and_then_says_no_master_watches(write_config, dashboards,
                                                                      browser):
    config = write_config(name="live", cap=2, command="{python} -m jobs.examples.synthetic "
                          "--center x=2 --center y=1 --sleep 0.6")
    master = subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(config)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while evaluations_so_far(config) < 1:
            assert time.monotonic() < deadline and master.poll() is None
            time.sleep(0.2)
        dashboards.append(d := Dashboard(config))
        browser.open(d.url)
        browser.wait_for("document.body.dataset.refreshes >= 1", what="the first refresh")
        assert "is watching this experiment" in browser.text("#watch")
        assert browser.text("#state") == "running"
        first = shown_number(browser)
        assert first < 12 and browser.text("#progress-done").endswith("/ 12")
        # Without reloading, the page shows results the master records after it opened.
        browser.wait_for(f"parseInt(document.querySelector('#progress-done').textContent) "
                         f">= {first + 2}", timeout=60, what="newer results on the page")
        assert int(browser.evaluate("document.body.dataset.refreshes")) >= 2
        assert master.wait(timeout=90) == 0, master.stderr.read() if master.stderr else ""
    finally:
        if master.poll() is None:
            master.kill()
    final = status_of(config)
    assert final["state"] == "finished" and final["evaluations"] == 12   # undisturbed
    browser.wait_for("document.querySelector('#watch').textContent.includes('No master')",
                     timeout=30, what="the page to say that no master watches")
    assert browser.text("#progress-done") == "12 / 12"
    assert browser.text("#state") == "finished"


def test_a_directory_lists_every_experiment(campaign, dashboards, browser):
    dashboards.append(d := Dashboard(campaign))
    code, body = d.get("/api/experiments")
    listing = json.loads(body)
    assert code == 200 and listing["single"] is False
    assert sorted(x["label"] for x in listing["experiments"]) == ["dsice", "grid"]
    browser.open(d.url)
    browser.wait_for("document.querySelectorAll('#experiments tbody tr').length == 2",
                     what="two experiments listed")
    rows = browser.evaluate("Array.from(document.querySelectorAll('#experiments tbody tr'))"
                            ".map(r => Array.from(r.children).map(c => c.textContent))")
    assert {r[0] for r in rows} == {"dsice", "grid"}
    assert all(r[1] == "finished" and r[2] == "none" for r in rows)
    grid = next(r for r in rows if r[0] == "grid")
    assert grid[3] == "12 / 12" and grid[4] == "0"
    browser.evaluate("document.querySelector('#experiments a').click()")
    browser.wait_for("!document.querySelector('#detail-view').hidden && "
                     "document.querySelector('#chart-objective .main-svg')",
                     what="the detail page of the linked experiment")


def test_token_guards_every_request(campaign, dashboards, tmp_path, browser):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token-for-the-test\n")
    dashboards.append(d := Dashboard(campaign / "grid.toml", "--token-file", str(token_file)))
    assert d.url.endswith("?token=s3cret-token-for-the-test")
    for path in ("/", "/api/experiments", "/static/plotly.min.js", "/static/dashboard.js"):
        code, body = d.get(path)
        assert code == 403 and b"token" in body, path
        code, _ = d.get(path + "?token=wrong")
        assert code == 403, path
    code, body = d.get("/?token=s3cret-token-for-the-test")
    assert code == 200 and b"static/dashboard.js?token=s3cret-token-for-the-test" in body
    browser.open(d.url)
    browser.wait_for("document.querySelector('#chart-objective .main-svg')",
                     what="the page with its token")


def test_serving_beyond_loopback_needs_a_token(campaign, dashboards):
    with pytest.raises(DashboardError, match="needs a token"):
        app.check_binding("0.0.0.0", None)
    app.check_binding("127.0.0.1", None)
    app.check_binding("::1", None)
    dashboards.append(d := Dashboard(campaign / "grid.toml", "--host", "0.0.0.0"))
    assert "token required" in d.banner and "?token=" in d.url
    assert d.get("/api/experiments")[0] == 403


def test_reader_connections_are_read_only(campaign):
    source = sources.discover(str(campaign / "grid.toml"))[0]
    reader = sources.Reader()
    try:
        view = reader.read(source, sources.summary)
        assert view["progress"] == {**view["progress"], "done": 12, "total": 12}
        with reader._engine(source.url).connect() as conn, \
                pytest.raises(OperationalError, match="readonly"):
            conn.exec_driver_sql("CREATE TABLE intruder (i INTEGER)")
    finally:
        reader.close()
    missing = sources.Source("none", f"sqlite:///{campaign / 'nowhere' / 'state.db'}")
    assert "no experiment yet" in sources.Reader().read(missing, sources.summary)["missing"]


def test_figures_follow_the_data(campaign):
    config = str(campaign / "dsice.toml")
    plot = queries.query(config, queries.plot_data)
    search = queries.query(config, search_data)
    objective = figures.objective(plot)
    evaluation, best, failed = objective["data"]
    assert len(evaluation["x"]) + len(failed["x"]) == len(plot["values"])
    assert failed["yaxis"] == "y2" and objective["layout"]["yaxis2"]["range"] == [0, 1]
    assert objective["layout"]["xaxis"]["range"][0] < min(failed["x"] + evaluation["x"])
    assert best["y"][-1] == 0.0 and best["y"] == sorted(best["y"], reverse=True)
    assert len(objective["layout"]["shapes"]) == len(plot["stage_boundaries"])
    path = figures.dsice_path(search)
    bases = [t for t in path["data"] if t["name"] == "base point"]
    assert [t["y"] for t in bases] == [[st["base"][k] for st in search["stages"]]
                                      for k in range(2)]
    assert path["layout"]["yaxis2"]["ticktext"] == ["0.001", "0.01", "0.1", "1"]
    slots = figures.slot_use(plot)
    cap = next(t for t in slots["data"] if t["name"].startswith("cap"))
    assert cap["line"]["color"] != figures.FAILED and cap["y"] == [plot["cap"]] * 2
    assert next(t for t in slots["data"] if t["name"] == "queued")["yaxis"] == "y2"
    json.dumps(figures.all_figures(plot, search), allow_nan=False)     # what the page gets


@pytest.mark.postgres
def test_dashboard_on_postgresql_reads_in_read_only_transactions(write_config, pg_url, cli,  # noqa: F811
                                                                  dashboards):
    path = pg_config(write_config, pg_url, name="pg")
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    dashboards.append(d := Dashboard(path))
    code, body = d.get("/api/experiments")
    (listed,) = json.loads(body)["experiments"]
    assert code == 200 and listed["progress"]["done"] == 12 and listed["progress"]["total"] == 12
    code, body = d.get(f"/api/e/{listed['slug']}")
    page = json.loads(body)
    assert code == 200 and page["status"]["state"] == "finished"
    assert len(page["figures"]["objective"]["data"][0]["x"]) == 12
    source = sources.discover(str(path))[0]
    reader = sources.Reader()
    try:
        def write_attempt(s, exp):
            s.execute(text("CREATE TABLE intruder (i integer)"))
            return {}
        with pytest.raises(InternalError, match="read-only transaction"):
            reader.read(source, write_attempt)
    finally:
        reader.close()
