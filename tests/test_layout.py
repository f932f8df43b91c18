"""The architecture's rules, checked on the source: small modules, Dagster only in the
orchestration layer and only through its public API, and no import cycle (a cycle is how layers
start to leak into each other)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "monolyth_pipelines"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "emulator" in path.relative_to(PACKAGE).parts:
            continue
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def _imports(path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports, at module level or inside functions
    (imports only for type checking excluded)."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and child.module:
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    out.add(full if full in known else child.module)
            elif isinstance(child, ast.Import):
                out.update(alias.name for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return out & known


def test_no_module_outside_the_emulator_is_over_400_lines() -> None:
    long = {
        name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules: {long}"


def test_dagster_is_imported_only_by_the_orchestration_layer() -> None:
    leaking = []
    for name, path in _modules().items():
        if name.startswith("monolyth_pipelines.defs") or name == "monolyth_pipelines.definitions":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "dagster" or n.startswith("dagster.") or n.startswith("dagster_") for n in names):
                leaking.append(name)
    assert not leaking, f"Dagster imported outside defs/: {sorted(set(leaking))}"


def _private_dagster(module: str) -> bool:
    """``dagster._core...``, ``dagster_shared._x``: a module Dagster may change in any release."""
    parts = module.split(".")
    return parts[0].startswith("dagster") and any(p.startswith("_") for p in parts[1:])


def test_the_package_uses_no_private_dagster_module() -> None:
    private = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                hidden = [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
                modules = [node.module, *hidden]
            else:
                continue
            private += [f"{relative}:{node.lineno} {m}" for m in modules if _private_dagster(m)]
    assert not private, f"private Dagster imports (use the public dagster API): {private}"


def test_no_import_cycle_between_the_package_modules() -> None:
    modules = _modules()
    graph = {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"
