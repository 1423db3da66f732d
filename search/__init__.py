"""Search strategies over discrete grids: pure ask/tell objects with no I/O."""
from .base import Index, Result, Strategy
from .dsice import DSICE
from .eager import EagerDSICE, make_eager
from .explore import ExploringDSICE, make_dsice
from .grid import GridSearch
from .random_search import RandomSearch
from .stage import StageRecord

__all__ = ["Index", "Result", "Strategy", "DSICE", "EagerDSICE", "ExploringDSICE", "make_dsice",
           "make_eager", "GridSearch", "RandomSearch", "StageRecord"]
