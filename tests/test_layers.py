"""The layering of DESIGN.md, checked on the code: no import runs back up between packages.

Every ``import hazmat.X`` is counted, at module level or inside a function, typing-only
ones included: a cycle through a lazy import is still a cycle in the design.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hazmat"

LAYERS: dict[str, int] = {
    "errors": 0,
    "record": 1,
    "sandbox": 1,
    "tasks": 2,
    "sinks": 2,
    "tools": 3,
    "policy": 3,
    "agents": 4,
    "preflight": 5,
    "runner": 6,
    "validate": 7,
    "replay": 7,
    "report": 8,
    "cli": 9,
    "pytest_plugin": 9,
}
"""Each package's floor: a package imports only from floors below its own (packages on one
floor, e.g. ``tools`` and ``policy``, do not import each other)."""


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hazmat"


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent)
        if "suite" in rel.parts:  # the task suite, shipped as data
            continue
        source = _unit(".".join(rel.with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.startswith("hazmat.") and _unit(name) != source:
                    edges[source].add(_unit(name))
    return edges


def test_every_package_has_a_floor() -> None:
    found = {_unit(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts))
             for p in PACKAGE.rglob("*.py") if "suite" not in p.parts}  # fmt: skip
    assert found - {"hazmat", "__init__", "__main__"} <= set(LAYERS), found - set(LAYERS)


def test_no_import_runs_back_up() -> None:
    upward = [
        f"{src} (floor {LAYERS[src]}) imports {dst} (floor {LAYERS[dst]})"
        for src, dsts in _edges().items()
        for dst in dsts
        if src in LAYERS and dst in LAYERS and LAYERS[dst] >= LAYERS[src]
    ]
    assert upward == []


def test_no_cycle_between_packages() -> None:
    edges = _edges()
    seen: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> None:
        if node in stack:
            raise AssertionError(
                "import cycle: " + " -> ".join([*stack[stack.index(node) :], node])
            )
        if node in seen:
            return
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            visit(nxt)
        stack.pop()
        seen.add(node)

    for node in sorted(edges):
        visit(node)
