"""No import cycle anywhere in guardian/, counting imports under TYPE_CHECKING and inside functions.

import-linter checks the layers; this walks the source with ``ast`` so that
an import hidden behind ``if TYPE_CHECKING:`` or made lazily in a function
still counts: a cycle that only type checking or a late call closes is a
cycle all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(node: ast.AST, here: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The known modules one import statement names (``from a import b`` → ``a.b`` if a module)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in known:
                yield alias.name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = here if is_package else here.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        for alias in node.names:
            if f"{base}.{alias.name}" in known:
                yield f"{base}.{alias.name}"
            elif base in known:
                yield base


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the modules of ``package`` it imports, anywhere in its source."""
    files = {_module_name(root, p): p for p in sorted((root / package).rglob("*.py"))}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text("utf-8"), str(path))
        is_package = path.name == "__init__.py"
        graph[name] = {
            target
            for node in ast.walk(tree)
            for target in _imported(node, name, is_package, known)
            if target != name
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_guardian_has_no_import_cycle() -> None:
    """Every module of guardian/ can be ordered so that each imports only earlier ones."""
    graph = import_graph(ROOT, "guardian")
    assert len(graph) > 50  # the walk found the package
    assert cycles(graph) == []


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (
            {
                "a.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg import b\n",
                "b.py": "from pkg.a import x\n",
            },
            [["pkg.a", "pkg.b"]],
        ),
        (
            {"a.py": "def f():\n    from . import b\n", "b.py": "import pkg.a\n"},
            [["pkg.a", "pkg.b"]],
        ),
        ({"a.py": "from pkg.b import y\n", "b.py": "import os\n"}, []),
        (
            {"__init__.py": "from pkg.a import x\n", "a.py": "from pkg import b\n", "b.py": ""},
            [],
        ),
        (
            {"__init__.py": "from pkg.a import x\n", "a.py": "from pkg import thing\n"},
            [["pkg", "pkg.a"]],
        ),
    ],
)
def test_cycles_behind_type_checking_or_in_functions_are_found(
    tmp_path: Path, sources: dict[str, str], expected: list[list[str]]
) -> None:
    """The walk sees imports under TYPE_CHECKING, inside functions and through a package."""
    (tmp_path / "pkg").mkdir()
    sources = {"__init__.py": "", **sources}
    for name, text in sources.items():
        (tmp_path / "pkg" / name).write_text(text)
    assert cycles(import_graph(tmp_path, "pkg")) == expected
