"""The package's layers, read from its import statements (module level and inside functions):
``core`` needs only torch, the floor (errors, files, run directories, statistics, MACs, rng,
devices) imports no path, vision never imports the RL path, nothing imports the CLI, the RL
path's rooms stand on each other in one order (zoo, methods, training, report), and no modules
import each other in a circle, at module level or inside functions.

Run ``python -m pytest tests/test_layers.py`` to check the import graph."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "zoo_rl"
FLOOR = ("zoo_rl.errors", "zoo_rl.io_utils", "zoo_rl.rng", "zoo_rl.run_dir", "zoo_rl.stats", "zoo_rl.macs",
         "zoo_rl.devices", "zoo_rl.records")  # fmt: skip
# The RL path's rooms, lowest first: a room imports only from rooms below it and from the run
# config at the top of zoo_rl.rl (config.py, defaults.py), which every room above the zoo reads.
RL_ROOMS = ("zoo_rl.rl.zoo", "zoo_rl.rl.methods", "zoo_rl.rl.training", "zoo_rl.rl.report")
PATHS = ("zoo_rl.rl", "zoo_rl.vision", "zoo_rl.sweep", "zoo_rl.cli", "zoo_rl.envs")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """``(imported module, at module level)`` for every import in ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: up (level - 1) packages from this module's package
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.append((base, id(node) in top_level))
    return found


MODULES = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def within(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_core_needs_only_torch():
    for name, found in MODULES.items():
        if within(name, ["zoo_rl.core"]):
            outside = {m.split(".")[0] for m, _ in found if not within(m, ["zoo_rl.core"])}
            assert outside <= set(sys.stdlib_module_names) | {"torch", "__future__"}, (name, outside)


@pytest.mark.parametrize(
    "layer, forbidden",
    [
        (FLOOR, (*PATHS, "zoo_rl.core")),
        (("zoo_rl.vision",), ("zoo_rl.rl", "zoo_rl.sweep", "zoo_rl.cli", "zoo_rl.envs")),
        (("zoo_rl.sweep", "zoo_rl.rl", "zoo_rl.envs", "zoo_rl.core"), ("zoo_rl.cli",)),
        (("zoo_rl.rl", "zoo_rl.envs", "zoo_rl.core"), ("zoo_rl.sweep", "zoo_rl.vision")),
    ],
)
def test_no_import_goes_up_a_layer(layer, forbidden):
    wrong = [(name, m) for name, found in MODULES.items() if within(name, layer)
             for m, _ in found if within(m, forbidden)]  # fmt: skip
    assert not wrong


@pytest.mark.parametrize("room", RL_ROOMS)
def test_an_rl_room_imports_no_room_above_it(room):
    above = RL_ROOMS[RL_ROOMS.index(room) + 1 :]
    wrong = [(name, m) for name, found in MODULES.items() if within(name, [room])
             for m, _ in found if within(m, above)]  # fmt: skip
    assert not wrong


def test_the_rl_config_stands_on_the_zoo_alone():
    """A run's config names its zoo's members and recipes, and nothing that trains or reports."""
    wrong = [(name, m) for name, found in MODULES.items() if name in ("zoo_rl.rl.config", "zoo_rl.rl.defaults")
             for m, _ in found if within(m, RL_ROOMS[1:])]  # fmt: skip
    assert not wrong


@pytest.mark.parametrize("module_level_only", [True, False])
def test_no_import_circle(module_level_only):
    graph = nx.DiGraph()
    for name, found in MODULES.items():
        for module, top in found:
            target = next((m for m in (module, module.rsplit(".", 1)[0]) if m in MODULES and m != name), None)
            if (top or not module_level_only) and target and not name.startswith(target + "."):
                graph.add_edge(name, target)  # (a module importing its own package's names is not a circle)
    assert list(nx.simple_cycles(graph)) == []
