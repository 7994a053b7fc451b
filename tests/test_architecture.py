"""The house rules that keep mixframe a library: layers that import one way, no import cycle, the core names no
built-in plugin, the engine only loops."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from mixframe.kernel.engine.loop import Trainer

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted((ROOT / "mixframe").rglob("*.py"))
# Floors, lowest first: a module imports from its own floor or below, never above.
LAYERS = [
    ("base", ("mixframe.errors", "mixframe.version")),
    ("kernel", ("mixframe.kernel",)),
    ("runs", ("mixframe.runs",)),
    ("tools", ("mixframe.tools", "mixframe.testing")),
    ("cli", ("mixframe.cli",)),
    ("facade", ("mixframe", "mixframe.__main__")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in CORE}


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names, at any depth of the file (functions and TYPE_CHECKING
    blocks included): ``from package import name`` counts as importing the submodule when ``name`` is one."""
    tree = ast.parse(path.read_text())
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*package[: len(package) - node.level + 1], *([node.module] if node.module else [])]) if node.level \
                else node.module or ""
            subs = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
            names.update(subs if len(subs) == len(node.names) else {*subs, base})
    return names


def core_imports(path: Path) -> set[str]:
    """The mixframe modules ``path`` imports (a name inside a module counts as that module)."""
    found = set()
    for name in imported_modules(path):
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module_name(path):
            found.add(name)
    return found


def layer_of(module: str) -> int:
    return max(i for i, (_, prefixes) in enumerate(LAYERS) if any(module == p or module.startswith(p + ".") for p in prefixes))


def test_every_core_module_sits_on_a_floor_and_imports_only_its_floor_or_below() -> None:
    upward = {}
    for name, path in MODULES.items():
        above = sorted(m for m in core_imports(path) if layer_of(m) > layer_of(name))
        if above:
            upward[f"{name} ({LAYERS[layer_of(name)][0]})"] = above
    assert not upward, f"imports that reach up a floor (floors: {[n for n, _ in LAYERS]}): {upward}"


def test_the_core_has_no_import_cycle_counting_every_import_statement() -> None:
    graph = {name: core_imports(path) for name, path in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            raise AssertionError(f"import cycle: {' -> '.join(cycle)}")


def test_the_cycle_check_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    found = core_imports(ROOT / "mixframe" / "kernel" / "recipe.py")
    assert "mixframe.kernel.shipped" in found  # "from mixframe.kernel import shipped", inside a function there
    found = core_imports(ROOT / "mixframe" / "runs" / "folder.py")
    assert "mixframe.kernel.interfaces" in found  # imported under TYPE_CHECKING there


def test_the_core_imports_no_plugin() -> None:
    offenders = {str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.startswith("mixframe_plugins"))
                 for p in CORE}
    assert not {k: v for k, v in offenders.items() if v}, "mixframe/ must not import built-in plugins (use the registry)"


def test_the_engine_imports_no_run_folder_pictures_or_commands() -> None:
    for path in sorted((ROOT / "mixframe" / "kernel" / "engine").glob("*.py")):
        imported = core_imports(path)
        assert not {m for m in imported if layer_of(m) > layer_of("mixframe.kernel")}, path
        assert not any(m.startswith("mixframe_plugins") for m in imported_modules(path)), path


def test_the_training_loop_is_short() -> None:
    lines = inspect.getsource(Trainer._fit).splitlines()
    assert len(lines) < 40, f"Trainer.fit has {len(lines)} lines; move work into callbacks"


def test_the_cli_names_no_command() -> None:
    source = (ROOT / "mixframe" / "cli" / "main.py").read_text()
    for command in ("train", "evaluate", "report", "interpolate", "sweep", "masks"):
        assert f'"{command}"' not in source, f"cli/main.py names the command {command!r}; commands come from the mixframe.commands entry points"
