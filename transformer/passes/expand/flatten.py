"""Base flow classes flattened into the flow class when the expansion is written out.

A base class in another module whose steps or class need expansion cannot stay imported:
importing it would run its mutators again and need Metaflow 2.16+. So its members (steps,
parameters, configs, helpers; the chain of its own bases too) are carried into the flow
class, the ones the flow overrides left out, and the base is replaced by `FlowSpec`. What
those members read from their module (imports, module-level helpers) is imported or copied
alongside; the mutators and custom decorators they used are not, their effect being written
out on each step. A base class that needs no expansion stays as it is, imported.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

import libcst as cst

from ...support.namespace import (
    METAFLOW,
    Defined,
    ImportFrom,
    ImportModule,
    Namespace,
    Resolver,
)
from .detect import Detector, is_generator
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

    def bases(self, cls: cst.ClassDef) -> tuple[Chain, list[cst.Arg]]:
        """Base classes in other modules that need expansion are flattened into the flow
        class (their members carried, the class based on FlowSpec); plain ones stay."""
        flattened: Chain = []
        new_bases: list[cst.Arg] = []
        for arg in cls.bases:
            target = self.resolver.expression(self.flow_ns, arg.value)
            if (
                isinstance(target, Defined)
                and isinstance(target.stmt, cst.ClassDef)
                and target.namespace is not self.flow_ns
                and self.detector.class_trigger(target.namespace, target.stmt) is not None
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

    def imports(self, chain: Chain) -> None:
        """The imports of flattened base modules that their carried members read."""
        for ns, cls in chain:
            used = {
                n.id for n in ast.walk(ast.parse(ns.source.module.code_for_node(cls)))
                if isinstance(n, ast.Name)
            }
            for name in sorted(used):
                binding = ns.bindings.get(name)
                target = self.resolver.resolve(ns, name) if binding is not None else None
                if self.detector.is_mutator_class(target) or (
                    isinstance(target, Defined) and is_generator(self.resolver, target)
                ):
                    continue  # its work is written out; its module is not imported
                if name in self.flow_ns.bindings and self.resolver.resolve(
                    self.flow_ns, name
                ) == self.resolver.resolve(ns, name):
                    continue
                carried = self.added.carried
                if isinstance(binding, ImportFrom) and binding.module:
                    if binding.module == METAFLOW:
                        if binding.name not in EXPANSION_ONLY:
                            self.metaflow(binding.name)
                        continue
                    alias = "" if binding.name == name else f" as {name}"
                    carried.append(
                        cst.parse_statement(f"from {binding.module} import {binding.name}{alias}")
                    )
                elif isinstance(binding, ImportModule):
                    carried.append(cst.parse_statement(f"import {binding.dotted}"))
                elif binding is not None and not isinstance(binding.stmt, cst.ClassDef):
                    carried.append(binding.stmt)  # a module-level helper

    def members(self, own: set[str], chain: Chain) -> list[cst.BaseStatement]:
        """The members inherited from the chain (most basic class first), but not those
        named in `own` (the flow class's own, which override them); the first one carries a
        comment saying where they come from."""
        own = set(own)
        body: list[cst.BaseStatement] = []
        for ns, base in reversed(chain):
            for item in base.body.body:
                names = names_of(item)
                if not names or names & own:
                    continue
                own |= names
                if isinstance(item, cst.FunctionDef):
                    self.origin[item] = ns
                member = item
                if not body:
                    origin = ns.source.display.rsplit("/", 1)[-1]
                    note = f"# carried from {base.name.value} ({origin})"
                    member = member.with_changes(
                        leading_lines=[cst.EmptyLine(comment=cst.Comment(note))]
                    )
                body.append(member)
        return body


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
