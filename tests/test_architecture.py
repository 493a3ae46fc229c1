"""Dependencies run one way (issue 13 item 6, docs/architecture.md): the import graph of
PilotGate's own modules, read with ``ast`` (every import, also those inside functions),
has no cycle, and no module imports one of a higher layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("metrics", "dashboard", "seed")

#: Layers, lowest first (docs/architecture.md). A module may import its own layer or a
#: lower one. Names are prefixes: a package (``metrics.csvio`` split into modules)
#: counts as one node. A new module must be placed here.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "models",
        (
            "metrics.errors",
            "metrics.settings",
            "metrics.isoweek",
            "metrics.models",
            "metrics.atomic",
        ),
    ),
    ("computations", ("metrics.computations", "metrics.vendors", "metrics.derive")),
    (
        "store",
        (
            "metrics.db",
            "metrics.access",
            "metrics.governance",
            "metrics.store",
            "metrics.users",
        ),
    ),
    ("service", ("metrics.service", "metrics.csvio", "metrics.report")),
    ("alerts", ("metrics.alerts",)),
    ("seed", ("seed",)),
    ("exposure", ("metrics.exposure",)),
    ("api", ("metrics.api",)),
    ("cli", ("metrics.cli",)),
    ("dashboard text and charts", ("dashboard.text", "dashboard.charts")),
    ("dashboard sign-in", ("dashboard.auth",)),
    ("dashboard state", ("dashboard.state",)),
    ("dashboard components", ("dashboard.components",)),
    ("dashboard sections", ("dashboard.sections",)),
    ("dashboard pages", ("dashboard.pages",)),
    ("entry point", ("streamlit_app",)),
]
#: Modules that must never import Streamlit (the core, the chart builders).
NO_STREAMLIT = ("metrics", "seed", "dashboard.charts", "dashboard.text")


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [REPO / "streamlit_app.py"]
    for pkg in PACKAGES:
        files += sorted((REPO / pkg).rglob("*.py"))
    # a package's empty __init__ (``metrics``, ``dashboard.pages``) is no module of ours
    return {
        _module_name(p): p
        for p in files
        if p.name != "__init__.py" or p.read_text(encoding="utf-8").strip()
    }


def _node(module: str) -> str:
    """The graph node of a module: the layer prefix it falls under (longest match)."""
    best = ""
    for _, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best = prefix
    if best in ("seed", "dashboard.pages", "dashboard.sections"):
        return module  # several independent modules: one node each
    return best or module


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """Every PilotGate module ``module`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            subs = [f"{base}.{a.name}" for a in node.names]
            # ``from metrics import store`` imports metrics.store, not the package
            names = [x for x in subs if x in known] or [base]
        for name in names:
            # the longest known module the name refers to (``metrics.store.x`` -> store)
            parts = name.split(".")
            for n in range(len(parts), 0, -1):
                candidate = ".".join(parts[:n])
                if candidate in known:
                    found.add(candidate)
                    break
    found.discard(module)
    return found


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    graph: dict[str, set[str]] = {}
    for module, path in sources.items():
        src = _node(module)
        targets = {_node(t) for t in _imports(path, module, known)} - {src}
        graph.setdefault(src, set()).update(targets)
    return graph


def _rank(node: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(node == p or node.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{node} is in no layer: place it in LAYERS (docs/architecture.md)")


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_every_module_has_a_layer_and_imports_only_downwards():
    upward = [
        f"{src} ({LAYERS[_rank(src)][0]}) imports {dst} ({LAYERS[_rank(dst)][0]})"
        for src, targets in sorted(_graph().items())
        for dst in sorted(targets)
        if _rank(dst) > _rank(src)
    ]
    assert upward == []


@pytest.mark.parametrize("module", sorted(m for m in _sources() if m.startswith(NO_STREAMLIT)))
def test_the_core_and_the_chart_builders_never_import_streamlit(module):
    tree = ast.parse(_sources()[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "streamlit" for a in node.names), module
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] != "streamlit", module


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
