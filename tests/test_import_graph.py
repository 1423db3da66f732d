"""The layering the README promises, read from the source (every import statement that runs,
also those inside functions): no import cycle among the orchestrator's modules, nothing outside the CLI
imports it, and the leaf packages import neither orchestrator/ nor each other."""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from .conftest import ROOT

LEAVES = ("search", "scheduler_adapters", "jobs")
PACKAGES = ("orchestrator", *LEAVES)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[module_name(path)] = path
    return found


def is_type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:``: imports for the type checker only, never run."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that can run: all of them but the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if is_type_checking(node):
            assert isinstance(node, ast.If)
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every module ``name`` imports when it runs, absolute, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # ``from . import commands`` imports a module; ``from .x import f``, module x
                sub = f"{base}.{alias.name}"
                yield sub if sub in known else base


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in imported(name, path, known) if m in known and m != name}
            for name, path in known.items()}


def cycle_in(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str] | None:
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt in on_stack:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in done:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for node in sorted(edges):
        if node not in done:
            found = visit(node)
            if found:
                return found
    return None


def package_of(module: str) -> str:
    return module.split(".")[0]


def test_the_scan_sees_imports_of_every_kind():
    edges = graph()
    assert "orchestrator.commands" in edges["orchestrator.cli"]            # from . import x
    assert "orchestrator.queries" in edges["orchestrator.commands"]
    assert "orchestrator.master" in edges["orchestrator.master_commands"]   # inside a function
    assert "scheduler_adapters.base" in edges["orchestrator.master"]        # absolute
    assert "search.stage" not in edges["search.base"]          # under `if TYPE_CHECKING:` only
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert cycle_in(graph()) is None, " -> ".join(cycle_in(graph()) or [])


def test_only_the_entry_points_import_the_cli():
    importers = {name for name, targets in graph().items() if "orchestrator.cli" in targets}
    assert importers <= {"orchestrator.__main__"}, importers


def test_leaves_import_neither_orchestrator_nor_each_other():
    for name, targets in graph().items():
        home = package_of(name)
        if home not in LEAVES:
            continue
        foreign = {t for t in targets if package_of(t) != home}
        assert not foreign, f"{name} imports {sorted(foreign)}"
