"""The world's modules import each other in one direction only (config <- generate <- stage), at any depth.

Every ``import`` of ``src/remit/world`` counts, also those inside functions or under ``TYPE_CHECKING``:
a cycle hidden in a function is still a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
WORLD = SRC / "remit" / "world"


def _module(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def world_imports() -> dict[str, set[str]]:
    """module -> the remit.world modules it imports (the package ``remit.world`` itself left out)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(WORLD.glob("*.py")):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[_module(path)] = {d for d in deps if d.startswith("remit.world.")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep, path + [dep])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_world():
    graph = world_imports()
    assert {"remit.world.config", "remit.world.generate", "remit.world.stage"} <= set(graph)
    assert "remit.world.stage" not in graph["remit.world.generate"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_world_config_keeps_its_public_names():
    from remit.world import WorldConfig as from_package
    from remit.world.config import WorldConfig
    from remit.world.stage import WorldConfig as from_stage

    assert from_stage is WorldConfig and from_package is WorldConfig


def test_each_world_module_imports_alone():
    for name in sorted(world_imports()):
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True,
                              env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}, timeout=120)
        assert proc.returncode == 0, f"import {name}: {proc.stderr.strip().splitlines()[-1:]}"
