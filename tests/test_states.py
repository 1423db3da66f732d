"""The state vocabulary: stored as the same strings as before, and one version check."""
from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

from orchestrator import states
from orchestrator.models import SCHEMA_VERSION
from orchestrator.states import (
    AttemptKind,
    AttemptState,
    ExperimentState,
    FailureKind,
    JournalKind,
    Origin,
    PointState,
)
from scheduler_adapters.base import JobState
from tests.conftest import ROOT


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


# ---- no bare state string outside the enums ------------------------------------------------
# A field is known by its name: "state" holds states, "kind" kinds, "origin" origins. Compared,
# assigned, passed as a keyword, put in a dict or written in SQL as a bare literal of its
# vocabulary, it should be the enum member instead (the stored string is the same).
VOCABULARIES = {
    "state": {m.value for e in (AttemptState, PointState, ExperimentState, JobState) for m in e},
    "kind": {m.value for e in (AttemptKind, JournalKind, FailureKind) for m in e},
    "origin": {m.value for m in Origin},
}
SQL_LITERAL = re.compile(r"\b(state|kind|origin)\s*(?:=|!=|<>|in)\s*\(?\s*'([a-z_-]+)'", re.I)
SCANNED = ("orchestrator", "scheduler_adapters", "jobs", "benchmarks")


def _vocabulary(name: str | None) -> set[str]:
    return next((v for field, v in VOCABULARIES.items() if name and field in name.lower()), set())


def _field(node: ast.AST) -> str | None:
    """The field an expression reads: ``state``, ``row.state``, ``rec["state"]``,
    ``rec.get("state")``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    key = (node.slice if isinstance(node, ast.Subscript) else
           node.args[0] if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
           and node.func.attr == "get" and node.args else None)
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


def _literals(node: ast.AST | None) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*map(_literals, node.elts))
    return set()


def _field_value_pairs(node: ast.AST) -> list[tuple[str | None, ast.AST | None]]:
    if isinstance(node, ast.Compare):
        sides = [node.left, *node.comparators]
        return [(_field(a), b) for a in sides for b in sides if a is not b]
    if isinstance(node, ast.Assign):
        return [(_field(target), node.value) for target in node.targets]
    if isinstance(node, ast.AnnAssign):
        return [(_field(node.target), node.value)]
    if isinstance(node, ast.keyword):
        return [(node.arg, node.value)]
    if isinstance(node, ast.Dict):
        return [(k.value, v) for k, v in zip(node.keys, node.values)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    return []


def bare_state_literals(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        for name, value in _field_value_pairs(node):
            if bare := _literals(value) & _vocabulary(name):
                found.append(f"line {getattr(node, 'lineno', '?')}: {name} vs {sorted(bare)}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"line {node.lineno}: SQL {m.group(0)}"
                      for m in SQL_LITERAL.finditer(node.value)
                      if m.group(2) in _vocabulary(m.group(1))]
    return found


def test_the_scan_finds_each_shape_of_bare_state_literal():
    shapes = """
a.state == "running"
row["state"] in ("failed", "cancelled")
rec.get("kind") != "setup"
exp.state = "finished"
make(origin="known")
{"state": "pending"}
text("select 1 from attempts where state = 'succeeded'")
"""
    assert len(bare_state_literals(shapes)) == 7
    assert bare_state_literals('e.kind == "finished"\nlabel = "running"\n'
                               'a.state == AttemptState.RUNNING') == []


def test_no_bare_state_literal_outside_the_enums():
    found = {}
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "orchestrator" / "states.py":
                continue
            if hits := bare_state_literals(path.read_text()):
                found[str(path.relative_to(ROOT))] = hits
    assert found == {}
