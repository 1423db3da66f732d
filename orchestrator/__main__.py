"""``python -m orchestrator``: the CLI, after making sure its sibling packages are its own.

``python -m`` puts the working directory first on ``sys.path``, so a user's ``search.py`` (common
in research code) would be imported instead of orchestrator's ``search`` package and fail with a
confusing ImportError deep inside. Say so in one line instead.
"""
import importlib.util
import sys
from pathlib import Path

from . import exitcodes  # imports nothing else: safe before the check

SIBLINGS = ("search", "jobs", "scheduler_adapters")


def shadowed_siblings(root: Path) -> list[str]:
    """'NAME (PATH)' for each sibling package that Python would import from outside ``root``."""
    found = []
    for name in SIBLINGS:
        spec = importlib.util.find_spec(name)
        locations = [] if spec is None else list(spec.submodule_search_locations or [])
        where = None if spec is None else (spec.origin or next(iter(locations), None))
        if where is None or not Path(where).resolve().is_relative_to(root):
            found.append(f"{name} ({where or 'not found'})")
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    shadowed = shadowed_siblings(root)
    if shadowed:
        print(f"orchestrator: {', '.join(shadowed)} hides orchestrator's own package of that name "
              f"(python -m imports the working directory first); rename it, or run the "
              f"`orchestrator` script instead of `python -m orchestrator`", file=sys.stderr)
        return exitcodes.USAGE
    from .cli import main as cli_main
    return cli_main()


sys.exit(main())
