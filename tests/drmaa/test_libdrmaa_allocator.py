"""Loading libdrmaa must not break C++ extensions loaded after it (a real libdrmaa, no SGE jobs).

Debian's SGE libdrmaa links libjemalloc, which defines C++ ``operator new``/``delete``; the
``drmaa`` package loads it RTLD_GLOBAL. Unless libstdc++ is already in the global scope, C++
code loaded later allocates with one allocator and frees with the other and the process aborts
("free(): invalid pointer"): the master did, importing scipy.stats (for the search) after its
first submit. Each case runs in a fresh interpreter, since a library cannot be unloaded.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.drmaa

ROOT = Path(__file__).parents[2]

# What the master does: load libdrmaa through the adapter, then the search's scipy modules.
AFTER_LIBDRMAA = (
    "from scheduler_adapters.drmaa_adapter import DRMAAScheduler\n"
    "problems = DRMAAScheduler().check()\n"
    "assert not problems, problems\n"
    "from scipy.stats import qmc\n"
    "from scipy.optimize import linprog\n"
    "qmc.Sobol(2, seed=0).random(4)\n"
    "print(linprog([1, 1], A_ub=[[-1, -1]], b_ub=[-1]).status)\n")


@pytest.mark.parametrize("before", [
    pytest.param("", id="nothing-cxx-loaded-before"),
    # the test process's state: matplotlib's C++ extensions have loaded libstdc++ RTLD_LOCAL
    pytest.param("import matplotlib.ft2font\n", id="libstdcxx-loaded-locally-before"),
])
def test_cxx_extensions_import_after_libdrmaa(grid_engine, before):
    proc = subprocess.run([sys.executable, "-c", before + AFTER_LIBDRMAA], capture_output=True,
                          text=True, cwd=ROOT, env=os.environ.copy(), timeout=120, check=False)

    assert (proc.returncode, proc.stdout) == (0, "0\n"), proc.stderr
