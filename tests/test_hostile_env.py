"""A hostile environment: read-only state, unsafe work directories, links where the master writes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of our own, which a test may remount read-only (needs root)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs",
                                            str(mount)], capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_admin_writes_on_a_read_only_database_are_one_line(write_config, cli, small_fs):
    path = write_config(parameters="x = { values = [0, 1, 2] }", cap=1)
    path.write_text(path.read_text().replace('work_dir = "work"', f'work_dir = "{small_fs}/work"'))
    crashed = subprocess.run([sys.executable, "-m", "orchestrator", "start", str(path)], cwd=ROOT,
                             env={**os.environ, "ORCH_CRASH_AT": "after-intent:2"},
                             capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -9
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    before = (small_fs / "work" / "state.db").read_bytes()
    proc = cli("cancel", str(path))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "cannot write the state database" in lines[0] and "readonly" in lines[0]
    assert (small_fs / "work" / "state.db").read_bytes() == before
