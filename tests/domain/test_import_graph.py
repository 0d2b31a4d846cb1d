"""The layers' import graph, read from the source with ``ast``: inward only, and without cycles.

The domain imports no other layer (nor anything that does I/O: tests/domain/test_domain_purity.py
checks each import), the application imports no infrastructure, and no module of the package
imports itself back through others, at module level or inside a function. Imports under
``if TYPE_CHECKING:`` are for the type checker only and are left out.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "creditledger"
LAYERS = ("domain", "application", "infrastructure")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def _sources() -> dict[str, Path]:
    return {
        _module_name(path): path
        for layer in LAYERS
        for path in sorted((ROOT / layer).rglob("*.py"))
    }


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", "")
    return name == "TYPE_CHECKING"


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module name ``module`` imports at run time (modules and ``from`` targets)."""
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking_block(node):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        yield from _imports(node, module, is_package)


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    graph: dict[str, set[str]] = {}
    for module, path in sources.items():
        tree = ast.parse(path.read_text(), str(path))
        named = _imports(tree, module, path.name == "__init__.py")
        # Only edges to our own modules; ``from pkg import name`` counts where ``name`` is one.
        graph[module] = {name for name in named if name in sources and name != module}
    return graph


def _layer(module: str) -> str:
    return module.split(".")[1]


def test_the_graph_covers_every_layer() -> None:
    graph = _graph()
    assert {_layer(module) for module in graph} == set(LAYERS)
    assert "creditledger.domain.events" in graph["creditledger.domain.purchase"]


def test_the_domain_imports_no_other_layer() -> None:
    crossing = {
        module: sorted(name for name in imported if _layer(name) != "domain")
        for module, imported in _graph().items()
        if _layer(module) == "domain"
    }
    assert {module: names for module, names in crossing.items() if names} == {}


def test_the_application_imports_no_infrastructure() -> None:
    crossing = {
        module: sorted(name for name in imported if _layer(name) == "infrastructure")
        for module, imported in _graph().items()
        if _layer(module) == "application"
    }
    assert {module: names for module, names in crossing.items() if names} == {}


def test_no_module_imports_itself_back_through_others() -> None:
    try:
        tuple(graphlib.TopologicalSorter(_graph()).static_order())
    except graphlib.CycleError as error:
        cycle = " -> ".join(error.args[1])
        raise AssertionError(f"import cycle: {cycle}") from None
