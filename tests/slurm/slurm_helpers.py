"""Helpers for the Slurm cluster tests (a module rather than conftest: tests import it)."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


def live_ids(job_ids: Sequence[str]) -> set[str]:
    """Ids squeue still lists, asked of squeue directly rather than through the adapter."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True,
                         text=True, check=True, timeout=30).stdout.split()
    return set(out) & set(job_ids)


def jobs_named(name: str, history: str) -> list[str]:
    """Every job id Slurm knows under this name, live or finished (squeue + history)."""
    live = subprocess.run(["squeue", "-h", "-t", "all", "-n", name, "-o", "%i"],
                          capture_output=True, text=True, check=True, timeout=30).stdout.split()
    history = subprocess.run(["sacct", "-c" if history == "jobcomp" else "-X", "-P", "-n",
                              "-S", "now-1days", "--format=JobID,JobName"],
                             capture_output=True, text=True, timeout=30).stdout.splitlines()
    done = [row.split("|")[0] for row in history if row.split("|")[1:2] == [name]]
    return sorted(set(live) | set(done), key=int)


def cluster_problem() -> str | None:
    conf = os.environ.get("SLURM_CONF")
    if not conf:
        return ("SLURM_CONF is not set; start the cluster: "
                "slurm_env=$(bash scripts/slurm-start.sh) && eval \"$slurm_env\"")
    if not Path(conf).is_file():
        return f"SLURM_CONF={conf} does not exist"
    for tool in ("sbatch", "squeue", "sacct", "scancel", "scontrol", "sinfo"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "scontrol ping timed out"
    if "UP" not in ping.stdout:
        return f"slurmctld is not answering: {(ping.stdout + ping.stderr).strip()}"
    return None
