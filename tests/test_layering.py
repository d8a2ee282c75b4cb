"""The house's plan, read from the imports of every module (top-level and inside functions):
no import loop anywhere, and no import from a lower layer to a higher one.

    conf  <-  actors  <-  learner  <-  tinyworld  <-  orchestrator  <-  bench

A package may import its own modules and those of the layers to its left, never to its
right: the search backends never reach into the driver, the learner never into the tiny
world, and the tiny world (its stages included) never into the driver that calls it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("conf", "actors", "learner", "tinyworld", "orchestrator", "bench")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for layer in LAYERS
            for path in sorted((ROOT / layer).rglob("*.py"))}


def imported(tree: ast.AST, known: set[str]) -> set[str]:
    """Project modules a module imports: `from pkg import mod` names the module when one
    exists, else the package."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                       else node.module for alias in node.names)
    return {name for name in out if name in known}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imported(ast.parse(path.read_text(), str(path)), known) - {name}
            for name, path in modules.items()}


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if layer(b) > layer(a))


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import loop as [a, b, ..., a], or [] when there is none."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (loop := visit(nxt)):
                return loop
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (loop := visit(start)):
            return loop
    return []


def test_every_package_of_the_plan_is_read():
    graph = import_graph()
    assert {name.split(".")[0] for name in graph} == set(LAYERS)
    assert "actors.episode" in graph["actors.rollout_worker"]  # a top-level import
    assert "orchestrator.checkpoint" in graph["orchestrator.train"]  # inside a function
    assert "orchestrator.wiring" in graph["orchestrator.train"]  # `from pkg import mod`


def test_no_module_imports_a_higher_layer():
    assert upward_imports(import_graph()) == []


def test_no_import_loop():
    loop = find_cycle(import_graph())
    assert loop == [], " -> ".join(loop)


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, []),
])
def test_the_loop_finder_finds_loops(graph, expected):
    assert find_cycle(graph) == expected


def test_the_layer_check_flags_an_upward_import():
    graph = {"actors.search": {"orchestrator.curriculum"}, "orchestrator.curriculum": set()}
    assert upward_imports(graph) == ["actors.search -> orchestrator.curriculum"]
