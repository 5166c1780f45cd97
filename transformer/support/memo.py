"""Results derived from syntax-tree nodes, kept for the whole process.

libcst nodes are immutable, so what is computed from one (its scopes, its renamed copy, its
analysis) stays true while the node lives, and a batch computes it once. libcst nodes hash
and compare by identity: an entry is keyed by the node itself (and keeps it alive).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class NodeMemo(Generic[V]):
    """`get(node, extra, compute)`: `compute()` once per node (and `extra` key)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[Hashable, Hashable], V] = {}

    def get(self, node: Hashable, extra: Hashable, compute: Callable[[], V]) -> V:
        key = (node, extra)
        if key not in self._entries:
            self._entries[key] = compute()
        return self._entries[key]
