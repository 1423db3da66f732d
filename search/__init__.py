"""Search strategies over discrete grids: pure ask/tell objects with no I/O."""
from .base import Index, Result, Strategy
from .dsice import DSICE
from .eager import EagerDSICE, make_eager
from .explore import ExploringDSICE, make_dsice
from .grid import GridSearch
from .random_search import RandomSearch
from .stage import StageRecord

__all__ = ["DSICE", "EagerDSICE", "ExploringDSICE", "GridSearch", "Index", "RandomSearch", "Result",
           "StageRecord", "Strategy", "make_dsice", "make_eager"]
