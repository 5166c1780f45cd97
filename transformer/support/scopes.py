"""Scope metadata (libcst's `ScopeProvider`), resolved once per module and shared.

`ScopeProvider` costs several times a parse, and a fixed price per resolution. The analysis
of a decorator (pass 4) and the carrying of its helpers (pass 5) both need the scopes of the
same decorator module: resolving the whole module once serves every decorator defined in it
and every helper carried from it, for the whole process (a batch resolves each decorator
module once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, Scope, ScopeProvider

from .memo import NodeMemo


@dataclass(frozen=True)
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


def scopes_of(module: cst.Module) -> ResolvedScopes:
    """The scopes of `module`, resolved now (for a module made up for one analysis)."""
    of_node = MetadataWrapper(module, unsafe_skip_copy=True).resolve(ScopeProvider)
    return ResolvedScopes(
        of_node, tuple({id(s): s for s in of_node.values() if s is not None}.values())
    )


def resolve_scopes(module: cst.Module) -> ResolvedScopes:
    """The scopes of `module`, resolved on first use and kept while the module is alive."""
    return _RESOLVED.get(module, None, lambda: scopes_of(module))
