"""The house rules that keep mixframe a library: the core names no built-in plugin, the engine only loops."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from mixframe.engine.loop import Trainer

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted((ROOT / "mixframe").rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_core_imports_no_plugin() -> None:
    offenders = {str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.startswith("mixframe_plugins"))
                 for p in CORE}
    assert not {k: v for k, v in offenders.items() if v}, "mixframe/ must not import built-in plugins (use the registry)"


def test_the_engine_imports_no_pictures_or_commands() -> None:
    for path in sorted((ROOT / "mixframe" / "engine").glob("*.py")):
        imported = imported_modules(path)
        assert not {m for m in imported if m in ("mixframe.pictures", "mixframe.cli", "mixframe.report", "mixframe.interpolate")}, path
        assert not any(m.startswith("mixframe_plugins") for m in imported), path


def test_the_training_loop_is_short() -> None:
    lines = inspect.getsource(Trainer.fit).splitlines()
    assert len(lines) < 40, f"Trainer.fit has {len(lines)} lines; move work into callbacks"


def test_the_cli_names_no_command() -> None:
    source = (ROOT / "mixframe" / "cli.py").read_text()
    for command in ("train", "evaluate", "report", "interpolate", "sweep", "masks"):
        assert f'"{command}"' not in source, f"cli.py names the command {command!r}; commands come from the mixframe_commands hook"
