"""Copies of carried code: what each top-level statement of a module reads, and a
statement's copy with its module-level names renamed.

Carried from a module with `from __future__ import annotations` into a flow without it, a
copy has its annotations written as strings, as PEP 563 keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType

import libcst as cst
from libcst.metadata import GlobalScope

from ...support.memo import NodeMemo
from ...support.names import name_nodes
from ...support.namespace import alias_name
from ...support.records import frozen
from ...support.rename import Renamer
from ...support.scopes import resolve_scopes


@frozen
class ModuleScopes:
    """Module-level facts of one helper module: what each top-level statement reads and binds."""

    reads: tuple[frozenset[str], ...]  # per top-level statement: module-level names it reads
    refs: Mapping[cst.Name, str] = field(repr=False)  # node -> module-level name it refers to


def module_scopes(module: cst.Module) -> ModuleScopes:
    resolved = resolve_scopes(module)
    owner: dict[cst.Name, int] = {}
    for index, stmt in enumerate(module.body):
        for node in name_nodes(stmt):
            owner[node] = index
    reads: list[set[str]] = [set() for _ in module.body]
    refs: dict[cst.Name, str] = {}
    global_scope = None
    for scope in resolved.all:
        if isinstance(scope, GlobalScope):
            global_scope = scope
        for access in scope.accesses:
            node = access.node
            if not isinstance(node, cst.Name):
                continue
            if (
                any(isinstance(r.scope, GlobalScope) for r in access.referents)
                or not access.referents
            ):
                refs[node] = node.value
                if node in owner:
                    reads[owner[node]].add(node.value)
    if global_scope is not None:
        for assignment in global_scope.assignments:
            node = getattr(assignment, "node", None)
            if isinstance(node, cst.Name):
                refs[node] = assignment.name
            elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                refs[node.name] = assignment.name
    return ModuleScopes(tuple(frozenset(r) for r in reads), MappingProxyType(refs))


def reads_outside(
    stmt: cst.BaseStatement, members: frozenset[str], scopes: ModuleScopes, index: int
) -> frozenset[str]:
    """What class `stmt` (top-level statement `index`) reads outside its methods `members`."""
    if not isinstance(stmt, cst.ClassDef):
        return scopes.reads[index]
    stack: list[cst.CSTNode] = [item for item in stmt.children if item is not stmt.body]
    stack += [
        item
        for item in stmt.body.body
        if not (isinstance(item, cst.FunctionDef) and item.name.value in members)
    ]
    kept: set[str] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name) and node in scopes.refs:
            kept.add(scopes.refs[node])
        stack.extend(node.children)
    return scopes.reads[index] & frozenset(kept)


_COPIES: NodeMemo[cst.BaseStatement] = NodeMemo()


def renamed_copy(
    stmt: cst.BaseStatement, refs: Mapping[cst.Name, str], names: dict[str, str], strings: bool
) -> cst.BaseStatement:
    """`stmt` with its module-level names renamed (and its annotations written as strings
    when `strings`); flows of a batch that carry a helper the same way share one copy
    (nodes are immutable)."""

    def compute() -> cst.BaseStatement:
        out = stmt.visit(Renamer(((refs, names),), alias_names=names, items=names))
        return out.visit(_StringAnnotations()) if strings else out  # type: ignore[return-value]

    return _COPIES.get(stmt, (tuple(sorted(names.items())), strings), compute)


def postpones_annotations(module: cst.Module) -> bool:
    """Whether `module` starts with `from __future__ import annotations` (PEP 563)."""
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            return False
        for small in stmt.body:
            if (
                isinstance(small, cst.ImportFrom)
                and isinstance(small.module, cst.Name)
                and small.module.value == "__future__"
            ):
                names = small.names
                if not isinstance(names, cst.ImportStar) and any(
                    alias_name(a) == "annotations" for a in names
                ):
                    return True
            elif not (
                isinstance(small, cst.Expr)
                and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString))
            ):
                return False
    return False


class _StringAnnotations(cst.CSTTransformer):
    """Annotations written as strings, as PEP 563 keeps them: carried from a module with
    `from __future__ import annotations` into one without, a signature or class body would
    otherwise evaluate them (a forward reference would fail)."""

    def leave_Annotation(self, original: cst.Annotation, updated: cst.Annotation) -> cst.Annotation:
        if isinstance(updated.annotation, (cst.SimpleString, cst.ConcatenatedString)):
            return updated
        text = cst.Module(body=[]).code_for_node(updated.annotation)
        plain = not any(c in text for c in '"\\\n')
        return updated.with_changes(
            annotation=cst.SimpleString(f'"{text}"' if plain else repr(text))
        )
