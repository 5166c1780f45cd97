"""Results derived from syntax-tree nodes, kept for the whole process.

libcst nodes are immutable, so what is computed from one (its scopes, its renamed copy, its
analysis) stays true while the node lives, and a batch computes it once. Entries are keyed
by the node's id and keep the node itself: its id cannot be reused by another object, and a
lookup checks identity.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class NodeMemo(Generic[V]):
    """`get(node, extra, compute)`: `compute()` once per node (and `extra` key)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, Hashable], tuple[object, V]] = {}

    def get(self, node: object, extra: Hashable, compute: Callable[[], V]) -> V:
        key = (id(node), extra)
        found = self._entries.get(key)
        if found is None or found[0] is not node:
            found = self._entries[key] = (node, compute())
        return found[1]
