"""Search strategies over discrete grids: pure ask/tell objects with no I/O."""
from .base import Index, Result, Strategy
from .grid import GridSearch
from .random_search import RandomSearch

__all__ = ["Index", "Result", "Strategy", "GridSearch", "RandomSearch"]
