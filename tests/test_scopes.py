"""support/scopes: the scopes resolved without libcst's batched traversals are exactly those
`ScopeProvider` gives (same nodes, same scope tree, same assignments and accesses)."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from decoflow.transformer.support import scopes

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    p
    for folder in ("fixtures", "tests/cases", "tests/mutator_flows", "benchmarks")
    for p in (ROOT / folder).rglob("*.py")
)


def _described(module: cst.Module, of_node) -> list:
    """Each node's scope, told by what it is and holds, scopes numbered in order met. Nodes
    are named by their place in the module; those the resolution made up (it parses string
    annotations, anew each time) by their code."""
    place: dict[int, int] = {}
    stack: list[cst.CSTNode] = [module]
    while stack:
        node = stack.pop()
        place[id(node)] = len(place)
        stack.extend(reversed(node.children))

    def name(node: cst.CSTNode) -> object:
        found = place.get(id(node))
        return found if found is not None else module.code_for_node(node)

    number: dict[int, int] = {}

    def ref(scope) -> int | None:
        return None if scope is None else number.setdefault(id(scope), len(number))

    out = []
    for node, scope in of_node.items():
        if scope is None:
            out.append((name(node), None))
            continue
        parent = scope.parent if scope.parent is not scope else None
        assignments = sorted(
            (a.name, str(name(a.node)), type(a).__name__) for a in scope.assignments
        )
        accesses = sorted(
            (
                str(name(a.node)),
                tuple(sorted(str(name(r.node)) for r in a.referents if hasattr(r, "node"))),
            )
            for a in scope.accesses
        )
        out.append(
            (str(name(node)), ref(scope), type(scope).__name__, getattr(scope, "name", None),
             ref(parent), tuple(assignments), tuple(accesses))
        )
    return sorted(out, key=str)


@pytest.mark.skipif(scopes.BaseMetadataProvider is None, reason="libcst without the visitors")
def test_scopes_are_those_of_scope_provider() -> None:
    assert len(MODULES) > 100
    compared = 0
    for path in MODULES:
        try:
            module = cst.parse_module(path.read_text(encoding="utf-8"))
        except (cst.ParserSyntaxError, UnicodeDecodeError, RecursionError):
            continue
        fast = scopes.scope_metadata(module)
        official = scopes.scope_metadata(module, official=True)
        assert len(fast) == len(official), path
        assert _described(module, fast) == _described(module, official), path
        compared += 1
    assert compared > 100
