"""The import graph reads top-down and has no cycle.

``main.py`` -> ``netscope`` (the command line) -> ``studies``, ``callbacks``, ``models``,
``datamodules`` -> ``doctor``, ``figures``, ``optim`` -> ``core``. A layer may import only the
layers this table allows, and no module may reach itself through its imports. Every layer
is imported as ``netscope.<layer>`` (the folders ``models/``, ``callbacks/``, ... are mapped
there by ``pyproject.toml``); the command line is the rest of ``netscope``.
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What each top-level package may import from the project.
ALLOWED: dict[str, set[str]] = {
    "main": {"netscope"},
    "netscope": {"studies", "callbacks", "models", "datamodules", "doctor", "figures", "optim",
                 "core"},
    "studies": {"doctor", "figures", "core"},
    "callbacks": {"models", "doctor", "figures", "core"},
    "models": {"optim", "core"},
    "optim": {"core"},
    "datamodules": {"core"},
    "doctor": {"models", "figures", "core"},
    "figures": {"core"},
    "core": set(),
}


#: The folders of the checkout that are imported as ``netscope.<folder>``.
MAPPED = {"models", "datamodules", "callbacks", "core", "doctor", "figures", "studies"}


def layer(module: str) -> str:
    """``netscope.models.base`` -> ``models``; ``netscope.cli`` -> ``netscope``."""
    parts = module.split(".")
    if parts[0] == "netscope" and len(parts) > 1 and parts[1] in MAPPED | {"optim"}:
        return parts[1]
    return parts[0]


def project_modules() -> dict[str, Path]:
    """Import name -> file, for every module of the project (``main`` and ``netscope.*``)."""
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[0] in MAPPED:
            parts = ("netscope", *parts)
        if parts[0] in ("main", "netscope"):
            modules[".".join(parts).removesuffix(".__init__")] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module in modules:
                    graph[name].add(node.module)
                graph[name] |= {f"{node.module}.{alias.name}" for alias in node.names
                                if f"{node.module}.{alias.name}" in modules}
    return graph


def test_packages_import_only_the_layers_below_them() -> None:
    graph = import_graph()
    assert len(graph) > 50, "the project's modules were not found"
    wrong = sorted(f"{module} imports {target}"
                   for module, targets in graph.items() for target in targets
                   if layer(target) != layer(module) and layer(target) not in ALLOWED[layer(module)])
    assert not wrong, wrong


def test_no_module_imports_itself_through_others() -> None:
    graph, state, cycles = import_graph(), {}, []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [module, target]))
            elif target not in state:
                visit(target, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not cycles, cycles
