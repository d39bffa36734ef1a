"""Imports point one way: api -> commands | queries | projections -> events."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "coffeeshop"
ALLOWED = {
    "events": set(),
    "commands": {"events"},
    "projections": {"events"},
    "queries": {"projections"},
}


def _imported_layers(path: Path) -> set[str]:
    layers: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "coffeeshop" and len(parts) > 1:
                layers.add(parts[1])
    return layers


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_the_design_allows(layer: str) -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_imported_layers(path) - ALLOWED[layer] - {layer})
        for path in (PACKAGE / layer).rglob("*.py")
    }
    assert {path: bad for path, bad in offenders.items() if bad} == {}


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from coffeeshop.api.settings import Settings\nimport coffeeshop.events\n")
    assert _imported_layers(module) == {"api", "events"}


def test_no_module_level_engines_or_clients() -> None:
    """Engines, Redis clients and settings are built by the composition root only."""
    factories = {"create_engine", "from_url", "Settings", "Redis", "RedisBroker"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
                func = node.value.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in factories:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_queries_never_touch_the_event_store_or_the_deciders() -> None:
    """The read side answers from projections only (CQRS): no store, no aggregates."""
    forbidden = ("coffeeshop.events.store", "coffeeshop.commands")
    offenders = []
    for path in (PACKAGE / "queries").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(forbidden)]
    assert offenders == []
