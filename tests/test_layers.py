"""The package's layers, read from its source: every import (at the top of a module or inside
a function) points to the same layer or one below, and no chain of imports comes back to
where it started. The layers (README, "Layout"):

0 core: tree, answers, selection, config, files, drawing;
1 models: policies, scorers, the perturbations and ProcessBench data they are measured on;
2 search: strategies, a search, re-scoring;
3 application: runs.py, the operator's settings, evaluation grids and scaling results, PRM training;
4 adapters: the page (ui/), the OpenAI-compatible endpoint (serve.py), the command line, the benchmark.
"""

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tts_explorer"
LAYERS = {  # module name prefix -> layer; the longest matching prefix wins
    "tts_explorer": 0,
    "tts_explorer.policy": 1,
    "tts_explorer.scorers": 1,
    "tts_explorer.perturb": 1,
    "tts_explorer.processbench": 1,
    "tts_explorer.edit": 1,
    "tts_explorer.strategies": 2,
    "tts_explorer.search": 2,
    "tts_explorer.rescore": 2,
    "tts_explorer.runs": 3,
    "tts_explorer.settings": 3,
    "tts_explorer.scaling": 3,
    "tts_explorer.training": 3,
    "tts_explorer.ui": 4,
    "tts_explorer.cli": 4,
    "tts_explorer.serve": 4,
    "tts_explorer.benchmark": 4,
    "tts_explorer.__main__": 4,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> nx.DiGraph:
    """module -> modules it imports (inside functions too), within the package."""
    modules = _modules()
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
                targets = subs if len(subs) == len(node.names) else [target, *subs]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph.add_edges_from((name, t) for t in targets if t in modules and t != name)
    return graph


def layer(module: str) -> int:
    return LAYERS[max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)]


def test_no_import_cycles():
    graph = import_graph()
    with pytest.raises(nx.NetworkXNoCycle):
        cycle = nx.find_cycle(graph)
        pytest.fail(f"import cycle: {' -> '.join(a for a, _ in cycle)}")


def test_every_import_points_to_its_own_layer_or_below():
    upward = [f"{a} ({layer(a)}) imports {b} ({layer(b)})" for a, b in import_graph().edges if layer(a) < layer(b)]
    assert upward == []


def test_the_checker_sees_imports_inside_functions(tmp_path):
    graph = import_graph()
    assert graph.has_edge("tts_explorer.cli", "tts_explorer.training.pipeline")  # imported inside cmd_train_prm
    assert len(graph) > 80
