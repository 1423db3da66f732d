"""The store and the lease on a real PostgreSQL server (scripts/postgres-start.sh)."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = os.environ.get("ORCH_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("REQUIRE_POSTGRES=1 but ORCH_TEST_POSTGRES_URL is not set "
                        "(eval \"$(bash scripts/postgres-start.sh)\")")
        pytest.skip("no PostgreSQL: eval \"$(bash scripts/postgres-start.sh)\" to run these")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = "t_" + uuid.uuid4().hex[:12]
    try:
        with admin.connect() as con:
            con.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as con:
        con.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def pg_config(write_config, url: str, **kw):
    path = write_config(**kw)
    path.write_text(path.read_text().replace('work_dir = "work"',
                                             f'work_dir = "work"\ndatabase = "{url}"'))
    return path


def test_full_run_on_postgres(write_config, cli, pg_url):
    path = pg_config(write_config, pg_url)
    proc = cli("start", str(path))
    assert proc.returncode == 0, proc.stderr
    status = cli("status", str(path), "--json")
    assert status.returncode == 0, status.stderr
    assert '"state": "finished"' in status.stdout and '"value": 0.0' in status.stdout
    engine = create_engine(pg_url)
    with engine.connect() as con:
        assert con.execute(text("select count(*) from evaluations")).scalar() == 12
        assert con.execute(text("select released from lease")).scalar() is True
    engine.dispose()


def test_two_masters_at_the_same_instant_on_postgres(write_config, pg_url):
    path = pg_config(write_config, pg_url, parameters='x = { values = [0, 1, 2, 3] }', cap=2,
                     command="{python} -m jobs.examples.synthetic --sleep 0.3")
    procs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    codes = sorted(p.wait(60) for p in procs)
    assert codes == [0, 3], [p.stderr.read() for p in procs]
    engine = create_engine(pg_url)
    with engine.connect() as con:
        assert con.execute(text("select count(*) from attempts")).scalar() == 4
    engine.dispose()


def test_dead_master_is_taken_over_on_postgres(write_config, pg_url):
    path = pg_config(write_config, pg_url, parameters='x = { values = [0, 1, 2] }', cap=1,
                     command="{python} -m jobs.examples.synthetic --sleep 0.3")
    crashed = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                             env={**os.environ, "ORCH_CRASH_AT": "after-intent:2"},
                             capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -9
    resumed = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    engine = create_engine(pg_url)
    with engine.connect() as con:
        assert con.execute(text("select count(*) from attempts")).scalar() == 3
        assert con.execute(text("select count(*) from evaluations where value is not null")).scalar() == 3
    engine.dispose()


def test_read_commands_name_another_versions_database_on_postgres(write_config, cli, pg_url):
    """An empty database is 'no experiment'; a missing column is named, after PostgreSQL has
    refused the first statement (the read model then asks again in a fresh transaction)."""
    path = pg_config(write_config, pg_url, parameters='x = { values = [0, 1] }')
    proc = cli("status", str(path))
    assert proc.returncode == 4 and "no experiment in" in proc.stderr
    assert cli("start", str(path)).returncode == 0
    engine = create_engine(pg_url)
    with engine.begin() as con:
        con.execute(text("alter table experiments drop column instance"))
    engine.dispose()
    for command in ("status", "events", "cancel"):
        proc = cli(command, str(path))
        assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert "another version of orchestrator (table experiments lacks column instance)" \
            in proc.stderr
