"""Base flow classes in other modules flattened into the flow class.

A base class in another module that uses mutators or custom decorators cannot stay
imported: importing it would run its mutators again and need Metaflow 2.16+. So its
members (steps, parameters, configs, helpers; the chain of its own bases too) are carried
into the flow class, the ones a more derived class overrides left out, and the base is
replaced by `FlowSpec`. What those members read from their module is imported (imports) or
copied (module-level helpers, with what they read in turn). After an expansion the
mutators and custom decorators they used are not: their effect is written out on each step.
Flattened statically (`inherit`), custom decorators stay on the carried steps, imported
for the passes that inline them (which then drop those imports). A base class that needs
neither stays as it is, imported.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

import libcst as cst

from ...support.diagnostics import NOT_FLATTENED, Diagnostic
from ...support.locate import Locator
from ...support.names import NameAllocator, identifiers_in_text
from ...support.namespace import (
    METAFLOW,
    Defined,
    ImportFrom,
    ImportModule,
    Namespace,
    Resolver,
)
from ...support.rename import Renamer
from ...support.scopes import resolve_scopes
from .detect import Detector, callee, is_generator
from .imports import EXPANSION_ONLY, AddedImports

#: One class of a flattened chain and the module namespace it was read from.
Chain = list[tuple[Namespace, cst.ClassDef]]


class Flattener:
    """Carries flattened bases' members into one flow class.

    `metaflow(name)` gives the local name under which the output reads Metaflow's `name`
    (recording the import); `origin` maps each carried method to the namespace of the
    module it came from, where its decorators are resolved.
    """

    def __init__(
        self,
        resolver: Resolver,
        flow_ns: Namespace,
        detector: Detector,
        metaflow: Callable[[str], str],
        added: AddedImports,
    ) -> None:
        self.resolver = resolver
        self.flow_ns = flow_ns
        self.detector = detector
        self.metaflow = metaflow
        self.added = added
        self.origin: dict[cst.CSTNode, Namespace] = {}
        #: names a carried member reads that the flow module binds to something else and
        #: that cannot be renamed (a decorator's name, a dotted `import a.b`)
        self.collisions: list[tuple[Namespace, str]] = []
        #: (module display, name) -> the name that module's binding has in the flow module,
        #: when its own is taken there (by the flow module, or by another base module's)
        self.renamed: dict[tuple[str, str], str] = {}
        self._carried: dict[str, object] = {}  # a name carried into the flow module -> target
        self._names: NameAllocator | None = None
        self._decorator_modules: set[str] = set()  # see `_shared`
        self._read_modules: set[int] = set()  # modules whose words `_names` reserves
        self._originals: dict[tuple[str, int], tuple[Namespace, cst.BaseStatement]] = {}

    def bases(
        self, cls: cst.ClassDef, needs: Callable[[Defined], bool]
    ) -> tuple[Chain, list[cst.Arg]]:
        """Base classes in other modules that `needs` says must go are flattened into the
        flow class (their members carried, the class based on FlowSpec); others stay."""
        flattened: Chain = []
        new_bases: list[cst.Arg] = []
        for arg in cls.bases:
            target = self.resolver.expression(self.flow_ns, arg.value)
            if (
                isinstance(target, Defined)
                and isinstance(target.stmt, cst.ClassDef)
                and target.namespace is not self.flow_ns
                and needs(target)
            ):
                chain = self._chain(target)
                flattened.extend(chain)
                new_bases.append(arg.with_changes(value=cst.Name(self.metaflow("FlowSpec"))))
            else:
                new_bases.append(arg)
        return flattened, new_bases

    def _chain(self, target: Defined, depth: int = 0) -> Chain:
        """The class and every base class read from files, most derived first."""
        out = [(target.namespace, target.stmt)]
        if depth > 20:
            return out
        for arg in target.stmt.bases:
            inner = self.resolver.expression(target.namespace, arg.value)
            if isinstance(inner, Defined) and isinstance(inner.stmt, cst.ClassDef):
                out.extend(self._chain(inner, depth + 1))
        return out

    def imports(
        self,
        chain: Chain,
        keep_decorators: bool = False,
        decorator_modules: frozenset = frozenset(),
    ) -> None:
        """What the carried members read from their modules: imports re-emitted, Metaflow
        names imported, module-level helpers copied (with what they read in turn). Mutators
        and custom decorators are left out after an expansion (their effect is written
        out); with `keep_decorators` (a static flatten) the custom decorators are imported,
        for the passes that inline them. `decorator_modules`: the modules of the custom
        decorators an expansion put on the steps (their helpers are shared, see `_shared`)."""
        in_chain = {id(cls) for _, cls in chain}
        self._decorator_modules |= set(decorator_modules)
        if keep_decorators:
            self._decorator_modules |= self._modules_of_decorators(chain)
        seen: set[tuple[int, str]] = set()
        for ns, cls in chain:
            todo = [(ns, n) for n in sorted(_read_names(ns.source.module.code_for_node(cls)))]
            while todo:
                where, name = todo.pop(0)
                if (id(where), name) not in seen:
                    seen.add((id(where), name))
                    todo.extend(self._needed(where, name, in_chain, keep_decorators))
        for key, (ns, stmt) in self._originals.items():
            self.added.definitions[key] = self.rename(ns, stmt)

    def _needed(
        self, ns: Namespace, name: str, in_chain: set[int], keep_decorators: bool
    ) -> list[tuple[Namespace, str]]:
        """Make `name`, as module `ns` binds it, readable in the flow module; the names a
        copied helper reads in turn (with the module they are read in)."""
        binding = ns.bindings.get(name)
        if binding is None:
            return []  # a builtin, or a local of a method
        target = self.resolver.resolve(ns, name)
        if isinstance(target, Defined) and id(target.stmt) in in_chain:
            return []  # a class of the chain itself: flattened
        decorator = is_generator(self.resolver, target) or self.detector.is_mutator_class(
            target, bases=frozenset({"UserStepDecorator"})
        )
        if self.detector.is_mutator_class(target) and not decorator:
            return []  # a mutator: its work was written out
        if decorator and not keep_decorators:
            return []  # its work is written out; its module is not imported
        if (ns.source.display, name) in self.renamed:
            return []  # carried already, under its new name
        if isinstance(binding, ImportFrom) and binding.module == METAFLOW:
            # read under the name the output reads Metaflow's by (imported when missing)
            if binding.name not in EXPANSION_ONLY:
                if self.metaflow(binding.name) != name:
                    if self._rename(ns, name, binding) is None:
                        self.collisions.append((ns, name))
            elif binding.name == name:  # e.g. config_expr in a carried Parameter
                self.added.if_read.add(name)
            return []
        local: str | None = name
        if name in self.flow_ns.bindings:
            if _same(self.resolver.resolve(self.flow_ns, name), target):
                return []
            local = self._rename(ns, name, binding)
        elif name in self._carried and not _same(self._carried[name], target):
            local = self._rename(ns, name, binding)  # another base module's, carried
        if local is None:
            self.collisions.append((ns, name))
            return []
        self._carried.setdefault(local, target)
        if self._names is not None:
            self._names.reserve(local)
        carried = self.added.carried
        if isinstance(binding, ImportFrom) and binding.module:
            helper = None if decorator else self._project_helper(binding, target)
            if helper is not None and self._shared(helper.namespace, helper.name, local):
                return []
            if helper is not None:  # from a project module: copied, as the base module's own
                if local != name:  # its definition renamed too, where it is defined
                    self.renamed[(helper.namespace.source.display, helper.name)] = local
                return self._copy(helper)
            alias = "" if binding.name == local else f" as {local}"
            carried.append(
                cst.parse_statement(f"from {binding.module} import {binding.name}{alias}")
            )
        elif isinstance(binding, ImportModule):
            alias = "" if binding.dotted.split(".")[0] == local else f" as {local}"
            carried.append(cst.parse_statement(f"import {binding.dotted}{alias}"))
        elif decorator and ns.ref is not None:
            # a custom decorator the base module defines: imported for the compile only
            # (the passes that inline it drop the import)
            alias = "" if name == local else f" as {local}"
            carried.append(cst.parse_statement(f"from {ns.ref.name} import {name}{alias}"))
        elif not self._shared(ns, name, local):  # a module-level helper, copied (in order)
            return self._copy(Defined(ns, name, binding.stmt))
        return []

    def _shared(self, ns: Namespace, name: str, local: str) -> bool:
        """Import (for the compile only) a helper of a module whose custom decorators the
        carried steps use, rather than copy it: the passes that inline those decorators carry
        it once, shared by the decorators and the steps (one object, as natively; a copy of
        a module-level list or counter would be a second object), and drop the import."""
        if ns.ref is None or ns.ref.name not in self._decorator_modules:
            return False
        alias = "" if name == local else f" as {local}"
        self.added.carried.append(cst.parse_statement(f"from {ns.ref.name} import {name}{alias}"))
        return True

    def _modules_of_decorators(self, chain: Chain) -> set[str]:
        """The modules defining the custom decorators written on the chain's members."""
        out = set()
        for ns, cls in chain:
            for item in cls.body.body:
                for dec in getattr(item, "decorators", ()):
                    target = self.resolver.expression(ns, callee(dec))
                    if (
                        isinstance(target, Defined)
                        and (
                            is_generator(self.resolver, target)
                            or self.detector.is_mutator_class(
                                target, bases=frozenset({"UserStepDecorator"})
                            )
                        )
                        and target.namespace.ref is not None
                    ):
                        out.add(target.namespace.ref.name)
        return out

    def _copy(self, helper: Defined) -> list[tuple[Namespace, str]]:
        """Copy a module-level helper into the flow module; what it reads, to look up."""
        ns = helper.namespace
        place = ns.source.module.body.index(helper.stmt)
        self._originals[(ns.source.display, place)] = (ns, helper.stmt)
        self.added.definitions[(ns.source.display, place)] = helper.stmt
        return [(ns, n) for n in sorted(_read_names(ns.source.module.code_for_node(helper.stmt)))]

    def _rename(self, ns: Namespace, name: str, binding: object) -> str | None:
        """A fresh name in the flow module for module `ns`'s `name` (`<module>_<name>`, as
        carried helpers are renamed; Metaflow's own names under the local name the output
        reads them by), recorded for `rename`; None when it cannot be renamed: a name a
        decorator is written with (later passes and the writer read decorators by their
        module's names) or a dotted `import a.b`."""
        if name in self._decorator_names(ns):
            return None
        if isinstance(binding, ImportModule) and "." in binding.dotted:
            return None
        if isinstance(binding, ImportFrom) and binding.module == METAFLOW:
            new = self.metaflow(binding.name)
        else:
            if self._names is None:
                text = self.flow_ns.source.module.code
                self._names = NameAllocator(identifiers_in_text(text) | set(self._carried))
            if id(ns) not in self._read_modules:  # a local of a carried member: not shadowed
                self._read_modules.add(id(ns))
                for word in identifiers_in_text(ns.source.module.code):
                    self._names.reserve(word)
            stem = ns.source.display.rsplit("/", 1)[-1].removesuffix(".py")
            new = self._names.claim(f"{stem}_{name}")
        self.renamed[(ns.source.display, name)] = new
        return new

    def _decorator_names(self, ns: Namespace) -> set[str]:
        """The first names of every decorator written in module `ns` (`x` of `@x.y(...)`)."""
        out = set()
        for node in ns.source.module.body:
            for item in [node, *(node.body.body if isinstance(node, cst.ClassDef) else ())]:
                for dec in getattr(item, "decorators", ()):
                    root = (
                        dec.decorator.func
                        if isinstance(dec.decorator, cst.Call)
                        else (dec.decorator)
                    )
                    while isinstance(root, cst.Attribute):
                        root = root.value
                    if isinstance(root, cst.Name):
                        out.add(root.value)
        return out

    def rename(self, ns: Namespace, node: cst.CSTNode) -> cst.CSTNode:
        """`node` (a statement or decorator of module `ns`) with the module-level names it
        reads or binds that were renamed for the flow module written under their new names:
        only the names that refer to the module's own binding (a method's local of the same
        name stays), as libcst's scope analysis of the module resolves them."""
        names = {
            old: new for (display, old), new in self.renamed.items() if display == ns.source.display
        }
        if not names:
            return node
        scopes = resolve_scopes(ns.source.module)
        top = scopes.of_node.get(ns.source.module.body[0]) if ns.source.module.body else None
        refs: dict[cst.Name, str] = {}
        if top is not None:
            for old in names:
                for assignment in top.assignments[old]:
                    bound = assignment.node
                    if isinstance(bound, (cst.FunctionDef, cst.ClassDef)):
                        refs[bound.name] = old
                    elif isinstance(bound, cst.Name):
                        refs[bound] = old
                    for access in assignment.references:
                        if isinstance(access.node, cst.Name):
                            refs[access.node] = old
        return node.visit(_GlobalRenamer([(refs, names)], items=names))

    def _project_helper(self, binding: ImportFrom, target: object) -> Defined | None:
        """The definition a carried member imports from a module of the project (not an
        installed package), when it can be copied: imported under its own name, defined at
        the top of that module, and that module not imported by the flow module itself
        (which then shares it, as natively). Importing it instead would need the base's
        package, whose `__init__` may import the base module again (and Metaflow 2.16+)."""
        if not isinstance(target, Defined) or binding.name != target.name:
            return None
        if target.stmt not in target.namespace.source.module.body:
            return None
        ref = self.resolver.finder.find(binding.module or "")
        if ref is None or ref.external:
            return None
        for flow_binding in self.flow_ns.bindings.values():
            module = getattr(flow_binding, "module", None) or getattr(flow_binding, "dotted", "")
            if module == binding.module:
                return None
        return target

    def report(self, locator: Locator, where: cst.CSTNode) -> list[Diagnostic]:
        """A located diagnostic per name the flow module binds differently."""
        location = locator.locate(self.flow_ns.source, where)
        unique = {(ns.source.display, name): None for ns, name in self.collisions}
        return [
            NOT_FLATTENED(
                f"{name}, which the carried members of a base class read from {display}, is "
                "bound to something else in the flow module: rename one of them",
                location,
            )
            for display, name in unique
        ]

    def members(self, own: set[str], chain: Chain) -> list[cst.BaseStatement]:
        """The members inherited from the chain, but not those named in `own` (the flow
        class's own, which override them), nor those a more derived class of the chain
        overrides; most basic class first, each class's first member with a comment saying
        where they come from."""
        winners: dict[str, int] = {}  # name -> index in the chain of the class defining it
        for index, (_ns, base) in enumerate(chain):  # most derived first
            for item in base.body.body:
                for name in names_of(item):
                    winners.setdefault(name, index)
        body: list[cst.BaseStatement] = []
        for index in reversed(range(len(chain))):
            ns, base = chain[index]
            first = True
            for item in base.body.body:
                names = names_of(item)
                if not names or names & own or any(winners[n] != index for n in names):
                    continue
                member = self.rename(ns, item)
                if first:
                    origin = ns.source.display.rsplit("/", 1)[-1]
                    note = f"# carried from {base.name.value} ({origin})"
                    lines = [cst.EmptyLine(comment=cst.Comment(note))]
                    if body:  # set apart from the members of the class before
                        lines.insert(0, cst.EmptyLine(indent=False))
                    member = member.with_changes(leading_lines=lines)
                    first = False
                if isinstance(member, cst.FunctionDef):
                    self.origin[member] = ns
                body.append(member)
        return body


class _GlobalRenamer(Renamer):
    """Renames module-level names: `global X` statements too, never `nonlocal X` (a local)."""

    def visit_Nonlocal(self, node: cst.Nonlocal) -> bool:
        return False


def assigned(cls: cst.ClassDef) -> set[str]:
    """Every name the class body binds."""
    out = set()
    for item in cls.body.body:
        out |= names_of(item)
    return out


def names_of(item: cst.CSTNode) -> set[str]:
    """The names a class-body statement binds (a def, a class, assignments)."""
    if isinstance(item, (cst.FunctionDef, cst.ClassDef)):
        return {item.name.value}
    out = set()
    if isinstance(item, cst.SimpleStatementLine):
        for small in item.body:
            if isinstance(small, cst.Assign):
                for t in small.targets:
                    if isinstance(t.target, cst.Name):
                        out.add(t.target.value)
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                out.add(small.target.value)
    return out


def _read_names(code: str) -> set[str]:
    """The names a piece of code reads or binds (as Python's parser sees them)."""
    return {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}


def _same(one: object, other: object) -> bool:
    """Whether two resolved names are the same thing (a definition: the same statement)."""
    if isinstance(one, Defined) and isinstance(other, Defined):
        return one.stmt is other.stmt
    return one == other
