"""What each top-level name of a module is bound to, and where it leads.

A module's namespace is read from its top-level statements (imports, defs, classes,
assignments), never by running it. `Resolver.resolve` follows imports and re-exports across
modules until it reaches a definition, a Metaflow name, or something it cannot follow.
"""

from __future__ import annotations

from dataclasses import field, replace
from typing import Union

import libcst as cst

from .records import frozen
from .resolve import ModuleFinder, ModuleRef
from .source import SourceFile

METAFLOW = "metaflow"


@frozen
class ImportModule:
    """`import a.b` (binds `a`, dotted='a') or `import a.b as m` (binds `m`, dotted='a.b')."""

    dotted: str
    stmt: cst.CSTNode = field(repr=False, compare=False)


@frozen
class ImportFrom:
    """`from module import name [as alias]`; `module` is absolute (None if it cannot be)."""

    module: str | None
    name: str
    stmt: cst.CSTNode = field(repr=False, compare=False)


@frozen
class Definition:
    """A `def`, `class`, assignment or compound statement defining the name at top level."""

    stmt: cst.CSTNode = field(repr=False, compare=False)

    @property
    def node(self) -> cst.CSTNode:
        return self.stmt


Binding = Union[ImportModule, ImportFrom, Definition]


@frozen
class Namespace:
    """Top-level bindings of one module, in source order (the last binding of a name wins)."""

    source: SourceFile = field(repr=False)
    ref: ModuleRef | None
    bindings: dict[str, Binding] = field(repr=False)
    star_imports: tuple[str, ...] = ()

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.bindings)


# --- what a name leads to -------------------------------------------------------------


@frozen
class MetaflowName:
    """A name exported by Metaflow itself (`step`, `retry`, `user_step_decorator`, ...)."""

    name: str


@frozen
class ModuleObject:
    """A module itself, named by its dotted path (`import m` then `m`)."""

    dotted: str


@frozen
class Defined:
    """A top-level definition in a module that was found and read."""

    namespace: Namespace = field(compare=False)
    name: str
    stmt: cst.CSTNode = field(compare=False)


@frozen
class Unresolved:
    """Could not be followed; `reason` says why, `missing_module` names a module not found.

    `at` is the import statement that names what cannot be found (a module, or a name the
    module does not define), in whichever module holds it: Python, mypy and pyright report
    the failure there. None when no import is to blame (a name used but bound nowhere).
    """

    reason: str
    missing_module: str | None = None
    undefined: bool = field(default=False, compare=False)
    at: tuple[SourceFile, cst.CSTNode] | None = field(default=None, compare=False, repr=False)


Target = Union[MetaflowName, ModuleObject, Defined, Unresolved]


def _blame(target: Target, ns: Namespace, binding: ImportModule | ImportFrom) -> Target:
    """`target`, reached through `binding`: a missing module or name is that import's fault
    (unless an import further along was already blamed)."""
    if isinstance(target, Unresolved) and target.at is None:
        if target.missing_module or target.undefined:
            return replace(target, at=(ns.source, binding.stmt))
    return target


def bound_names(target: cst.BaseExpression) -> list[str]:
    """Names bound by an assignment target (`a`, `a, b`, `[a, *b]`); attributes bind nothing."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        out: list[str] = []
        for el in target.elements:
            out.extend(bound_names(el.value))
        return out
    if isinstance(target, cst.StarredElement):
        return bound_names(target.value)
    return []


class _Binder(cst.CSTVisitor):
    """Collects names bound by a compound top-level statement (not inside defs or classes)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.names.append(node.name.value)
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.names.append(node.name.value)
        return False

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self.names.extend(bound_names(node.target))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.names.extend(bound_names(node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.names.extend(bound_names(node.target))

    def visit_For(self, node: cst.For) -> None:
        self.names.extend(bound_names(node.target))

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            self.names.append(import_binding_name(alias))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                self.names.append(alias_name(alias))

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name and isinstance(node.name.name, cst.Name):
            self.names.append(node.name.name.value)

    def visit_AsName(self, node: cst.AsName) -> None:
        if isinstance(node.name, cst.Name) and node.name.value not in self.names:
            self.names.append(node.name.value)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self.names.extend(bound_names(node.target))


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` as a string, or None if the expression is not a plain dotted name."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


def alias_name(alias: cst.ImportAlias) -> str:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return dotted_name(alias.name) or ""


def import_binding_name(alias: cst.ImportAlias) -> str:
    """The name `import <alias>` binds: its `as` name, else the first part of the module."""
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return (dotted_name(alias.name) or "").split(".")[0]


def is_main_guard(stmt: cst.CSTNode) -> bool:
    if not isinstance(stmt, cst.If):
        return False
    test = stmt.test
    return (
        isinstance(test, cst.Comparison)
        and isinstance(test.left, cst.Name)
        and test.left.value == "__name__"
    )


def build_namespace(source: SourceFile, ref: ModuleRef | None) -> Namespace:
    bindings: dict[str, Binding] = {}
    stars: list[str] = []
    for stmt in source.module.body:
        if is_main_guard(stmt):
            continue
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        full = dotted_name(alias.name) or ""
                        if alias.asname is not None:
                            bindings[import_binding_name(alias)] = ImportModule(full, stmt)
                        else:
                            bindings[full.split(".")[0]] = ImportModule(full.split(".")[0], stmt)
                elif isinstance(small, cst.ImportFrom):
                    module = dotted_name(small.module) if small.module else None
                    absolute = ModuleFinder.absolute_name(ref, module, len(small.relative))
                    if isinstance(small.names, cst.ImportStar):
                        stars.append(absolute or "")
                        continue
                    for alias in small.names:
                        bindings[alias_name(alias)] = ImportFrom(
                            absolute, dotted_name(alias.name) or "", stmt
                        )
                else:
                    binder = _Binder()
                    small.visit(binder)
                    for name in binder.names:
                        bindings[name] = Definition(stmt)
        else:
            binder = _Binder()
            stmt.visit(binder)
            for name in binder.names:
                bindings[name] = Definition(stmt)
    return Namespace(source, ref, bindings, tuple(stars))


def sole_assignment(stmt: cst.CSTNode) -> tuple[str, cst.BaseExpression] | None:
    """`name = value` alone on a top-level line: (name, value), else None."""
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        small = stmt.body[0]
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
        ):
            return small.targets[0].target.value, small.value
    return None


def _plain_alias(stmt: cst.CSTNode, name: str) -> cst.BaseExpression | None:
    """`name = other` or `name = mod.other` at top level: the expression aliased, else None."""
    found = sole_assignment(stmt)
    if found is None or found[0] != name:
        return None
    written = dotted_name(found[1])
    return found[1] if written is not None and written != name else None


class Resolver:
    """Follows names across modules, reading (never importing) each module once."""

    def __init__(self, finder: ModuleFinder) -> None:
        self.finder = finder
        self._namespaces: dict[str, Namespace | None] = {}

    def namespace_of(self, dotted: str) -> Namespace | Unresolved:
        if dotted not in self._namespaces:
            ref = self.finder.find(dotted)
            if ref is None:
                self._namespaces[dotted] = None
            elif ref.path.is_dir():  # namespace package: no bindings of its own
                self._namespaces[dotted] = Namespace(
                    SourceFile(ref.path, ref.display, "", cst.Module(body=[])), ref, {}
                )
            else:
                self._namespaces[dotted] = build_namespace(self.finder.parse(ref), ref)
        ns = self._namespaces[dotted]
        if ns is None:
            return Unresolved(f"cannot find module '{dotted}'", missing_module=dotted)
        return ns

    def resolve(self, ns: Namespace, name: str, depth: int = 0) -> Target:
        """What `name` in module `ns` refers to."""
        if depth > 50:
            return Unresolved(f"import or alias cycle while resolving '{name}'")
        binding = ns.bindings.get(name)
        if binding is None:
            if ns.star_imports:
                return Unresolved(f"'{name}' may come from a star import")
            return Unresolved(f"'{name}' is not defined in {ns.source.display}", undefined=True)
        if isinstance(binding, Definition):
            alias = _plain_alias(binding.stmt, name)
            if alias is not None:  # `other = deco`: the same object under another name
                return self.expression(ns, alias, depth + 1)
            return Defined(ns, name, binding.stmt)
        if isinstance(binding, ImportModule):
            return _blame(self.module_object(binding.dotted), ns, binding)
        if binding.module is None:
            reason = f"cannot resolve the relative import of '{name}'"
            return Unresolved(reason, at=(ns.source, binding.stmt))
        found = self.attribute(self.module_object(binding.module), binding.name, depth + 1)
        return _blame(found, ns, binding)

    def module_object(self, dotted: str) -> Target:
        if dotted == METAFLOW or dotted.startswith(METAFLOW + "."):
            return ModuleObject(dotted)
        found = self.namespace_of(dotted)
        return found if isinstance(found, Unresolved) else ModuleObject(dotted)

    def attribute(self, base: Target, attr: str, depth: int = 0) -> Target:
        """What `base.attr` refers to."""
        if isinstance(base, Unresolved):
            return base
        if not isinstance(base, ModuleObject):
            return Unresolved(f"cannot follow attribute '{attr}'")
        if base.dotted == METAFLOW or base.dotted.startswith(METAFLOW + "."):
            return MetaflowName(attr)
        ns = self.namespace_of(base.dotted)
        if isinstance(ns, Unresolved):
            return ns
        if attr in ns.bindings:
            return self.resolve(ns, attr, depth + 1)
        sub = f"{base.dotted}.{attr}"
        if self.finder.find(sub) is not None:
            return ModuleObject(sub)
        return self.resolve(ns, attr, depth + 1)

    def expression(self, ns: Namespace, expr: cst.BaseExpression, depth: int = 0) -> Target:
        """What a dotted-name expression (`d`, `mod.d`, `pkg.mod.d`) refers to in `ns`."""
        if isinstance(expr, cst.Name):
            return self.resolve(ns, expr.value, depth)
        if isinstance(expr, cst.Attribute):
            return self.attribute(self.expression(ns, expr.value, depth), expr.attr.value, depth)
        return Unresolved("not a plain name")
