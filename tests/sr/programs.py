"""Running the super-resolution programs as real subprocesses, at the "smoke" size (a few
optimiser steps on small batches, held-out images cropped to 200 pixels)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SMOKE_PRETRAIN = ["--steps", "20", "--batch-size", "4", "--eval-crop", "200"]
SMOKE_FINETUNE = ["--steps", "4", "--batch-size", "4", "--eval-crop", "200"]


def run_module(module: str, args: list[str], cwd: Path, cpus: str | None = "1",
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module args`` as the orchestrator would: project root on PYTHONPATH, the
    run directory as working directory, the CPU allocation in ORCH_CPUS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    if cpus is not None:
        env["ORCH_CPUS"] = cpus
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
