"""The import graph reads top-down and has no cycle.

``main.py`` -> ``netscope`` (the command line) -> ``studies``, ``callbacks``, ``models``,
``datamodules`` -> ``doctor``, ``figures`` -> ``core``. A package may import only the
packages this table allows, and no module may reach itself through its imports.
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What each top-level package may import from the project.
ALLOWED: dict[str, set[str]] = {
    "main": {"netscope"},
    "netscope": {"studies", "callbacks", "models", "datamodules", "doctor", "figures", "core"},
    "studies": {"doctor", "figures", "core"},
    "callbacks": {"models", "doctor", "figures", "core"},
    "models": {"core"},
    "datamodules": {"core"},
    "doctor": {"models", "figures", "core"},
    "figures": {"core"},
    "core": set(),
}


def project_modules() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[0] in ALLOWED:
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
    wrong = sorted(f"{module} imports {target}"
                   for module, targets in import_graph().items() for target in targets
                   if target.split(".")[0] != module.split(".")[0]
                   and target.split(".")[0] not in ALLOWED[module.split(".")[0]])
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
