"""The design map holds: arrows between Ghaf's packages point down only, with no cycle.

The graph is built with ``ast`` from every ``import`` in ``src/ghaf`` (those inside
functions and ``TYPE_CHECKING`` blocks included), so a lazy import cannot hide an arrow.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ghaf"

BASE = {"settings", "errors", "logs", "http_status", "asgi", "lazy"}
PLATFORM = {"security", "metadata", "artifacts", "events", "backends", "models"}
SPINE = {"platform", "spine", "home"}
INTERFACES = {"cli", "server", "ui", "client"}
TOP = {"demo", "testing", "__init__", "__main__"}
LAYERS: list[tuple[str, set[str]]] = [
    ("base", BASE),
    ("platform", PLATFORM),
    ("spine", SPINE),
]


def _unit(module: str) -> str:
    """The package (or top-level module) a dotted ``ghaf.…`` module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    return _imports_in(path.read_text(encoding="utf-8"), package)


def _imports_in(source: str, package: str) -> set[str]:
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ghaf")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target == "ghaf" or target.startswith("ghaf."):
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names if target == "ghaf"}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and str(arg.value).startswith("ghaf"):
                found.add(str(arg.value))
    return found


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        src = _unit(_module_name(path))
        for target in _imports(path):
            dst = _unit(target)
            if dst != src:
                edges[src].add(dst)
    return edges


def _layer(unit: str) -> float:
    for index, (_, members) in enumerate(LAYERS):
        if unit in members:
            return index
    if unit == "demo":
        return 3.5  # drives the services; `ghaf demo` is its door
    if unit in INTERFACES:
        return 4
    if unit in TOP:
        return 5
    return 3  # a service


def test_arrows_point_down_the_map() -> None:
    wrong = []
    for src, targets in _graph().items():
        for dst in targets:
            if dst in TOP - {"__init__", "demo"} and src not in TOP:
                wrong.append(f"{src} -> {dst}")
            elif dst == "__init__" and src != "__main__":
                wrong.append(f"{src} -> ghaf (import the module, not the package)")
            elif _layer(dst) > _layer(src):
                wrong.append(f"{src} (layer {_layer(src)}) -> {dst} (layer {_layer(dst)})")
    assert not wrong, "arrows up the design map:\n" + "\n".join(sorted(wrong))


def test_no_cycle_between_packages() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("unit", sorted(PLATFORM | BASE))
def test_building_blocks_import_no_service(unit: str) -> None:
    graph = _graph()
    above = sorted(dst for dst in graph.get(unit, ()) if _layer(dst) > _layer(unit))
    assert above == [], f"{unit} imports {above}"


def test_the_scanner_sees_lazy_relative_and_type_checking_imports() -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ghaf.platform import Platform\n"
        "def f():\n    from ghaf.data import get_dataset\n"
        "import importlib\nimportlib.import_module('ghaf.cli.main')\n"
        "from ..spine import governed\n"
    )
    found = _imports_in(code, "ghaf.security")
    assert {"ghaf.platform", "ghaf.data", "ghaf.cli.main", "ghaf.spine"} <= found
    assert {_unit(m) for m in found} >= {"platform", "data", "cli", "spine"}
