"""Pass 4: analyse each decorator generator once, then check how each use calls it.

The analysis of one generator runs in five steps, each in its own module and each
returning its own frozen facts, keyed by the nodes of the analysed copy:

1. `signature`: its parameters (3 or 4);
2. `yields`: its yield statements (normalised to a line each), and what each says;
3. `flow`: which yields may be a second one, whether it may finish without one;
4. `names`: its own names and its module's;
5. `guards`: the `try`/`with` statements around its yields, and whether code runs first;

and `inspect_uses`: what it asks `inspect` about a step (its source is the original's).

`GeneratorInfo` gathers them. Then `arguments` checks the uses: the arguments written on a
step must be keywords the compiled step can build its `attributes` dict from.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import field
from types import MappingProxyType

import libcst as cst

from ...support.diagnostics import CompileError, Diagnostic, Location
from ...support.locate import LazyLocation, Locator, locate_in_copy
from ...support.memo import NodeMemo
from ...support.namespace import Namespace, Resolver
from ...support.records import frozen
from ...support.scopes import ResolvedScopes, resolve_scopes, scopes_of
from ...support.source import SourceFile
from ..discover import DecoratorDef, StepSite
from ..discover.classes import ClassDecoratorDef
from .arguments import check_arguments
from .classes import ClassAnalyzer, ClassInfo
from .flow import FlowFacts, follow_flow
from .guards import GuardFacts, find_guards
from .inspect_uses import InspectUse, find_inspect_uses
from .names import NameFacts, read_names
from .signature import Signature, read_signature
from .yields import YieldKind, YieldSite, find_yields, what_it_says, yield_target

__all__ = [
    "Analyses",
    "ClassInfo",
    "GeneratorAnalyzer",
    "GeneratorInfo",
    "YieldKind",
    "YieldSite",
    "analyze_uses",
]


@frozen
class GeneratorInfo:
    """Everything the later passes need to know about one decorator generator."""

    definition: DecoratorDef = field(repr=False)
    func: cst.FunctionDef = field(repr=False)  # the normalised copy the facts refer to
    signature: Signature
    sites: tuple[YieldSite, ...]  # its yields, in source order
    flow: FlowFacts
    names: NameFacts
    guards: GuardFacts
    has_return: bool  # a `return` of its own (after its yield)
    global_statements: frozenset[cst.Global] = field(repr=False)  # its own `global`s
    inspect_uses: tuple[InspectUse, ...] = ()  # inspect asked about a step

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def params(self) -> tuple[str, ...]:
        return self.signature.params

    @property
    def yields_to_body(self) -> list[YieldSite]:
        """The yields that may run the step (always, or as decided at run time); not one
        reached only as a second yield, where Metaflow fails the task instead."""
        return [
            s
            for s in self.sites
            if s.kind in (YieldKind.RUN, YieldKind.DYNAMIC) and not s.surely_second
        ]

    @property
    def yields_again(self) -> bool:
        """Whether the decorator may reach a second yield at run time."""
        return any(s.maybe_second for s in self.sites)

    @property
    def counts_yields(self) -> bool:
        """Whether the step must count the decorator's yields: one may be reached with none
        before it or with one (checked at run time), or none at all."""
        uncertain = any(s.maybe_second and not s.surely_second for s in self.sites)
        return self.flow.may_not_yield or uncertain

    @property
    def miscounts(self) -> bool:
        """Whether the decorator may reach no yield or a second one at run time (Metaflow
        then fails the task outside every decorator)."""
        return self.flow.may_not_yield or self.yields_again

    @property
    def fails_past_outer(self) -> bool:
        """Whether code of this decorator may fail where the decorators above it must not
        see it: its before-code, or a yield count going wrong."""
        return self.guards.has_pre_code or self.miscounts

    @functools.cached_property
    def unused_params(self) -> frozenset[str]:
        """Parameters the decorator never reads: nothing is bound for them."""
        param_nodes = {p.name for p in self.func.params.params}
        read = {n for node, n in self.names.local_refs.items() if node not in param_nodes}
        return frozenset(p for p in self.params if p not in read)


#: The analyses of a compile, by decorator definition (`DecoratorDef.key`).
Analyses = Mapping[tuple[str, str], GeneratorInfo | ClassInfo]

_ANALYSES: NodeMemo[GeneratorInfo] = NodeMemo()


class GeneratorAnalyzer:
    """Analyses each decorator definition once; raises CompileError with located
    diagnostics."""

    def __init__(
        self, resolver: Resolver, locator: Locator, flow_module: cst.Module | None = None
    ) -> None:
        self.resolver = resolver
        self.locator = locator
        self.flow_module = flow_module

    def analyze(self, definition: DecoratorDef) -> GeneratorInfo:
        """Analyses are shared by every compile in the process while the module is unchanged
        (a batch analyses each decorator once)."""
        return _ANALYSES.get(definition.func, definition.name, lambda: self._analyze(definition))

    def _scopes(self, definition: DecoratorDef, func: cst.FunctionDef) -> ResolvedScopes:
        """The scopes of the decorator module, shared with carrying its helpers; a decorator
        written in the flow file (which may be large) or rewritten here gets its own."""
        module = definition.namespace.source.module
        if (
            func is definition.func
            and module is not self.flow_module
            and any(s is func for s in module.body)
        ):
            return resolve_scopes(module)
        return scopes_of(cst.Module(body=[func]))

    def _analyze(self, definition: DecoratorDef) -> GeneratorInfo:
        original = definition.func
        source = definition.namespace.source
        where = LazyLocation(self.locator, source, original)
        label = f"@{definition.name}"
        signature = read_signature(original, label, where)

        def locate(copy: cst.FunctionDef, node: cst.CSTNode) -> Location:
            return locate_in_copy(self.locator, source, original, copy, node)

        found = find_yields(original, label, where, locate)
        func = found.func
        stmts = [stmt for stmt, _ in found.statements]
        flow = follow_flow(func, found.statements, label, where, lambda y: locate(func, y))
        resolved = self._scopes(definition, func)
        ns = definition.namespace
        names = read_names(func, resolved, ns, found.declared_globals)
        sites = tuple(
            YieldSite(
                index,
                stmt,
                self._kind(y.value, names, ns),
                y.value,
                yield_target(stmt),
                maybe_second=stmt in flow.maybe_second,
                surely_second=stmt in flow.surely_second,
            )
            for index, (stmt, y) in enumerate(found.statements)
        )
        guards = find_guards(func, stmts)
        inspect_uses = find_inspect_uses(
            func,
            signature.params,
            names.local_refs,
            names.global_refs,
            names.reassigned,
            ns,
            lambda node: locate(func, node),
        )
        return GeneratorInfo(
            definition=definition,
            func=func,
            signature=signature,
            sites=sites,
            flow=flow,
            names=names,
            guards=guards,
            has_return=found.has_return,
            global_statements=found.global_statements,
            inspect_uses=inspect_uses,
        )

    def _kind(self, value: cst.BaseExpression | None, names: NameFacts, ns: Namespace) -> YieldKind:
        return what_it_says(value, names.local_names, names.local_functions, ns, self.resolver)


def analyze_uses(
    sites: Sequence[StepSite],
    analyzer: GeneratorAnalyzer,
    locator: Locator,
    flow: SourceFile,
    flow_ns: Namespace,
    mutators_applied: bool = False,
) -> Analyses:
    """Every decorator used in `sites`, analysed once, and every use checked; a problem in a
    decorator's definition gets a note naming a use of it in the flow. `mutators_applied`:
    the flow was expanded (pass 1, expand), its mutators' work written out as decorator lines."""
    infos: dict[tuple[str, str], GeneratorInfo | ClassInfo] = {}
    diagnostics: list[Diagnostic] = []
    failed: set[tuple[str, str]] = set()
    for site in sites:
        for use in site.uses:
            key = use.definition.key
            if key in infos or key in failed:
                continue
            try:
                if isinstance(use.definition, ClassDecoratorDef):
                    infos[key] = ClassAnalyzer(
                        analyzer.resolver, locator, mutators_applied
                    ).analyze(use.definition)
                else:
                    infos[key] = analyzer.analyze(use.definition)
            except CompileError as err:
                failed.add(key)
                used_at = locator.locate(flow, use.node)
                note = (used_at, f"@{use.written} used here")
                diagnostics.extend(
                    Diagnostic(d.code, d.message, d.location, (*d.notes, note))
                    for d in err.diagnostics
                )
    if diagnostics:
        raise CompileError(diagnostics)
    check_arguments(sites, infos, locator, flow, flow_ns)
    return MappingProxyType(infos)
