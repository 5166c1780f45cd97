"""Hygiene: fresh names that read naturally and collide with nothing already in scope."""

from __future__ import annotations

import builtins
import keyword
import re

import libcst as cst

BUILTINS = frozenset(dir(builtins))


class NameAllocator:
    """Hands out names not in `reserved`: the preferred name if free, else prefixed, else numbered."""

    def __init__(self, reserved: set[str] | frozenset[str]) -> None:
        self.taken = set(reserved)

    def claim(self, preferred: str, prefix: str | None = None) -> str:
        candidates = [preferred]
        if prefix and not preferred.startswith(prefix + "_"):
            candidates.append(f"{prefix}_{preferred}")
        for name in candidates:
            if self._free(name):
                self.taken.add(name)
                return name
        base = candidates[-1]
        n = 2
        while not self._free(f"{base}_{n}"):
            n += 1
        self.taken.add(f"{base}_{n}")
        return f"{base}_{n}"

    def reserve(self, name: str) -> None:
        self.taken.add(name)

    def is_free(self, name: str) -> bool:
        return name not in self.taken and not keyword.iskeyword(name)

    _free = is_free


class NameCollector(cst.CSTVisitor):
    """Every variable-like Name node in a piece of code (not attribute or keyword names)."""

    def __init__(self) -> None:
        self.nodes: list[cst.Name] = []

    def visit_Name(self, node: cst.Name) -> None:
        self.nodes.append(node)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False


def name_nodes(node: cst.CSTNode) -> list[cst.Name]:
    collector = NameCollector()
    node.visit(collector)
    return collector.nodes


def names_in(node: cst.CSTNode) -> set[str]:
    return {n.value for n in name_nodes(node)}


_IDENTIFIER = re.compile(r"[^\W\d]\w*")


def identifiers_in_text(text: str) -> set[str]:
    """Every identifier-like word in source text (also in strings and comments): a cheap
    superset of the names a module uses, for reserving names."""
    return set(_IDENTIFIER.findall(text))
