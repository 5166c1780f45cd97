"""Pass 3: bake `--with` specs into the steps, as `run --with` would attach them.

A custom decorator from `--with mod.deco:k=v` becomes the outermost custom decorator of
every step that does not already use it (Metaflow appends it after the static ones, and runs
the last appended first). A Metaflow built-in (`--with retry:times=2`) is written as a
static decorator on every step that lacks it, so the compiled flow deploys with it.
"""

from __future__ import annotations

from dataclasses import replace

import libcst as cst

from ..support.code import literal_source
from ..support.diagnostics import (
    MALFORMED_SPEC,
    WITH_NOT_A_DECORATOR,
    WITH_NOT_FOUND,
    WITH_UNKNOWN_NAME,
    CompileError,
    Diagnostic,
    Location,
)
from ..support.namespace import Defined, MetaflowName, Namespace, Resolver, Unresolved
from ..support.records import frozen
from ..support.withspec import SpecError, WithSpec, parse_spec
from .discover import (
    DecoratorUse,
    StepFinder,
    StepSite,
    decorator_callee,
    decorator_generator,
    report_unresolved,
)


@frozen
class BuiltinAttach:
    """A Metaflow decorator to write on steps lacking it: `@<local>(k=v, ...)`."""

    spec: WithSpec
    local_name: str  # the name the output uses for it
    needs_import: bool


def _arguments(spec: WithSpec) -> tuple[cst.Arg, ...] | None:
    if not spec.has_attributes:
        return None
    return tuple(
        cst.Arg(
            keyword=cst.Name(k),
            value=cst.parse_expression(literal_source(v)),
            equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
        )
        for k, v in spec.attributes.items()
    )


class WithAttacher:
    def __init__(
        self, resolver: Resolver, flow_ns: Namespace, finder: StepFinder, where: Location
    ) -> None:
        self.resolver = resolver
        self.flow_ns = flow_ns
        self.finder = finder
        self.where = where

    def attach(
        self, specs: tuple[str, ...], sites: list[StepSite]
    ) -> tuple[list[StepSite], list[BuiltinAttach]]:
        diagnostics: list[Diagnostic] = []
        customs: list[DecoratorUse] = []
        builtins: list[BuiltinAttach] = []
        for raw in specs:
            try:
                spec = parse_spec(raw)
            except SpecError as err:
                diagnostics.append(MALFORMED_SPEC(str(err), self.where))
                continue
            if spec.is_builtin:
                builtins.append(self._builtin(spec))
                continue
            use = self._custom(spec, sites, diagnostics)
            if use is not None:
                customs.append(use)
        if diagnostics:
            raise CompileError(diagnostics)
        out = []
        for site in sites:
            uses = list(site.uses)
            for use in customs:  # each later spec wraps the ones before it
                if all(u.definition.key != use.definition.key for u in uses):
                    uses.insert(0, use)
            out.append(replace(site, uses=tuple(uses)))
        return out, builtins

    def _builtin(self, spec: WithSpec) -> BuiltinAttach:
        bound = (
            self.resolver.resolve(self.flow_ns, spec.name)
            if spec.name in self.flow_ns.bindings
            else None
        )
        if bound == MetaflowName(spec.name):
            return BuiltinAttach(spec, spec.name, False)
        if bound is None:
            return BuiltinAttach(spec, spec.name, True)
        return BuiltinAttach(spec, f"metaflow_{spec.name}", True)

    def _custom(
        self, spec: WithSpec, sites: list[StepSite], diagnostics: list[Diagnostic]
    ) -> DecoratorUse | None:
        if "." in spec.name:
            module, _, attr = spec.name.rpartition(".")
            target = self.resolver.attribute(self.resolver.module_object(module), attr)
        else:
            static = [u for s in sites for u in s.uses if u.definition.name == spec.name]
            if not static:
                diagnostics.append(
                    WITH_UNKNOWN_NAME(
                        f"--with '{spec.raw}': unknown decorator '{spec.name}' "
                        "(not a Metaflow step decorator; name a custom one as module.name)",
                        self.where,
                    )
                )
                return None
            return DecoratorUse(
                static[0].definition,
                cst.Decorator(cst.parse_expression(spec.name)),
                _arguments(spec),
                spec.name,
                True,
            )
        if isinstance(target, Unresolved):
            where = f" (searched: {self.resolver.finder.searched})" if target.missing_module else ""
            problem = (WITH_NOT_FOUND, f"--with '{spec.raw}': {target.reason}{where}")
            use = (self.where, f"--with '{spec.raw}' given here")
            report_unresolved(diagnostics, self.finder.locator, problem, target, use)
            return None
        if isinstance(target, MetaflowName):
            diagnostics.append(
                WITH_UNKNOWN_NAME(
                    f"--with '{spec.raw}': write Metaflow's decorators by their short name",
                    self.where,
                )
            )
            return None
        generator = decorator_generator(self.resolver, target)
        if (
            generator is None
            and isinstance(target, Defined)
            and self.finder._is_decorator_class(target)
        ):
            definition = self.finder.class_definition(target)
            node = cst.Decorator(cst.parse_expression(spec.name))
            return DecoratorUse(definition, node, _arguments(spec), spec.name, True)
        if generator is None:
            diagnostics.append(
                WITH_NOT_A_DECORATOR(
                    f"--with '{spec.raw}': '{spec.name}' is not a @user_step_decorator generator",
                    self.where,
                )
            )
            return None
        assert isinstance(generator.stmt, cst.FunctionDef)
        definition = self.finder.definition(generator, generator.stmt)
        return DecoratorUse(
            definition,
            cst.Decorator(cst.parse_expression(spec.name)),
            _arguments(spec),
            spec.name,
            True,
        )


def add_builtins(
    func: cst.FunctionDef, builtins: list[BuiltinAttach], resolver: Resolver, flow_ns: Namespace
) -> cst.FunctionDef:
    """Writes each built-in decorator the step lacks just above its `@step`."""
    present = set()
    for dec in func.decorators:
        callee, _ = decorator_callee(dec)
        target = resolver.expression(flow_ns, callee)
        if isinstance(target, MetaflowName):
            present.add(target.name)
    missing = [b for b in builtins if b.spec.name not in present]
    if not missing:
        return func
    decorators = list(func.decorators)
    at = next(
        (
            i
            for i, d in enumerate(decorators)
            if resolver.expression(flow_ns, decorator_callee(d)[0]) == MetaflowName("step")
        ),
        len(decorators),
    )
    new = []
    for b in missing:
        args = _arguments(b.spec)
        expr: cst.BaseExpression = cst.Name(b.local_name)
        if args:
            expr = cst.Call(
                func=expr,
                args=[
                    a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                    for a in args[:-1]
                ]
                + [args[-1]],
            )
        new.append(cst.Decorator(decorator=expr))
    decorators[at:at] = new
    return func.with_changes(decorators=decorators)
