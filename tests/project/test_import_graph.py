"""The import graph of skmpsae: no cycles, no arrow from the engines up to an estimator.

Read from the source with ``ast`` (imports inside functions count: a lazy
import is still a dependency), so the test needs no optional package.
Layers, top to bottom: the package and its estimators, then the training
engine (``_training``) and the pursuit engines (``_pursuit``), which must not
import an estimator module or the package top.
"""

import ast
from pathlib import Path

import skmpsae

ROOT = Path(skmpsae.__file__).parent
ESTIMATOR_MODULES = {"skmpsae", "skmpsae._base", "skmpsae._mp_sae", "skmpsae._linear_sae",
                     "skmpsae._topk_sae", "skmpsae._matryoshka_sae", "skmpsae._relu_sae",
                     "skmpsae._jumprelu_sae",
                     "skmpsae._persistence"}
LOWER_LAYERS = ("skmpsae._pursuit", "skmpsae._training")
# Persistence used to set the estimator's private attributes and read the package
# top for __version__ and the class registry; it now goes through estimator hooks
# and skmpsae._registry (issue 13), and this cycle must not come back.
PERSISTENCE_CYCLE = ["skmpsae", "skmpsae._base", "skmpsae._persistence"]


def _module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root=ROOT):
    """``{module: {imported skmpsae modules}}`` for every module under ``root``."""
    files = {_module_name(p): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # ``from pkg import sub`` depends on the submodule when there is one.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t in files and t != name)
        graph[name] = edges
    return graph


def find_cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_graph_reader_sees_relative_and_lazy_imports():
    graph = import_graph()
    assert "skmpsae._pursuit._core" in graph["skmpsae._pursuit._mp_encode"]
    assert "skmpsae._pursuit._numba" in graph["skmpsae._pursuit._core"]  # lazy, in a function
    assert "skmpsae.metrics" in graph["skmpsae._base"]  # from . import metrics


def test_cycle_finder():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert cycles == []


def test_no_persistence_cycle():
    assert PERSISTENCE_CYCLE not in find_cycles(import_graph())


def test_engines_do_not_import_estimators():
    upward = sorted((module, target) for module, targets in import_graph().items()
                    if module.startswith(LOWER_LAYERS)
                    for target in targets if target in ESTIMATOR_MODULES)
    assert upward == []
