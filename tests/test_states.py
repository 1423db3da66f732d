"""The state vocabulary: stored as the same strings as before, and one version check."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from orchestrator import states
from orchestrator.models import SCHEMA_VERSION
from orchestrator.states import AttemptState, ExperimentState, FailureKind, Origin, PointState
from scheduler_adapters.base import JobState


def test_members_are_the_stored_strings():
    assert [s.value for s in AttemptState] == [
        "submitting", "submitted", "pending", "running", "succeeded", "failed", "timeout",
        "cancelled", "node_fail", "unknown", "continued"]
    assert [s.value for s in PointState] == ["pending", "active", "done", "failed", "cancelled"]
    assert [s.value for s in ExperimentState] == [
        "not-started", "running", "finished", "cancelled", "failed"]
    assert [s.value for s in FailureKind] == ["program", "infra"]
    assert [s.value for s in Origin] == ["search", "speculative", "known"]
    # A plain string read back from the database is the member.
    assert "running" in AttemptState.ACTIVE and "cancelled" in ExperimentState.ENDED


def test_every_member_is_documented():
    source = Path(states.__file__).read_text()
    for enum in (AttemptState, PointState, ExperimentState, FailureKind, Origin):
        for member in enum:
            assert f'{member.name} = "{member.value}"\n    """' in source, member


def test_attempt_states_follow_the_scheduler_vocabulary():
    # Every scheduler state the master records for a live job, and every terminal one it
    # records as an outcome, is an attempt state with the same terminality.
    for job_state in JobState:
        if job_state is JobState.UNKNOWN:
            continue                       # unknown: counted, recorded only once vanished
        assert AttemptState(job_state.value).terminal == job_state.terminal, job_state
    assert not AttemptState.SUBMITTING.terminal


def test_database_of_another_schema_version_names_both(write_config, cli, tmp_path):
    path = write_config(parameters='x = { values = [0, 1] }')
    assert cli("start", str(path)).returncode == 0
    con = sqlite3.connect(tmp_path / "work" / "state.db")
    con.execute("update experiments set schema_version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    proc = cli("start", str(path))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert (f"another version of orchestrator (schema version {SCHEMA_VERSION + 1}; "
            f"this version reads {SCHEMA_VERSION})") in proc.stderr
