"""Renaming by node: the one renamer used for inlined decorators and for carried helpers.

A name is renamed where the analysis saw it refer to a binding (the nodes of `refs`), not
wherever the same word is written: a local `x` of a decorator and an attribute `.x` or a
keyword `x=` stay apart. Imports that bind a renamed name get an `as`, and `global` /
`nonlocal` statements name the new names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import libcst as cst

from .namespace import alias_name

#: What `USER_SKIP_STEP` is renamed to: its value, written as a literal.
SKIP_LITERAL = "{}"

#: Nodes that refer to a binding (node -> its name), with the new name of each name.
Renaming = tuple[Mapping[cst.Name, str], Mapping[str, str]]


class Renamer(cst.CSTTransformer):
    """Renames names by node identity.

    refs: (nodes -> name, name -> new name) pairs, looked at in order: the first whose
        nodes hold a node decides its new name (a name missing from the second map stays).
    aliases: import aliases given an `as` name, by node.
    alias_names: when given, an import alias binding a renamed name (as `alias_name` reads
        it) is given an `as` too, unless it is a dotted `import a.b`.
    items: names of `global`/`nonlocal` statements -> new names.
    """

    def __init__(
        self,
        refs: Sequence[Renaming],
        *,
        aliases: Mapping[cst.ImportAlias, str] | None = None,
        alias_names: Mapping[str, str] | None = None,
        items: Mapping[str, str] | None = None,
    ) -> None:
        self.refs = refs
        self.aliases = aliases or {}
        self.alias_names = alias_names
        self.items = items or {}

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        for nodes, names in self.refs:
            old = nodes.get(original)
            if old is not None:
                new = names.get(old, old)
                if new == old:
                    return updated
                return (
                    cst.Dict(elements=[])
                    if new == SKIP_LITERAL
                    else updated.with_changes(value=new)
                )
        return updated

    def leave_ImportAlias(
        self, original: cst.ImportAlias, updated: cst.ImportAlias
    ) -> cst.ImportAlias:
        new = self.aliases.get(original)
        if new is None and self.alias_names is not None:
            bound = alias_name(original)
            renamed = self.alias_names.get(bound, bound)
            if renamed != bound and (original.asname is not None or "." not in bound):
                new = renamed
        if new is None:
            return updated
        return updated.with_changes(asname=cst.AsName(cst.Name(new)))

    def leave_NameItem(self, original: cst.NameItem, updated: cst.NameItem) -> cst.NameItem:
        new = self.items.get(original.name.value)
        if new and new != SKIP_LITERAL:
            return updated.with_changes(name=cst.Name(new))
        return updated
