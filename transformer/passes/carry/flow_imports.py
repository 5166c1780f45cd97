"""What the flow reads itself, and what it imports for its own use from a decorator module.

A flow may import a helper from a decorator module for its own use (`from decos import
timer, fmt`). The output cannot keep that import (the module needs Metaflow 2.16+), so the
helper is carried like the decorators' helpers, under the same output name (one object, as
natively), and the import is dropped.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence

import libcst as cst

from ...support.names import identifiers_in_text
from ...support.namespace import (
    METAFLOW,
    ImportFrom,
    ImportModule,
    MetaflowName,
    Namespace,
    Resolver,
    Unresolved,
)
from ..analyze import Analyses, ClassInfo
from ..discover import StepSite, decorator_generator
from ..discover.classes import ClassDecoratorDef
from .carrier import Carrier


def flow_reads(
    tree: ast.Module | None,
    text: str,
    sites: Sequence[StepSite],
    in_flow_defs: Mapping[str, cst.BaseStatement],
    infos: Analyses,
) -> tuple[set[str], dict[str, set[str]]]:
    """Flow-level names the output still reads: all names of the flow (`tree`, as Python's
    own parser read `text`) except those only in removed custom decorator uses and
    definitions; and for each, the attributes the flow reads from it ("" when it is read
    bare). Python's parser answers this in a fraction of a libcst walk's time."""
    custom = {(s.class_name, s.name): {u.written for u in s.uses if not u.via_with} for s in sites}
    in_flow_classes = {  # their Metaflow base is swapped for decoflow's: not read
        u.definition.name
        for s in sites
        for u in s.uses
        if isinstance(u.definition, ClassDecoratorDef) and u.definition.in_flow
    }
    applied = {  # also StepMutators, their mutate applied: it is not carried
        name for info in infos.values() if isinstance(info, ClassInfo) for name in info.mutators
    }
    removed = {n for n, stmt in in_flow_defs.items() if isinstance(stmt, cst.FunctionDef)}
    removed_assignments = set(in_flow_defs) - removed
    used: set[str] = set()
    attributes: dict[str, set[str]] = {}

    def collect(node: ast.AST) -> None:
        nodes = list(ast.walk(node))
        bases = {id(n.value): n.attr for n in nodes if isinstance(n, ast.Attribute)}
        for n in nodes:
            if isinstance(n, ast.Name):
                used.add(n.id)
                attributes.setdefault(n.id, set()).add(bases.get(id(n), ""))

    if tree is None:  # libcst accepted what Python did not: keep every import
        return set(identifiers_in_text(text)), {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(stmt, ast.FunctionDef) and stmt.name in removed:
            continue
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id in removed_assignments
            and isinstance(stmt.value, ast.Call)
        ):
            continue
        if not isinstance(stmt, ast.ClassDef):
            collect(stmt)
            continue
        body = [
            item
            for item in stmt.body
            if not (
                stmt.name in applied
                and isinstance(item, ast.FunctionDef)
                and item.name in ("pre_mutate", "mutate")
            )
        ]
        if stmt.name in in_flow_classes:
            for item in body:
                collect(item)
            continue
        for part in (*stmt.bases, *stmt.keywords, *stmt.decorator_list):
            collect(part)
        for item in body:
            written = custom.get((stmt.name, getattr(item, "name", "")), set())
            if not isinstance(item, ast.FunctionDef) or not written:
                collect(item)
                continue
            for dec in item.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                if ast.unparse(target) in written:
                    if isinstance(dec, ast.Call):
                        for arg in (*dec.args, *dec.keywords):
                            collect(arg)
                else:
                    collect(dec)
            collect(item.args)
            for body_stmt in item.body:
                collect(body_stmt)
    for info in infos.values():
        if info.definition.in_flow and not isinstance(info, ClassInfo):
            ns = info.definition.namespace
            used |= {n for n in info.names.global_names if not _skip_constant(ns, n)}
    return used, attributes


def _skip_constant(ns: Namespace, name: str) -> bool:
    """`name` is Metaflow's USER_SKIP_STEP: inlined code writes `{}` in its place
    (`Carrier.output_name`), so a decorator reading it does not keep the import (the
    constant exists only from Metaflow 2.16)."""
    binding = ns.bindings.get(name)
    return (
        isinstance(binding, ImportFrom)
        and binding.module == METAFLOW
        and binding.name == "USER_SKIP_STEP"
    )


def carry_flow_imports(
    carrier: Carrier,
    resolver: Resolver,
    flow_ns: Namespace,
    used: set[str],
    attributes: Mapping[str, set[str]],
) -> tuple[set[str], list[tuple[str, str]]]:
    """Names the flow imports for its own use from a module the output does not import
    (a decorator module: it needs Metaflow 2.16+): carried like the decorators' helpers,
    under the same output names (one object, as natively), and their imports dropped.
    Returns those names, and `name = output name` for each carried under another name."""
    own: set[str] = set()
    aliases: list[tuple[str, str]] = []
    wanted: list[tuple[str, Namespace, str | None]] = []  # flow name, module, name in it
    for name, binding in flow_ns.bindings.items():
        if isinstance(binding, ImportFrom):
            module = binding.module
        elif isinstance(binding, ImportModule) and "." not in binding.dotted:
            module = binding.dotted
        else:
            continue
        if not module or not carrier.carries_module(flow_ns, module):
            continue
        found = resolver.namespace_of(module)
        if isinstance(found, Unresolved):
            continue
        if isinstance(binding, ImportFrom) and binding.name not in found.bindings:
            continue  # nothing to carry (fails as natively)
        target = resolver.resolve(flow_ns, name)
        if isinstance(target, MetaflowName) or decorator_generator(resolver, target):
            continue  # a custom decorator (dropped anyway), or Metaflow's own
        if name not in used:
            own.add(name)  # imported, never read: the import goes
        elif isinstance(binding, ImportFrom):
            carrier.prefer(found, binding.name, name)
            wanted.append((name, found, binding.name))
        else:
            wanted.append((name, found, None))
    for name, found, member in sorted(wanted, key=lambda w: w[2] is None):  # modules last
        if member is not None:
            out = carrier.output_name(found, member, attributes.get(name))
        else:
            members = _module_members(resolver, found, attributes.get(name))
            if members is None:
                continue  # used as a value, not only through attributes: kept imported
            out = carrier.flow_module(found, name, members)
        own.add(name)
        if out != name:
            aliases.append((name, out))
    return own, aliases


def _module_members(
    resolver: Resolver, module: Namespace, attributes: set[str] | None
) -> set[str] | None:
    """What the flow reads from `module` (`decos.fmt`), custom decorators aside; None when
    it reads the module bare (or that is not known)."""
    if attributes is None or "" in attributes:
        return None
    resolve = resolver.resolve
    return {a for a in attributes if not decorator_generator(resolver, resolve(module, a))}
