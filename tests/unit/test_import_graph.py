"""No import cycle in closeloop/: the graph of every import, at the top of a module or inside a
function (a late import), read with `ast`, has no cycle. A late import that would close a cycle
is a cycle dodged, not removed, so it fails too."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    late: bool  # inside a function (or under `if TYPE_CHECKING:`), not at the top


def modules(package_dir: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _owner(name: str, known: dict[str, Path]) -> str | None:
    """The module of ours that `name` (a module or a name in one) is, or None."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def edges(package_dir: Path) -> list[Edge]:
    known = modules(package_dir)
    out: list[Edge] = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import mod` imports pkg.mod; `from mod import name` imports mod.
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                owner = _owner(target, known)
                if owner is not None and owner != name:
                    out.append(Edge(name, owner, node.lineno, id(node) not in top))
    return out


def cycles(graph_edges: list[Edge]) -> list[list[Edge]]:
    """One cycle (as its edges) per strongly connected component with more than one module."""
    graph: dict[str, list[Edge]] = {}
    for e in graph_edges:
        graph.setdefault(e.source, []).append(e)
        graph.setdefault(e.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for e in graph[v]:
            if e.target not in index:
                visit(e.target)
                low[v] = min(low[v], low[e.target])
            elif e.target in on_stack:
                low[v] = min(low[v], index[e.target])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for component in components:
        start = min(component)
        path = _path_back(graph, component, start)
        found.append(path)
    return found


def _path_back(graph: dict[str, list[Edge]], within: set[str], start: str) -> list[Edge]:
    """A shortest cycle through `start` inside one component (breadth first)."""
    came: dict[str, Edge] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for e in graph[v]:
            if e.target not in within:
                continue
            if e.target == start:
                path = [e]
                while path[0].source != start:
                    path.insert(0, came[path[0].source])
                return path
            if e.target not in came:
                came[e.target] = e
                queue.append(e.target)
    raise AssertionError("a component without a cycle")


def describe(cycle: list[Edge]) -> str:
    return (
        " → ".join(f"{e.source} (line {e.line}{', late import' if e.late else ''})" for e in cycle)
        + f" → {cycle[0].source}"
    )


def test_closeloop_has_no_import_cycle_even_through_late_imports() -> None:
    found = cycles(edges(ROOT / "closeloop"))
    assert not found, "import cycles:\n" + "\n".join(describe(c) for c in found)


def test_the_graph_sees_the_modules_and_their_imports() -> None:
    graph = edges(ROOT / "closeloop")
    pairs = {(e.source, e.target) for e in graph}
    # Top-level imports, a relative-free `from package import module`, and the CLI's commands.
    assert ("closeloop.service", "closeloop.views") in pairs
    assert ("closeloop.bootstrap", "closeloop.steps") in pairs
    assert ("closeloop.cli", "closeloop.cli.core") in pairs
    assert len({e.source for e in graph}) > 40


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    pkg = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    return pkg


def test_a_top_level_cycle_is_found(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {"a.py": "from pkg import b\n", "b.py": "from pkg.c import x\n", "c.py": "import pkg.a\n"},
    )
    [cycle] = cycles(edges(pkg))
    assert [e.source for e in cycle] == ["pkg.a", "pkg.b", "pkg.c"]
    assert not any(e.late for e in cycle)


def test_a_late_import_that_dodges_a_cycle_is_found(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {
            "service.py": "from pkg.steps import TABLE\n",
            "steps.py": "def TABLE():\n    from pkg import service\n    return service\n",
            "fine.py": "def f():\n    from pkg import service\n",
            "sub/__init__.py": "",
            "sub/rel.py": "from ..fine import f\n",
        },
    )
    [cycle] = cycles(edges(pkg))
    assert {e.source for e in cycle} == {"pkg.service", "pkg.steps"}
    assert [e.late for e in cycle if e.source == "pkg.steps"] == [True]
    assert "late import" in describe(cycle)
    # a late import without a way back is no cycle; relative imports resolve
    assert ("pkg.sub.rel", "pkg.fine") in {(e.source, e.target) for e in edges(pkg)}


def test_type_checking_imports_count(tmp_path: Path) -> None:
    pkg = _package(
        tmp_path,
        {
            "render.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from pkg.weekly import Report\n",
            "weekly.py": "from pkg.render import render\n",
        },
    )
    assert len(cycles(edges(pkg))) == 1
