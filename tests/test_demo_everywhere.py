"""The demo experiment end to end on every scheduler: the same best point as on the local one.

Slurm and Grid Engine are real (started by .ci/run: scripts/slurm-start.sh, scripts/sge-start.sh);
PJM is the shipped emulator. Each run uses the demo's space and objective with a scheduler
section swapped in, and DSICE instead of the exhaustive grid to keep the job count modest.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from scheduler_adapters.emulators import BIN_DIR
from scheduler_adapters.emulators.pjm import PJMEmulator
from tests.conftest import ROOT, run_cli

DEMO = (ROOT / "configs" / "demo.toml").read_text()


def demo_variant(tmp_path: Path, scheduler: str) -> Path:
    text = DEMO.replace('work_dir = "../runs/demo"', 'work_dir = "work"')
    text = text.replace('strategy = "grid"', 'strategy = "dsice"')
    text = re.sub(r"\[scheduler\].*", scheduler, text, flags=re.S)
    path = tmp_path / "demo.toml"
    path.write_text(text)
    return path


def best_of(path: Path, env: dict[str, str] | None = None) -> dict:
    proc = run_cli("start", str(path), env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(run_cli("status", str(path), "--json").stdout)
    assert status["state"] == "finished"
    return status["best"]["params"]


@pytest.fixture(scope="module")
def local_best(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("local")
    return best_of(demo_variant(tmp, '[scheduler]\nkind = "local"\ncap = 8\npoll_interval = 0.2\n'))


def test_demo_optimum_on_local(local_best):
    assert local_best == {"x": 0.5, "lr": 0.01, "batch": 4}


def test_the_demo_as_shipped_finds_the_true_grid_optimum(tmp_path):
    """`make demo` runs configs/demo.toml (grid strategy): it must report the grid's optimum,
    computed here by brute force from the synthetic objective."""
    import itertools

    from jobs.examples.synthetic import loss
    from orchestrator.config import load_config
    path = tmp_path / "demo.toml"
    path.write_text(DEMO.replace('work_dir = "../runs/demo"', 'work_dir = "work"'))
    config = load_config(path)
    grid = [dict(zip(config.values, combo)) for combo in itertools.product(*config.values.values())]
    centers = {"x": 0.5, "lr": -2.0, "batch": 0.6}
    optimum = min(grid, key=lambda p: loss(p, centers, {"lr", "batch"}))
    proc = run_cli("start", str(path), timeout=300)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(run_cli("status", str(path), "--json").stdout)
    assert status["state"] == "finished" and status["evaluations"] == len(grid) == 144
    assert status["best"]["params"] == optimum
    assert status["best"]["value"] == pytest.approx(loss(optimum, centers, {"lr", "batch"}))


def test_demo_on_pjm_emulator(tmp_path, local_best):
    root = tmp_path / "pjm-state"
    emulator = PJMEmulator(root)
    emulator.configure(user="user1")
    path = demo_variant(tmp_path, f'[scheduler]\nkind = "pjm"\ncap = 8\npoll_interval = 0.3\n'
                                  f'options = {{ rscgrp = "cx-share", gpus = 1, '
                                  f'commands_dir = "{BIN_DIR}" }}\n')
    env = {"PJM_EMULATOR_DIR": str(root), "PJM_EMULATOR_PYTHON": sys.executable}
    try:
        assert best_of(path, env) == local_best
    finally:
        emulator.shutdown()


@pytest.mark.drmaa
def test_demo_on_grid_engine(tmp_path, local_best, require_sge):
    path = demo_variant(tmp_path, '[scheduler]\nkind = "drmaa"\ncap = 8\npoll_interval = 0.5\n')
    assert best_of(path) == local_best


@pytest.mark.slurm
def test_demo_on_slurm(tmp_path, local_best, require_slurm):
    path = demo_variant(tmp_path, '[scheduler]\nkind = "slurm"\ncap = 8\npoll_interval = 0.5\n'
                                  'options = { partition = "debug" }\n')
    assert best_of(path) == local_best


@pytest.fixture
def require_sge() -> None:
    if not os.environ.get("SGE_ROOT"):
        if os.environ.get("REQUIRE_DRMAA") == "1":
            pytest.fail("REQUIRE_DRMAA=1 but SGE is not running (scripts/sge-start.sh)")
        pytest.skip("no Grid Engine: eval \"$(bash scripts/sge-start.sh)\" to run this")


@pytest.fixture
def require_slurm() -> None:
    if not os.environ.get("SLURM_CONF"):
        if os.environ.get("REQUIRE_SLURM") == "1":
            pytest.fail("REQUIRE_SLURM=1 but Slurm is not running (scripts/slurm-start.sh)")
        pytest.skip("no Slurm: eval \"$(bash scripts/slurm-start.sh)\" to run this")
