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

from ...support.diagnostics import CompileError, Diagnostic
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
                stmt = stmt.with_changes(
                    decorators=[*stmt.decorators, *_flow_decorators(stmt, chain, resolver)],
                    bases=bases,
                    body=stmt.body.with_changes(body=_class_body(stmt, chain, flattener)),
                )
                names = ", ".join(
                    f"{cls.name.value} ({ns.source.display})" for ns, cls in chain
                )
                carried.append(f"{stmt.name.value} carries the members of {names}")
        body.append(stmt)
    if diagnostics:
        raise CompileError(diagnostics)
    module = fix_imports(source.module.with_changes(body=body), flow_ns, resolver, detector, added)
    header = [
        f"Base classes flattened (not imported): {line}." for line in carried
    ]
    return module.code, header


def _flow_decorators(
    cls: cst.ClassDef, chain: Chain, resolver: Resolver
) -> list[cst.Decorator]:
    """Metaflow's flow decorators written on the chain's classes (`@project`, ...) and not
    on the class itself: natively the class inherits them."""
    written = {_decorator_name(dec) for dec in cls.decorators}
    out: list[cst.Decorator] = []
    for ns, base in chain:
        for dec in base.decorators:
            target = resolver.expression(ns, callee(dec))
            name = _decorator_name(dec)
            if isinstance(target, MetaflowName) and name not in written:
                written.add(name)
                out.append(dec)
    return out


def _decorator_name(dec: cst.Decorator) -> str:
    node = callee(dec)
    return node.attr.value if isinstance(node, cst.Attribute) else getattr(node, "value", "")


def _class_body(
    cls: cst.ClassDef, chain: Chain, flattener: Flattener
) -> list[cst.BaseStatement]:
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
