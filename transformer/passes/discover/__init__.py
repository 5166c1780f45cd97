"""Pass 2: find the steps of the flow and the custom decorators each one carries.

For every `@step` method in the flow module, each decorator expression is resolved (by
reading modules, never importing them). Those that lead to a generator decorated with
`@user_step_decorator` become `DecoratorUse`s, outermost first; Metaflow's own decorators
and anything else are left exactly as written.
"""

from __future__ import annotations

from dataclasses import field, replace

import libcst as cst

from ...support.diagnostics import (
    BUILT_AT_RUN_TIME,
    CLASS_OR_MUTATOR,
    MODULE_NOT_FOUND,
    UNRESOLVED_DECORATOR,
    Code,
    CompileError,
    Diagnostic,
    Location,
)
from ...support.generators import (
    applied_by_call,
    decorator_callee,
    decorator_generator,
    is_user_step_decorator,
)
from ...support.locate import Locator
from ...support.namespace import (
    Defined,
    MetaflowName,
    ModuleObject,
    Namespace,
    Resolver,
    Target,
    Unresolved,
    dotted_name,
)
from ...support.records import frozen

MUTATOR_BASES = {"UserStepDecorator", "StepMutator", "FlowMutator"}


@frozen
class DecoratorDef:
    """A `@user_step_decorator` generator and the module it lives in."""

    name: str
    namespace: Namespace = field(compare=False, repr=False)
    func: cst.FunctionDef = field(compare=False, repr=False)
    in_flow: bool
    line: int

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.namespace.source.path), self.name)

    @property
    def metaflow_name(self) -> str:
        """How Metaflow names the decorator: `<module of the function>.<function>`."""
        ref = self.namespace.ref
        module = "__main__" if self.in_flow or ref is None else ref.name
        return f"{module}.{self.name}"

    @property
    def origin(self) -> str:
        display = self.namespace.source.display
        return f"{display.rsplit('/', 1)[-1] if self.in_flow else display}:{self.line}"


@frozen
class DecoratorUse:
    """One use of a custom decorator on a step: `@deco` (arguments None) or `@deco(k=v)`."""

    definition: DecoratorDef
    node: cst.Decorator = field(compare=False, repr=False)
    arguments: tuple[cst.Arg, ...] | None = field(compare=False)
    written: str  # how the use is written, e.g. "mod.deco"
    via_with: bool = False  # attached by a `--with` spec rather than written on the step


@frozen
class StepSite:
    """A `@step` method and the custom decorators on it, outermost first."""

    class_name: str
    func: cst.FunctionDef = field(compare=False, repr=False)
    uses: tuple[DecoratorUse, ...]

    @property
    def name(self) -> str:
        return self.func.name.value

    @property
    def params(self) -> list[str]:
        return [p.name.value for p in self.func.params.params]

    @property
    def self_name(self) -> str:
        params = self.params
        return params[0] if params else "self"

    @property
    def inputs_name(self) -> str | None:
        params = self.params
        return params[1] if len(params) > 1 else None


def report_unresolved(
    diagnostics: list[Diagnostic],
    locator: Locator,
    problem: tuple[Code, str],
    target: Unresolved,
    use: tuple[Location, str],
) -> None:
    """Add (code, message) for `target` at the import to blame, as mypy reports it, with a
    note naming the use (one diagnostic per import, a note per use); without an import to
    blame, at the use."""
    code, message = problem
    if target.at is None:
        diagnostics.append(code(message, use[0]))
        return
    at = locator.locate(*target.at)
    for i, known in enumerate(diagnostics):
        if (known.code, known.message, known.location) == (code.code, message, at):
            diagnostics[i] = replace(known, notes=(*known.notes, use))
            return
    diagnostics.append(code(message, at, (use,)))


def in_flow_decorators(resolver: Resolver, flow_ns: Namespace) -> dict[str, cst.BaseStatement]:
    """Custom decorators made in the flow file, by name: their statements are left out of
    the output (a `def` under @user_step_decorator, or `deco = user_step_decorator(gen)`,
    whose generator stays as the plain function it is)."""
    found: dict[str, cst.BaseStatement] = {}
    for stmt in flow_ns.source.module.body:
        if isinstance(stmt, cst.FunctionDef) and is_user_step_decorator(resolver, flow_ns, stmt):
            found[stmt.name.value] = stmt
        elif (applied := applied_by_call(resolver, flow_ns, stmt)) is not None:
            found[applied[0]] = stmt
    return found


class StepFinder:
    """Finds the steps and their custom decorator uses; collects diagnostics as it goes."""

    def __init__(self, resolver: Resolver, flow_ns: Namespace, locator: Locator) -> None:
        self.resolver = resolver
        self.flow_ns = flow_ns
        self.locator = locator
        self.diagnostics: list[Diagnostic] = []
        self._defs: dict[tuple[str, str], DecoratorDef] = {}
        self._reported: set[cst.Decorator] = set()

    def find(self) -> list[StepSite]:
        sites: list[StepSite] = []
        for stmt in self.flow_ns.source.module.body:
            if isinstance(stmt, cst.ClassDef):
                self._check_class_decorators(stmt)
                for item in stmt.body.body:
                    if isinstance(item, cst.FunctionDef) and self._is_step(item):
                        sites.append(StepSite(stmt.name.value, item, tuple(self._uses(item))))
        if self.diagnostics:
            raise CompileError(self.diagnostics)
        return sites

    def _check_class_decorators(self, cls: cst.ClassDef) -> None:
        """A FlowMutator on the flow class may add decorators at run time: not compilable yet."""
        for dec in cls.decorators:
            callee, _ = decorator_callee(dec)
            target = self.resolver.expression(self.flow_ns, callee)
            if (
                isinstance(target, Defined)
                and isinstance(target.stmt, cst.ClassDef)
                and self._is_mutator_class(target)
            ):
                self.diagnostics.append(
                    CLASS_OR_MUTATOR(
                        f"@{dotted_name(callee)} is a flow mutator; it may add decorators at run "
                        "time, which decoflow cannot see statically",
                        self.locator.locate(self.flow_ns.source, dec),
                        (
                            (
                                self.locator.locate(target.namespace.source, target.stmt),
                                "defined here",
                            ),
                        ),
                    )
                )

    def _is_step(self, func: cst.FunctionDef) -> bool:
        for dec in func.decorators:
            callee, _ = decorator_callee(dec)
            if self._resolve(callee, dec) == MetaflowName("step"):
                return True
        return False

    def _resolve(self, callee: cst.BaseExpression, dec: cst.Decorator) -> Target:
        """Resolve a decorator; a module on the way that cannot be read or parsed becomes a
        diagnostic (once), with a note naming the use that needed it."""
        try:
            return self.resolver.expression(self.flow_ns, callee)
        except CompileError as err:
            if dec not in self._reported:
                self._reported.add(dec)
                where = self.locator.locate(self.flow_ns.source, dec)
                self.diagnostics.extend(
                    Diagnostic(
                        d.code,
                        d.message,
                        d.location,
                        (*d.notes, (where, f"needed for @{dotted_name(callee)} here")),
                    )
                    for d in err.diagnostics
                )
            return Unresolved("unreadable module")

    def _uses(self, func: cst.FunctionDef) -> list[DecoratorUse]:
        uses: list[DecoratorUse] = []
        for dec in func.decorators:
            callee, args = decorator_callee(dec)
            written = dotted_name(callee)
            if written is None:
                continue  # an arbitrary expression: not something we can resolve; keep it

            def where(dec: cst.Decorator = dec):  # positions are computed only for diagnostics
                return self.locator.locate(self.flow_ns.source, dec)

            target = self._resolve(callee, dec)
            if dec in self._reported:
                continue
            if isinstance(target, (MetaflowName, ModuleObject)):
                continue

            if isinstance(target, Unresolved):
                if target.missing_module:
                    code = MODULE_NOT_FOUND
                    message = (
                        f"cannot find module '{target.missing_module}' for decorator "
                        f"@{written} (searched: {self.resolver.finder.searched})"
                    )
                else:
                    code = UNRESOLVED_DECORATOR
                    message = f"cannot resolve decorator @{written}: {target.reason}"
                use = (where(), f"@{written} used here")
                report_unresolved(self.diagnostics, self.locator, (code, message), target, use)
                continue
            assert isinstance(target, Defined)
            stmt = target.stmt
            generator = decorator_generator(self.resolver, target)
            if generator is not None:
                assert isinstance(generator.stmt, cst.FunctionDef)
                uses.append(
                    DecoratorUse(self._definition(generator, generator.stmt), dec, args, written)
                )
                continue
            if isinstance(stmt, cst.ClassDef) and self._is_decorator_class(target):
                uses.append(DecoratorUse(self.class_definition(target), dec, args, written))
                continue
            if isinstance(stmt, cst.ClassDef) and self._is_mutator_class(target):
                self.diagnostics.append(
                    CLASS_OR_MUTATOR(
                        f"@{written} is a step mutator; it may add decorators when the flow loads, "
                        "which decoflow cannot see statically",
                        where(),
                        ((self.locator.locate(target.namespace.source, stmt), "defined here"),),
                    )
                )
                continue
            if not isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                self.diagnostics.append(
                    BUILT_AT_RUN_TIME(
                        f"@{written} is built at run time (not a `def`); decoflow can only inline "
                        "decorators defined with @user_step_decorator on a generator function",
                        where(),
                        ((self.locator.locate(target.namespace.source, stmt), "assigned here"),),
                    )
                )
                continue
            # a plain Python decorator of the user's: kept as written
        return uses

    def _is_mutator_class(self, target: Defined) -> bool:
        assert isinstance(target.stmt, cst.ClassDef)
        for base in target.stmt.bases:
            resolved = self.resolver.expression(target.namespace, base.value)
            if isinstance(resolved, MetaflowName) and resolved.name in MUTATOR_BASES:
                return True
        return False

    def _is_decorator_class(self, target: Defined) -> bool:
        from .classes import is_decorator_class  # class-based decorators (discover/classes)

        return is_decorator_class(self.resolver, target)

    def class_definition(self, target: Defined) -> DecoratorDef:
        """The (shared) definition of a class-based decorator."""
        from .classes import class_definition

        key = (str(target.namespace.source.path), target.name)
        if key not in self._defs:
            self._defs[key] = class_definition(target, self.flow_ns, self.resolver)
        return self._defs[key]

    def definition(self, target: Defined, func: cst.FunctionDef) -> DecoratorDef:
        return self._definition(target, func)

    def _definition(self, target: Defined, func: cst.FunctionDef) -> DecoratorDef:
        key = (str(target.namespace.source.path), func.name.value)
        if key not in self._defs:
            source = target.namespace.source
            self._defs[key] = DecoratorDef(
                name=func.name.value,
                namespace=target.namespace,
                func=func,
                in_flow=target.namespace is self.flow_ns,
                line=source.def_line(func.name.value),
            )
        return self._defs[key]
