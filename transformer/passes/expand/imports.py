"""The flow module's imports once the expansion is written out.

What the expansion wrote out no longer needs importing: the mutator classes, the base
classes that were flattened into the flow class, and Metaflow's 2.16+-only names
(`EXPANSION_ONLY`), which would stop the compiled flow from running on older Metaflow.
Those are dropped when nothing else reads them. What the written code reads and the module
lacks (Metaflow names such as `retry`, custom decorators a mutator added, imports that a
flattened base's members read) is added after the module's own imports.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import libcst as cst

from ...support.diagnostics import CompileError
from ...support.namespace import (
    METAFLOW,
    Defined,
    ImportFrom,
    ImportModule,
    MetaflowName,
    Namespace,
    Resolver,
    alias_name,
    dotted_name,
)
from ...support.source import is_docstring
from .detect import NEWER_METAFLOW, Detector, is_generator

#: Names from metaflow the compiled flow must not import (2.16+ only) once expanded.
EXPANSION_ONLY = NEWER_METAFLOW


@dataclass
class AddedImports:
    """What the written flow reads and must import, gathered while it is written."""

    #: names imported from metaflow, `name` or `name as alias`
    metaflow: set[str] = field(default_factory=set)
    #: custom decorators a mutator added: local name -> (module, name)
    custom: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: imports a flattened base's members need
    carried: list[cst.BaseStatement] = field(default_factory=list)
    #: module-level helpers they read, copied: (module shown, place in it) -> statement
    definitions: dict[tuple[str, int], cst.BaseStatement] = field(default_factory=dict)
    #: Metaflow names (e.g. `config_expr`) imported only if the written module reads them
    if_read: set[str] = field(default_factory=set)
    #: names only a dropped argument read (a Config's `parser=`, run at compile time): their
    #: imports go when nothing left in the written module reads them
    unread: set[str] = field(default_factory=set)


def metaflow_local(name: str, flow_ns: Namespace, resolver: Resolver, added: AddedImports) -> str:
    """The local name the output uses for Metaflow's `name` (imported when missing, under
    `metaflow_<name>` when the flow module binds `name` to something else)."""
    if flow_ns.bindings.get(name) is None:
        added.metaflow.add(name)
        return name
    if resolver.resolve(flow_ns, name) == MetaflowName(name):
        return name
    alias = f"metaflow_{name}"
    added.metaflow.add(f"{name} as {alias}")
    return alias


def fix_imports(
    module: cst.Module,
    flow_ns: Namespace,
    resolver: Resolver,
    detector: Detector,
    added: AddedImports,
) -> cst.Module:
    """`module` with the imports the expansion made unneeded dropped (mutators, flattened
    bases, Metaflow 2.16+ names no longer read, what only a Config's parser read) and the
    `added` ones placed after the existing imports."""
    used = _names_outside_imports(module)
    removable = set(EXPANSION_ONLY) | {"Config"} | added.unread
    for name, binding in flow_ns.bindings.items():
        target = resolver.resolve(flow_ns, name)
        if detector.is_mutator_class(target):
            removable.add(name)
        elif isinstance(binding, (ImportFrom, ImportModule)) and isinstance(target, Defined):
            if isinstance(target.stmt, cst.ClassDef) and target.namespace is not flow_ns:
                removable.add(name)  # e.g. a flattened base class
            elif target.namespace is not flow_ns and _is_generator(resolver, target):
                removable.add(name)  # a custom decorator the mutators removed from every step
        elif isinstance(binding, ImportModule) and not binding.dotted.startswith(METAFLOW):
            ref = resolver.finder.find(binding.dotted)
            if ref is not None and not ref.external:
                removable.add(name)  # `import baseflow` for a flattened `baseflow.Base`
    drop = {n for n in removable if n not in used}
    for name in added.if_read:  # read by carried members, not bound by the flow module
        if name in used and flow_ns.bindings.get(name) is None:
            added.metaflow.add(name)
    body = []
    for stmt in module.body:
        new = _without_names(stmt, drop)
        if new is not None:
            body.append(new)
    extra: list[cst.BaseStatement] = []
    if added.metaflow and not _merge_metaflow(body, added.metaflow):
        names = ", ".join(sorted(added.metaflow))
        extra.append(cst.parse_statement(f"from metaflow import {names}"))
    for local, (mod, name) in sorted(added.custom.items()):
        alias = "" if local == name else f" as {local}"
        extra.append(cst.parse_statement(f"from {mod} import {name}{alias}"))
    seen = set()
    for stmt in added.carried:
        code = cst.Module(body=[stmt]).code
        if code not in seen and not any(code == cst.Module(body=[s]).code for s in body):
            seen.add(code)
            extra.append(stmt)
    at = 0
    for i, stmt in enumerate(body):
        if is_import(stmt) or (i == 0 and is_docstring(stmt)):
            at = i + 1
        elif not _is_future(stmt):
            break
    previous = None
    for (origin, _), stmt in sorted(added.definitions.items()):
        lines = [cst.EmptyLine(indent=False), cst.EmptyLine(indent=False)]
        if origin != previous:
            lines.append(cst.EmptyLine(comment=cst.Comment(f"# carried by decoflow from {origin}")))
            previous = origin
        extra.append(stmt.with_changes(leading_lines=lines))
    body[at:at] = extra
    return module.with_changes(body=body)


def _is_generator(resolver: Resolver, target: Defined) -> bool:
    """A custom step decorator written as a generator (a module that cannot be read counts
    as none here: the passes that follow report it)."""
    try:
        return is_generator(resolver, target)
    except CompileError:
        return False


def _merge_metaflow(body: list[cst.BaseStatement], names: set[str]) -> bool:
    """Add `names` to the module's own one-line `from metaflow import ...` (kept sorted if
    it was), as a user would; False when there is none to add them to."""
    for i, stmt in enumerate(body):
        if not (is_import(stmt) and len(stmt.body) == 1):
            continue
        small = stmt.body[0]
        if (
            isinstance(small, cst.ImportFrom)
            and small.relative == ()
            and small.module is not None
            and dotted_name(small.module) == METAFLOW
            and not isinstance(small.names, cst.ImportStar)
            and small.lpar is None
        ):
            written = [
                cst.Module(body=[]).code_for_node(a.with_changes(comma=cst.MaybeSentinel.DEFAULT))
                for a in small.names
            ]
            merged = written + sorted(names - set(written))
            if written == sorted(written):
                merged.sort()
            new = cst.parse_statement(f"from metaflow import {', '.join(merged)}")
            body[i] = new.with_changes(
                leading_lines=stmt.leading_lines, trailing_whitespace=stmt.trailing_whitespace
            )
            return True
    return False


def _is_future(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and isinstance(stmt.body[0], cst.ImportFrom)
        and dotted_name(stmt.body[0].module or cst.Name("x")) == "__future__"
    )


def is_import(stmt: cst.CSTNode) -> bool:
    """An import statement (every part of the line an import)."""
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _names_outside_imports(module: cst.Module) -> set[str]:
    """The names the module reads outside its imports (`x` of `x.attr` included)."""
    tree = ast.parse(module.code)
    used: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        used |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
        used |= {
            n.value.id for n in ast.walk(stmt)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
        }
    return used


def _without_names(stmt: cst.BaseStatement, drop: set[str]) -> cst.BaseStatement | None:
    """The import statement without the aliases binding `drop`; None when nothing is left."""
    if not is_import(stmt) or not drop:
        return stmt
    smalls = []
    for small in stmt.body:
        if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
            names = [a for a in small.names if alias_name(a) not in drop]
            if not names:
                continue
            if len(names) != len(small.names):
                names = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in names]
                small = small.with_changes(names=names, lpar=None, rpar=None)
        elif isinstance(small, cst.Import):
            names = [
                a for a in small.names
                if (a.asname.name.value if a.asname else (dotted_name(a.name) or "").split(".")[0])
                not in drop
            ]
            if not names:
                continue
            names = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in names]
            small = small.with_changes(names=names)
        smalls.append(small)
    if not smalls:
        return None
    return stmt.with_changes(body=smalls)
