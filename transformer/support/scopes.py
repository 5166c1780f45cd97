"""Scope metadata (libcst's `ScopeProvider`), resolved once per module and shared.

`ScopeProvider` costs several times a parse, and a fixed price per resolution. The analysis
of a decorator (pass 4) and the carrying of its helpers (pass 5) both need the scopes of the
same decorator module: resolving the whole module once serves every decorator defined in it
and every helper carried from it, for the whole process (a batch resolves each decorator
module once).
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst
from libcst.metadata import ExpressionContextProvider, MetadataWrapper, Scope, ScopeProvider

from .memo import NodeMemo
from .records import frozen

try:  # libcst's own visitors, run without its batched traversals (see `_Scopes`)
    from libcst.metadata.base_provider import BaseMetadataProvider
    from libcst.metadata.expression_context_provider import (
        ExpressionContext,
        ExpressionContextVisitor,
    )
    from libcst.metadata.scope_provider import ScopeVisitor
except ImportError:  # pragma: no cover - a libcst laid out otherwise: ScopeProvider only
    BaseMetadataProvider = None  # type: ignore[assignment,misc]


if BaseMetadataProvider is not None:

    class _Contexts(BaseMetadataProvider):  # type: ignore[misc]
        """`ExpressionContextProvider`'s visitor, run alone."""

        def _gen_impl(self, module: cst.Module) -> None:
            module.visit(ExpressionContextVisitor(self, ExpressionContext.LOAD))

    class _Scopes(BaseMetadataProvider):  # type: ignore[misc]
        """`ScopeProvider`'s own visitor and inference, run alone: the same scopes.

        libcst resolves ScopeProvider and ExpressionContextProvider as batchable providers:
        besides running their visitors (from `visit_Module`), it walks the whole module once
        more for each, rebuilding every node, and lists each provider's methods with
        `inspect.getmembers`: about half the time of the resolution. Here each visitor runs
        once, as their `visit_Module` runs it. `tests/test_scopes.py` checks, on every
        fixture and case module, that the scopes are those ScopeProvider gives."""

        METADATA_DEPENDENCIES = (_Contexts,)

        def get_metadata(self, key, node, *default):  # noqa: ANN001, ANN002, ANN201
            """ScopeVisitor asks for ExpressionContextProvider's: `_Contexts` has them."""
            key = _Contexts if key is ExpressionContextProvider else key
            return super().get_metadata(key, node, *default)

        def _gen_impl(self, module: cst.Module) -> None:
            visitor = ScopeVisitor(self)
            module.visit(visitor)
            visitor.infer_accesses()


@frozen
class ResolvedScopes:
    """The scope of every node of one module, and each distinct scope once."""

    of_node: Mapping[cst.CSTNode, Scope | None]
    all: tuple[Scope, ...]

    def within(self, outer: Scope) -> tuple[Scope, ...]:
        """`outer` and the scopes nested in it (comprehensions, lambdas, inner functions)."""
        found = []
        for scope in self.all:
            current: Scope | None = scope
            while current is not None and current is not outer:
                parent = current.parent
                current = None if parent is current else parent
            if current is outer:
                found.append(scope)
        return tuple(found)


_RESOLVED: NodeMemo[ResolvedScopes] = NodeMemo()


def scope_metadata(module: cst.Module, official: bool = False) -> Mapping:
    """The scope of every node of `module`, as `ScopeProvider` gives it (`official`: from
    ScopeProvider itself, else through `_Scopes` when this libcst has its visitors)."""
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    if not official and BaseMetadataProvider is not None:
        try:
            return _resolve_directly(wrapper)
        except (AttributeError, TypeError):  # pragma: no cover - internals changed
            wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    return wrapper.resolve(ScopeProvider)


def _resolve_directly(wrapper: MetadataWrapper) -> Mapping:
    """`_Contexts`, then `_Scopes`, each computed once. Not `wrapper.resolve(_Scopes)`: its
    resolver ends every round of providers with a batched walk of the whole module, rebuilding
    every node, even when no batchable provider is left to run (two wasted walks here)."""
    wrapper._metadata[_Contexts] = _Contexts()._gen(wrapper)
    return _Scopes()._gen(wrapper)


def scopes_of(module: cst.Module) -> ResolvedScopes:
    """The scopes of `module`, resolved now (for a module made up for one analysis)."""
    of_node = scope_metadata(module)
    return ResolvedScopes(
        of_node, tuple({id(s): s for s in of_node.values() if s is not None}.values())
    )


def resolve_scopes(module: cst.Module) -> ResolvedScopes:
    """The scopes of `module`, resolved on first use and kept while the module is alive."""
    return _RESOLVED.get(module, None, lambda: scopes_of(module))
