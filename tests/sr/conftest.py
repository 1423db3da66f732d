"""Fixtures for the super-resolution example's tests."""
from __future__ import annotations

from typing import Any

import pytest

from tests.sr.programs import SMOKE_PRETRAIN, read_json, run_module


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The result of one smoke-size pre-training (its checkpoint is shared by the tests)."""
    run_dir = tmp_path_factory.mktemp("pretrain")
    result = run_dir / "setup-result.json"
    done = run_module("jobs.examples.sr.pretrain", ["--out-dir", str(run_dir / "out"), *SMOKE_PRETRAIN],
                      cwd=run_dir, extra_env={"ORCH_RESULT_FILE": str(result)})
    assert done.returncode == 0, done.stderr
    return read_json(result)
