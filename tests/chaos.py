"""The kill -9 chaos run shared by the crash-safety, refill and eager tests.

The master is killed with SIGKILL again and again and restarted with ``orchestrator start``
each time, as cron would; meanwhile the dashboard's reader reads beside every master, and
``status --json`` / ``history --json`` read right after every kill (when a hot rollback journal
may be waiting). None of those reads may fail. At the end nothing is lost, no point ran twice,
and (where the search's decisions depend only on the values) the history equals that of an
uninterrupted run.

Kills are paced by progress, so that the wanted number of kills fits before the search ends
whatever the speed of the machine: a master may use the time its random kill instant gives it
only while the search's progress stays behind the share of kills done; otherwise it is killed
at a random instant of its start-up, at the latest when it takes the lease.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import cli
from orchestrator.dashboard import sources
from orchestrator.hot_journal import is_hot_journal
from tests.conftest import ROOT

CHAOS_PARAMS = ('x = { values = [0, 1, 2, 3, 4, 5] }\ny = { values = [0, 1, 2, 3, 4, 5] }\n'
                'z = { values = [0, 1, 2, 3, 4] }')
# Half the rounds, for the runs whose jobs cost more (real Slurm) or with a few kills only.
SMALL_PARAMS = 'x = { values = [0, 1, 2, 3, 4, 5] }\ny = { values = [0, 1, 2, 3, 4, 5] }'
CRASH_POINTS = ("after-intent", "after-submit", "before-evaluation")
# Progress may reach this share of the kills' share: the last kills still find the search with
# a fifth of its work left.
PROGRESS_PER_KILL = 0.8
POLL_S = 0.1


def start_master(path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path), "--quiet"],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def chaos_config(write_config, name: str, record: Path, kind: str, options: str,
                 search_extra: str = "", parameters: str = CHAOS_PARAMS, sleep: float = 0.15):
    centres = "--center x=4 --center y=1 --center z=3 --center w=2"
    path = write_config(f"{name}.toml", name=name, cap=3, poll=0.05, parameters=parameters,
                        strategy="dsice", scheduler_extra=options, search_extra=search_extra,
                        command=f"{{python}} -m jobs.examples.synthetic {centres} "
                                f"--sleep {sleep} --record {record}")
    path.write_text(path.read_text().replace('kind = "local"', f'kind = "{kind}"'))
    return path


def outcome_sequence(db: Path) -> tuple[list[tuple], list[tuple]]:
    """The search's decisions: points per round with their values, and the stages."""
    con = sqlite3.connect(db)
    points = con.execute("select p.key, p.round, e.value from points p join evaluations e "
                         "on e.point_id = p.id order by p.round, p.key").fetchall()
    stages = con.execute("select number, level, base, points, best, best_value, moved "
                         "from stages order by number").fetchall()
    return points, stages


def finished(db: Path) -> bool:
    try:
        return sqlite3.connect(db).execute("select state from experiments").fetchone()[0] == "finished"
    except sqlite3.Error:
        return False


def wait_all_jobs_ended(db: Path, timeout: float = 20) -> None:
    """Jobs outlive a killed master; let the stragglers finish before counting runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["pgrep", "-f", "scheduler_adapters.local_runner " + str(db.parent)],
                             capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(0.2)


class Reads:
    """The reads a user makes during the chaos: the dashboard's reader beside each master (one
    engine kept for the whole run, as the dashboard keeps it) and the read commands after each
    kill. Any failure fails the test."""

    def __init__(self, config: Path, db: Path) -> None:
        self.config, self.db = config, db
        self.reader = sources.Reader()
        self.source = sources.Source("chaos", f"sqlite:///{db}")
        self.count = 0
        self.hot_journals = 0     # kills after which a plain read-only open was refused

    def dashboard(self, full: bool = False) -> dict[str, Any]:
        """The page's read (``full``) or its summary; {} before the database exists."""
        view = self.reader.read(self.source, sources.snapshot if full else sources.summary)
        self.count += 1
        return {} if "missing" in view else view["status"]

    def after_kill(self, n: int) -> None:
        if self._journal_is_hot():
            self.hot_journals += 1
        command = ("status", "history")[n % 2]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main([command, str(self.config), "--json"])
        assert code == 0, f"{command} failed after kill {n}"
        json.loads(out.getvalue())
        self.count += 1

    def _journal_is_hot(self) -> bool:
        if not self.db.with_name(self.db.name + "-journal").exists():
            return False
        try:
            sqlite3.connect(f"file:{self.db}?mode=ro", uri=True).execute(
                "select count(*) from sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            return is_hot_journal(exc)
        return False

    def close(self) -> None:
        self.reader.close()


@dataclass
class Campaign:
    """One experiment under chaos, killed ``wanted`` times."""

    path: Path
    db: Path
    wanted: int
    target: int | None           # evaluations of the uninterrupted run, when known
    rng: random.Random
    reads: Reads
    kills: int = 0
    lives: int = 0
    quiet: int = 0               # lives killed in their start-up to keep pace

    def progress_ahead(self) -> bool:
        """True when the search has run further than its share of the kills allows."""
        if self.target is None:
            return False
        done = self.reads.dashboard().get("evaluations", 0)
        return done >= PROGRESS_PER_KILL * self.target * (self.kills + 1) / self.wanted

    def live_once(self) -> None:
        ahead = self.progress_ahead()
        self.lives += 1
        if self.lives % 3 == 1 and not ahead:    # a crash exactly at a dangerous place
            spec = f"{CRASH_POINTS[self.lives % len(CRASH_POINTS)]}:{self.rng.randint(1, 3)}"
            proc = start_master(self.path, {"ORCH_CRASH_AT": spec})
            while proc.poll() is None:
                self._read_beside(proc, until_lease=False, deadline=time.monotonic() + POLL_S)
            killed = proc.returncode == -signal.SIGKILL
        else:                                     # a kill at a random instant
            proc = start_master(self.path)
            deadline = time.monotonic() + self.rng.uniform(0.05, 1.2)
            self.quiet += ahead
            while time.monotonic() < deadline and proc.poll() is None:
                if self._read_beside(proc, until_lease=ahead, deadline=deadline):
                    break
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
            proc.wait(120)
        assert killed or proc.returncode != 0 or not finished(self.db), (
            f"the search finished after only {self.kills} of {self.wanted} kills")
        if killed:
            self.kills += 1
            self.reads.after_kill(self.kills)

    def _read_beside(self, proc: subprocess.Popen[str], *, until_lease: bool,
                     deadline: float) -> bool:
        """One dashboard read while the master lives, then a pause of at most POLL_S that ends
        by ``deadline`` (the kill instant); True once it holds the lease (when ``until_lease``)."""
        status = self.reads.dashboard(full=self.reads.count % 5 == 0)
        time.sleep(max(0.0, min(POLL_S, deadline - time.monotonic())))
        return until_lease and (status.get("master") or {}).get("pid") == proc.pid


def run_chaos(write_config, tmp_path: Path, kills_wanted: int, kind: str = "local",
              options: str = "", search_extra: str = "", compare: bool = True,
              parameters: str = CHAOS_PARAMS) -> Campaign:
    """Kill -9 the master ``kills_wanted`` times (at random instants and at the dangerous
    places), restart it each time; the result must equal an uninterrupted run's (unless
    ``compare`` is False: a search whose decisions depend on when jobs end), with no point run
    twice and no read failing."""
    expected = None
    if compare:
        ref = chaos_config(write_config, "ref", tmp_path / "ref-runs.txt", kind, options,
                           search_extra, parameters, sleep=0)
        assert start_master(ref).wait(300) == 0
        expected = outcome_sequence(tmp_path / "work" / "state.db")
        (tmp_path / "work").rename(tmp_path / "ref-work")

    record = tmp_path / "runs.txt"
    path = chaos_config(write_config, "chaos", record, kind, options, search_extra, parameters)
    db = tmp_path / "work" / "state.db"
    campaign = Campaign(path, db, kills_wanted, expected and len(expected[0]),
                        random.Random(1234), Reads(path, db))
    try:
        while campaign.kills < kills_wanted:
            campaign.live_once()
        final = start_master(path)
        assert final.wait(300) == 0, final.stderr.read() if final.stderr else ""
        campaign.reads.after_kill(0)
    finally:
        campaign.reads.close()
    assert finished(db)
    if expected is None:
        expected = outcome_sequence(db)
    assert outcome_sequence(db) == expected
    wait_all_jobs_ended(db)
    runs = Counter(json.dumps(json.loads(line.split(" ", 3)[3]), sort_keys=True)
                   for line in record.read_text().splitlines())
    measured = len(expected[0])
    assert len(runs) == measured and set(runs.values()) == {1}, runs     # no point ran twice
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from attempts where state = 'succeeded'").fetchone()[0] \
        == measured
    # A kill in the middle of a local submit (job recorded, supervisor not yet spawned) loses
    # that job, never duplicates it: it ends as an infrastructure failure and is retried.
    lost = con.execute("select failure_kind, reason from attempts where state != 'succeeded'"
                       ).fetchall()
    assert all(kind == "infra" for kind, _ in lost), lost
    assert len(lost) <= max(3, campaign.kills // 10), lost
    attempts = con.execute("select count(*) from attempts").fetchone()[0]
    assert con.execute("select count(distinct job_id) from attempts").fetchone()[0] == attempts
    assert len(expected[1]) >= 2                                         # several stages
    return campaign
