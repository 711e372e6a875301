"""The shape of the tree: imports point one way, no module imports in a circle, every kind names
its threat surface, and command modules never import one another."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["store", "arena", "policies", "solvers", "commands", "cli"]  # low → high
SURFACES = {"team", "observation", "message", "action", "agent", "environment", "training"}


def _modules() -> dict[str, Path]:
    out = {"cli": ROOT / "cli.py"}
    for top in LAYERS[:-1]:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in the file (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def test_imports_point_one_way():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        rank = LAYERS.index(name.split(".")[0])
        for dep in _imports(path, modules):
            if LAYERS.index(dep.split(".")[0]) > rank:
                wrong.append(f"{name} imports {dep}")
    assert not wrong, wrong


def test_no_import_circle():
    modules = _modules()
    graph = {m: {d for d in _imports(p, modules) if d != m and not m.startswith(d + ".")}
             for m, p in modules.items()}
    # a package's __init__ importing its own submodules is not a circle
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_command_modules_do_not_import_each_other():
    modules = _modules()
    for name, path in modules.items():
        shared = ("commands", "commands.common", "commands.options", "commands.surfaces")
        if name.startswith("commands.") and name not in shared:
            others = {d for d in _imports(path, modules)
                      if d.startswith("commands") and d not in shared}
            assert not others, f"{name} imports {others}"


def test_every_kind_names_its_surface():
    from policies.kinds import KINDS

    assert KINDS
    for kind in KINDS.values():
        assert kind.surface in SURFACES, (kind.name, kind.surface)


def test_modules_stay_small_or_say_why():
    long = []
    for name, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > 500 and "long because" not in (ast.get_docstring(
                ast.parse(text)) or ""):
            long.append(name)
    assert not long, f"modules over 500 lines without a reason in their docstring: {long}"
