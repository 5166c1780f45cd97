"""Names: which of the decorator's names are its own and which are its module's.

Its own names (parameters, locals, local imports) are renamed when inlined if they would
capture or shadow anything in the step; the module-level names it reads are carried into
the output (pass 5) and read under their output names. The facts are keyed by the nodes of
the analysed copy of the decorator, so that the inlining pass renames exactly the nodes
that refer to a name, not every node spelled the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType

import libcst as cst
from libcst.metadata import BuiltinScope, GlobalScope, Scope

from ...support.names import attribute_uses, name_nodes, names_in
from ...support.namespace import Namespace, import_binding_name
from ...support.records import frozen
from ...support.scopes import ResolvedScopes


@frozen
class NameFacts:
    """The decorator's names: its own (locals) and its module's (globals)."""

    local_names: frozenset[str]  # bound in its own scope (parameters included)
    local_refs: Mapping[cst.Name, str] = field(repr=False)  # every node of a local
    local_aliases: Mapping[cst.ImportAlias, str] = field(repr=False)  # local imports
    local_functions: frozenset[str]  # locals bound once, by a `def`
    reassigned: frozenset[str]  # locals bound more than once (a rebound parameter matters)
    # local -> names bound in the nested scopes (comprehensions, lambdas...) that read it
    shadowed_at_reads: Mapping[str, frozenset[str]] = field(repr=False)
    bound_anywhere: frozenset[str]  # bound in its scope or any nested one
    global_refs: Mapping[cst.Name, str] = field(repr=False)  # nodes of module-level names
    global_names: frozenset[str]  # module-level names it reads (builtins excluded)
    declared_globals: frozenset[str]  # named by its own `global` statements
    all: frozenset[str]  # every identifier its code writes
    # per plain name, the attributes read from it ("" = also used as a value): a module
    # read as an object is carried as a namespace of those members
    attribute_uses: Mapping[str, frozenset[str]] = field(repr=False)


def own_scope(resolved: ResolvedScopes, func: cst.FunctionDef) -> Scope:
    """The scope of the function's body."""
    first = func.body.body[0] if isinstance(func.body, cst.IndentedBlock) else func.body
    scope = resolved.of_node[first]
    assert scope is not None
    return scope


def read_names(
    func: cst.FunctionDef,
    resolved: ResolvedScopes,
    ns: Namespace,
    declared: frozenset[str],
) -> NameFacts:
    """The name facts of `func` (defined in module `ns`, with scopes `resolved`), whose own
    `global` statements name `declared`."""
    fscope = own_scope(resolved, func)
    local_refs: dict[cst.Name, str] = {}
    local_aliases: dict[cst.ImportAlias, str] = {}
    shadows: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    functions: dict[str, int] = {}
    for assignment in fscope.assignments:
        if not hasattr(assignment, "node"):
            continue
        name = assignment.name
        counts[name] = counts.get(name, 0) + 1
        node = assignment.node
        if isinstance(node, cst.Name):
            local_refs[node] = name
        elif isinstance(node, cst.Param):
            local_refs[node.name] = name
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            local_refs[node.name] = name
            if isinstance(node, cst.FunctionDef):
                functions[name] = functions.get(name, 0) + 1
        elif isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(
            node.names, cst.ImportStar
        ):
            for alias in node.names:
                if import_binding_name(alias) == name:
                    local_aliases[alias] = name
        for access in assignment.references:
            if isinstance(access.node, cst.Name):
                local_refs[access.node] = name
                scope = access.scope
                while (
                    scope is not None and scope is not fscope and not isinstance(scope, GlobalScope)
                ):
                    shadows.setdefault(name, set()).update(a.name for a in scope.assignments)
                    scope = scope.parent
    all_counts: dict[str, int] = {}
    for assignment in fscope.assignments:
        all_counts[assignment.name] = all_counts.get(assignment.name, 0) + 1
    local_names = frozenset(all_counts)
    global_refs: dict[cst.Name, str] = {}
    bound_anywhere: set[str] = set()
    for scope in resolved.within(fscope):
        if isinstance(scope, (GlobalScope, BuiltinScope)):
            continue
        bound_anywhere.update(a.name for a in scope.assignments)
        for access in scope.accesses:
            if not isinstance(access.node, cst.Name):
                continue
            referents = access.referents
            if all(isinstance(r.scope, (GlobalScope, BuiltinScope)) for r in referents):
                name = access.node.value
                if (
                    name in ns.bindings
                    or not referents
                    or any(isinstance(r.scope, GlobalScope) for r in referents)
                ):
                    global_refs[access.node] = name
    # `global` statements make names module-level even where assigned (`CALLS += 1`)
    for node, name in list(local_refs.items()):
        if name in declared:
            del local_refs[node]
            global_refs[node] = name
    if declared:
        for node in (n for n in name_nodes(func.body) if n.value in declared):
            global_refs.setdefault(node, node.value)
    return NameFacts(
        local_names=local_names,
        local_refs=MappingProxyType(local_refs),
        local_aliases=MappingProxyType(local_aliases),
        local_functions=frozenset(n for n, c in functions.items() if c == 1 and all_counts[n] == 1),
        reassigned=frozenset(n for n, c in counts.items() if c > 1),
        shadowed_at_reads=MappingProxyType({k: frozenset(v) for k, v in shadows.items()}),
        bound_anywhere=frozenset(bound_anywhere),
        global_refs=MappingProxyType(global_refs),
        global_names=frozenset(
            n for n in global_refs.values() if n in ns.bindings or n in declared
        ),
        declared_globals=declared,
        all=frozenset(names_in(func)),
        attribute_uses=MappingProxyType({k: frozenset(v) for k, v in attribute_uses(func).items()}),
    )
