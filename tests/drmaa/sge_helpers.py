"""Whether the local Grid Engine can be used (a module rather than conftest: tests import it)."""
from __future__ import annotations

import os
import shutil
import subprocess

from scheduler_adapters.base import SchedulerMisconfigured
from scheduler_adapters.libdrmaa import load_drmaa

REQUIRED_ENV = ("SGE_ROOT", "DRMAA_LIBRARY_PATH")


def grid_engine_problem() -> str | None:
    """Why the drmaa tests cannot run here, or None when they can."""
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        return (f"{', '.join(missing)} not set: start Grid Engine with scripts/sge-start.sh "
                "and source its env.sh")
    if shutil.which("qstat") is None:
        return "qstat is not on PATH"
    probe = subprocess.run(["qstat", "-xml"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"Grid Engine does not answer: {(probe.stdout + probe.stderr).strip()[:200]}"
    try:
        load_drmaa()   # the adapter's way, so this process's C++ code keeps its allocator
    except SchedulerMisconfigured as exc:
        return str(exc)
    return None
