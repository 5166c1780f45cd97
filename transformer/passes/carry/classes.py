"""Pass 5, class-based decorators: the module-level part of class layers.

Each class is carried into the output (or, defined in the flow, rewritten in place) with
Metaflow's `UserStepDecorator` base swapped for `DecoflowStepDecorator` (runtime/classes.py)
and a StepMutator base dropped; one instance is made per use when the flow loads
(`start_trace = Trace(label="x")` at module level, in Metaflow's order): its state lives on
that object, never on the flow. `render` places the instances and the in-flow classes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import libcst as cst

from ...support.namespace import Defined, MetaflowName, Resolver
from ...support.records import frozen
from ...support.source import is_docstring
from ..analyze.classes import class_body_names
from ..discover import DecoratorUse, StepSite
from ..discover.classes import (
    STEP_MUTATOR,
    USER_STEP_DECORATOR,
    ClassDecoratorDef,
    snake,
)
from .carrier import Carrier

BASE = "DecoflowStepDecorator"
#: What a class that is also a StepMutator does at deploy time: applied by the expansion
#: (pass 1, expand), so left out of the carried class with its StepMutator base.
MUTATOR_METHODS = frozenset({"pre_mutate", "mutate"})


def _is_step_mutator(part: Defined, resolver: Resolver) -> bool:
    assert isinstance(part.stmt, cst.ClassDef)
    return any(
        resolver.expression(part.namespace, base.value) == MetaflowName(STEP_MUTATOR)
        for base in part.stmt.bases
    )


@frozen
class ClassCode:
    """What class layers add to the module: the flow's own decorator classes rewritten (by
    name), and the instance lines, in the order Metaflow makes them."""

    in_flow: Mapping[str, cst.ClassDef]
    instances: tuple[cst.BaseStatement, ...]


def instance_order(sites: list[StepSite]) -> list[tuple[StepSite, int, DecoratorUse]]:
    """Class uses in the order Metaflow initialises them when the flow loads: steps by name
    (`dir(flow)`), each step's wrappers innermost first."""
    out = []
    for site in sorted(sites, key=lambda s: s.name):
        for level in range(len(site.uses), 0, -1):
            use = site.uses[level - 1]
            if isinstance(use.definition, ClassDecoratorDef):
                out.append((site, level, use))
    return out


def instance_line(name: str, class_name: str, use: DecoratorUse) -> cst.BaseStatement:
    args = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in (use.arguments or ())]
    call = cst.Call(
        func=cst.Name(class_name),
        args=[
            a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            for a in args[:-1]
        ]
        + args[-1:],
    )
    return cst.SimpleStatementLine(
        body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=call)]
    )


def swap_bases(
    stmt: cst.ClassDef, original: Defined, resolver: Resolver, decorator_name: str | None
) -> cst.ClassDef:
    """The class with Metaflow's UserStepDecorator base replaced by the runtime base, a
    StepMutator base dropped with its mutate (applied by the expansion), and (for a class
    used as a decorator) its Metaflow name."""
    assert isinstance(original.stmt, cst.ClassDef)
    bases = []
    mutator = False
    for carried, written in zip(stmt.bases, original.stmt.bases):
        target = resolver.expression(original.namespace, written.value)
        if target == MetaflowName(USER_STEP_DECORATOR):
            bases.append(carried.with_changes(value=cst.Name(BASE)))
        elif target != MetaflowName(STEP_MUTATOR):
            bases.append(carried)
        else:
            mutator = True
    if bases:
        bases[-1] = bases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    body = list(stmt.body.body)  # type: ignore[union-attr]
    if mutator:
        body = [
            item
            for item in body
            if not (isinstance(item, cst.FunctionDef) and item.name.value in MUTATOR_METHODS)
        ] or [cst.SimpleStatementLine(body=[cst.Pass()])]
    if decorator_name is not None and "decorator_name" not in class_body_names(stmt):
        at = 1 if body and is_docstring(body[0]) else 0
        named = cst.parse_statement(f"decorator_name = {json.dumps(decorator_name)}")
        body.insert(
            at, named.with_changes(leading_lines=[cst.EmptyLine(indent=False)] if at else [])
        )
        if at + 1 < len(body) and not body[at + 1].leading_lines:
            body[at + 1] = body[at + 1].with_changes(leading_lines=[cst.EmptyLine(indent=False)])
    return stmt.with_changes(bases=bases, body=stmt.body.with_changes(body=body))


class ClassOutput:
    """The module-level part of class layers: the classes carried (bases swapped), one
    instance per use, in-flow classes rewritten in place."""

    def __init__(self, resolver: Resolver, carrier: Carrier, sites: Sequence[StepSite]) -> None:
        self.resolver = resolver
        self.carrier = carrier
        self.uses = instance_order(sites)
        self.class_names: dict[tuple[str, str], str] = {}
        self.chain: dict[
            int, tuple[Defined, bool]
        ] = {}  # id(class stmt) -> (it, used as a decorator)
        self.instances: dict[tuple[int, int], str] = {}
        flow_ns = carrier.flow_ns
        for _, _, use in self.uses:
            name = use.definition.name
            target = resolver.resolve(flow_ns, name) if name in flow_ns.bindings else None
            if (
                not use.definition.in_flow
                and isinstance(target, Defined)
                and target.stmt is use.definition.func
            ):
                carrier.alloc.taken.discard(
                    name
                )  # the flow's import of it is dropped: it keeps its name
        for _, _, use in self.uses:
            definition = use.definition
            assert isinstance(definition, ClassDecoratorDef)
            if definition.key in self.class_names:
                continue
            for i, part in enumerate(definition.chain):
                used = i == 0 or self.chain.get(id(part.stmt), (part, False))[1]
                self.chain[id(part.stmt)] = (part, used)
                if _is_step_mutator(part, resolver):
                    carrier.left_out[id(part.stmt)] = MUTATOR_METHODS
                self._output_name(part)
            self.class_names[definition.key] = self._output_name(definition.chain[0])

    def mutator_imports(self) -> frozenset[str]:
        """The flow's names for Metaflow's StepMutator when a class of the flow file drops
        that base (its mutate applied): the output no longer imports them."""
        flow_ns = self.carrier.flow_ns
        if not any(
            part.namespace is flow_ns and _is_step_mutator(part, self.resolver)
            for part, _ in self.chain.values()
        ):
            return frozenset()
        return frozenset(
            name
            for name in flow_ns.bindings
            if self.resolver.resolve(flow_ns, name) == MetaflowName(STEP_MUTATOR)
        )

    def _output_name(self, part: Defined) -> str:
        if part.namespace is self.carrier.flow_ns:
            return part.name
        return self.carrier.output_name(part.namespace, part.name)

    def claim_instances(self) -> None:
        for site, level, use in sorted(
            self.uses, key=lambda u: u[1]
        ):  # the outermost use gets the plain name
            self.instances[(id(site.func), level)] = self.carrier.alloc.claim(
                f"{site.name}_{snake(use.definition.name)}"
            )

    def instances_of(self, site: StepSite) -> dict[int, str]:
        return {
            level: name for (func, level), name in self.instances.items() if func == id(site.func)
        }

    def _swapped(self, stmt: cst.ClassDef, part: Defined, used: bool) -> cst.ClassDef:
        definition = ClassDecoratorDef(
            part.name, part.namespace, part.stmt, part.namespace is self.carrier.flow_ns, 0
        )  # type: ignore[arg-type]
        return swap_bases(stmt, part, self.resolver, definition.metaflow_name if used else None)

    def carried(
        self, defs: list[tuple[str, cst.BaseStatement]]
    ) -> list[tuple[str, cst.BaseStatement]]:
        if not self.uses:
            return defs
        from ...support.runtime_helpers import helper_definitions

        wanted = {}
        for part, used in self.chain.values():
            if part.namespace is not self.carrier.flow_ns:
                wanted[(part.namespace.source.display, self._output_name(part))] = (part, used)
        out = []
        for origin, stmt in defs:
            found = (
                wanted.get((origin, stmt.name.value)) if isinstance(stmt, cst.ClassDef) else None
            )
            new = self._swapped(stmt, *found) if found else stmt  # type: ignore[arg-type]
            out.append((origin, new))
        base = helper_definitions({BASE})
        return [("runtime/classes.py, in place of Metaflow's UserStepDecorator", base[0]), *out]

    def code(self) -> ClassCode:
        in_flow = {
            part.stmt.name.value: self._swapped(part.stmt, part, used)  # type: ignore[attr-defined]
            for part, used in self.chain.values()
            if part.namespace is self.carrier.flow_ns
        }
        lines = [
            instance_line(
                self.instances[(id(site.func), level)], self.class_names[use.definition.key], use
            )
            for site, level, use in self.uses
        ]
        return ClassCode(in_flow, tuple(lines))
