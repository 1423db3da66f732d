"""Local emulators of batch schedulers, used by the test suite and for trying the daemon offline.

``pjm`` emulates Fujitsu PJM (``pjsub`` / ``pjstat`` / ``pjdel``); the ``bin`` folder holds the
three commands as small scripts, so an adapter can be pointed at them like at a real site.
"""
from pathlib import Path

BIN_DIR = Path(__file__).resolve().parent / "bin"

__all__ = ["BIN_DIR"]
