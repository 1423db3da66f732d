"""Helpers for the Slurm cluster tests (a module rather than conftest: tests import it)."""
from __future__ import annotations

import subprocess
from collections.abc import Sequence


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
