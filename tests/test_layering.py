"""The package's imports form no cycle: registries and building blocks below the config, the config only looks
names up, and running a saved model (ganforge.saved) above both.

Every import counts, at module level or inside a function (a lazy import hides a cycle, it does not remove it);
only `if TYPE_CHECKING:` blocks, which never run, are left out. `from pkg import name` is an edge to the module
pkg.name when that is a module, else to pkg itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ganforge

ROOT = Path(ganforge.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = ["ganforge", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("ganforge"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            if base.startswith("ganforge"):
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    found.add(target if target in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return {m for m in found if m in known}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, name, set(mods)) for name, path in mods.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def test_the_walker_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_walker_reads_lazy_imports():
    graph = import_graph()
    assert "ganforge.fileio" in graph["ganforge.train.checkpoint"]
    assert "ganforge.config" in graph["ganforge.saved"]  # a module-level import
    assert "ganforge.data" in graph["ganforge.config"]  # a function-level (lazy) one


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_layers():
    graph = import_graph()
    # Building blocks never reach up to the config, the trainer or the saved-model loader.
    for low in ("ganforge.regularizers", "ganforge.augment", "ganforge.losses", "ganforge.schema",
                "ganforge.train.checkpoint", "ganforge.metrics.base"):
        assert not graph[low] & {"ganforge.config", "ganforge.train.trainer", "ganforge.saved"}, low
    # Nothing below the top imports the saved-model loader except the CLI and the package's API (ganforge.api
    # holds the functions the package re-exports).
    users = {m for m, deps in graph.items() if "ganforge.saved" in deps}
    # style_tools holds CLI commands (style-mix, generate's truncation), at the CLI's level
    assert users <= {"ganforge", "ganforge.api", "ganforge.cli", "ganforge.style_tools"}, users
    # ... and nothing imports the API module except the package and the CLI.
    assert {m for m, deps in graph.items() if "ganforge.api" in deps} <= {"ganforge", "ganforge.cli"}
