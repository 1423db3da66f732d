"""configs/sr-local.toml and the programs agree: its commands parse with every grid value."""
from __future__ import annotations

import itertools
import shlex
import tomllib

import pytest

pytest.importorskip("torch")

from jobs.examples.sr import finetune, pretrain  # noqa: E402
from tests.sr.programs import PROJECT_ROOT  # noqa: E402

CONFIG = PROJECT_ROOT / "configs" / "sr-local.toml"


def expand(command: str, values: dict[str, object]) -> list[str]:
    """Split first, then substitute, as the orchestrator does (no shell)."""
    return [word.format(**values) for word in shlex.split(command)]


def test_setup_and_trial_commands_parse_for_every_grid_point() -> None:
    config = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    assert config["objective"] == {"key": "niqe", "direction": "minimize"}
    setup = expand(config["setup"]["command"], {"python": "python", "run_dir": "/tmp/x"})
    assert setup[:3] == ["python", "-m", "jobs.examples.sr.pretrain"]
    pretrain.parse_args(setup[3:])

    grid = {name: spec["values"] for name, spec in config["parameters"].items()}
    trial = config["trial"]["command"]
    for point in itertools.product(*grid.values()):
        values = {"python": "python", "setup_checkpoint": "/tmp/x/pretrained.pt",
                  **dict(zip(grid, point))}
        words = expand(trial, values)
        assert words[:3] == ["python", "-m", "jobs.examples.sr.finetune"]
        args = finetune.parse_args(words[3:])
        assert (args.lr, args.w2, args.w3, args.w4) == tuple(float(v) for v in point)
