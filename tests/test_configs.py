"""Every shipped config loads, and its strategy and scheduler adapter can be built."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.schedulers import build_scheduler
from orchestrator.strategies import build_strategy

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_config_is_valid(path: Path):
    config = load_config(path)
    strategy = build_strategy(config, config.model.scheduler.cap)
    assert strategy.ask()                           # it proposes a first round
    if config.model.scheduler.kind in ("slurm", "pjm"):
        assert build_scheduler(config).kind == config.model.scheduler.kind


def test_paper_config_has_the_paper_grid():
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "flow-type2-ddbpn.toml")
    assert config.shape == (10, 11, 11, 11)
    assert config.model.scheduler.cap == 26
    assert config.model.scheduler.options == {"rscgrp": "cx-share", "gpus": 1}
    assert config.model.setup is not None and "{setup_checkpoint}" in config.model.trial.command
