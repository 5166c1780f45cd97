"""Base classes with custom decorators, flattened statically into the flow class.

A flow may inherit its steps from a base class in another module. When that base (or a
class of its chain) writes custom decorators on its steps, or its module imports what only
Metaflow 2.16+ has, the compiled flow cannot import it: it would need Metaflow 2.16+, and
its steps would not be compiled. Such a flow needs no Metaflow to be evaluated (no mutator,
no config: `detect` found no trigger), so it is flattened by reading files only, without
a child process or an import: the base classes' members are carried into the flow class
(`flatten.Flattener`, as after an expansion), with their decorators as written, and the
passes that follow compile the carried steps like the flow's own. The custom decorators
they use are imported for those passes, which inline them and drop the imports. A base
class written with Metaflow alone stays imported.
"""

from __future__ import annotations

import libcst as cst

from ...support.diagnostics import NOT_IMPORTABLE, CompileError, Diagnostic, Location
from ...support.locate import Locator
from ...support.namespace import MetaflowName, Namespace, Resolver
from ...support.source import SourceFile, is_docstring
from .detect import Detector, callee
from .flatten import Chain, Flattener, assigned
from .imports import AddedImports, fix_imports, metaflow_local


def flatten_bases(
    source: SourceFile, resolver: Resolver, flow_ns: Namespace, locator: Locator
) -> tuple[str, list[str]]:
    """The flow module with the base classes that cannot stay imported flattened into the
    classes deriving from them, and the header lines saying which."""
    detector = Detector(resolver, flow_ns, locator)
    added = AddedImports()

    def metaflow(name: str) -> str:
        return metaflow_local(name, flow_ns, resolver, added)

    flattener = Flattener(resolver, flow_ns, detector, metaflow, added)
    diagnostics: list[Diagnostic] = []
    carried: list[str] = []
    body: list[cst.BaseStatement] = []
    for stmt in source.module.body:
        if isinstance(stmt, cst.ClassDef):
            chain, bases = flattener.bases(stmt, lambda t: detector.custom_base(t) is not None)
            if chain:
                flattener.imports(chain, keep_decorators=True)
                diagnostics += flattener.report(locator, stmt)
                inherited, duplicates = _flow_decorators(stmt, chain, flattener, locator)
                diagnostics += duplicates
                stmt = stmt.with_changes(
                    decorators=[*stmt.decorators, *inherited],
                    bases=bases,
                    body=stmt.body.with_changes(body=_class_body(stmt, chain, flattener)),
                )
                names = ", ".join(f"{cls.name.value} ({ns.source.display})" for ns, cls in chain)
                carried.append(f"{stmt.name.value} carries the members of {names}")
        body.append(stmt)
    if diagnostics:
        raise CompileError(diagnostics)
    module = fix_imports(source.module.with_changes(body=body), flow_ns, resolver, detector, added)
    header = [f"Base classes flattened (not imported): {line}." for line in carried]
    return module.code, header


#: Metaflow's flow decorators that may be written more than once (`allow_multiple`, 2.19.39).
MULTIPLE = frozenset({"exit_hook", "airflow_external_task_sensor", "airflow_s3_key_sensor"})


def _flow_decorators(
    cls: cst.ClassDef, chain: Chain, flattener: Flattener, locator: Locator
) -> tuple[list[cst.Decorator], list[Diagnostic]]:
    """Metaflow's flow decorators (`@project`, ...) written on the chain's classes, which the
    class inherits natively, as Metaflow's `FlowSpecMeta` merges them (measured on 2.16.0 and
    2.19.39): each kind the class does not write is inherited. A kind written on two classes
    of the hierarchy (the class and a base, or two bases) makes Metaflow refuse the flow
    as it is imported (`DuplicateFlowDecoratorException`): a located DF504, as an expansion
    reports it. A kind that may be written more than once (`@exit_hook`) is the class's own
    when it writes it (2.19 replaces the inherited list by the class's), else every base's."""
    resolver, flow_ns = flattener.resolver, flattener.flow_ns
    first: dict[str, tuple[Location, str]] = {}  # kind -> where it was first written
    for dec in cls.decorators:
        kind = _metaflow_kind(resolver, flow_ns, dec)
        if kind is not None:
            first.setdefault(kind, (locator.locate(flow_ns.source, dec.decorator), cls.name.value))
    own = set(first)
    out: list[cst.Decorator] = []
    several: list[list[cst.Decorator]] = []  # per class of the chain, most derived first
    diagnostics: list[Diagnostic] = []
    for ns, base in chain:  # most derived first
        several.append([])
        for dec in base.decorators:
            kind = _metaflow_kind(resolver, ns, dec)
            if kind is None or (kind in MULTIPLE and kind in own):
                continue
            if kind in MULTIPLE:
                several[-1].append(flattener.rename(ns, dec))
                continue
            where = locator.locate(ns.source, dec.decorator)
            if kind in first:
                derived, name = first[kind]
                diagnostics.append(
                    NOT_IMPORTABLE(
                        "the flow cannot be imported: DuplicateFlowDecoratorException: "
                        f"Duplicate decorators: Flow already has a decorator '{kind}'. "
                        "You can specify each decorator only once.",
                        derived,
                        ((where, f"@{kind} on {base.name.value}, which {name} inherits"),),
                    )
                )
                continue
            first[kind] = (where, base.name.value)
            out.append(flattener.rename(ns, dec))
    # Several of a kind, in the order Metaflow lists them: the more derived class's first,
    # each class's in the order they apply (bottom up); so the more basic class's written
    # above.
    for decs in reversed(several):
        out.extend(decs)
    return out, diagnostics


def _metaflow_kind(resolver: Resolver, ns: Namespace, dec: cst.Decorator) -> str | None:
    """The name under which Metaflow exports the decorator (through any alias), else None."""
    target = resolver.expression(ns, callee(dec))
    return target.name if isinstance(target, MetaflowName) else None


def _class_body(cls: cst.ClassDef, chain: Chain, flattener: Flattener) -> list[cst.BaseStatement]:
    """The class's docstring, the carried members, then its own members, set apart."""
    own = list(cls.body.body)
    docstring = [own.pop(0)] if own and is_docstring(own[0]) else []
    carried = flattener.members(assigned(cls), chain)
    if carried and docstring:
        first = carried[0]
        carried[0] = first.with_changes(
            leading_lines=[cst.EmptyLine(indent=False), *first.leading_lines]
        )
    if carried and own and not own[0].leading_lines:
        own[0] = own[0].with_changes(leading_lines=[cst.EmptyLine(indent=False)])
    return [*docstring, *carried, *own]
