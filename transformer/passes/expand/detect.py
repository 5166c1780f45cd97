"""Which flows need expansion: found by reading files, never by importing them.

A flow needs Metaflow to evaluate it (a child process, `expansion/`) when Metaflow's own
code decides its final decorators: a FlowMutator or StepMutator on the flow class, on a
base class or on a step, or a `Config`/`config_expr` read in a custom decorator's
arguments, or a base class in another module that has any of these. Every other flow is
compiled statically, without starting a process or importing Metaflow: that is why this
check reads source and only follows names through modules read from disk.

`find_trigger` returns the first such use (`Trigger`), which diagnostics of the expansion
then point at; `Detector` also answers the writer's questions (is this class a mutator?).
"""

from __future__ import annotations

import libcst as cst

from ...support.diagnostics import MODULE_NOT_FOUND, CompileError, Location
from ...support.generators import decorator_generator
from ...support.locate import LazyLocation, Locator
from ...support.namespace import (
    METAFLOW,
    Defined,
    ImportFrom,
    MetaflowName,
    ModuleObject,
    Namespace,
    Resolver,
    Unresolved,
    dotted_name,
)
from ...support.newer_metaflow import NEWER_METAFLOW
from ...support.records import frozen

#: Metaflow classes whose subclasses change a step's decorators when Metaflow builds the flow.
MUTATOR_BASES = {"FlowMutator", "StepMutator", "UserStepDecorator"}
#: What makes a flow need expansion: a mutator (a class-based UserStepDecorator alone is
#: compiled statically; one that is also a StepMutator is expanded: its mutate applied,
#: it is then written as a decorator line, which the class path inlines).
TRIGGER_BASES = {"FlowMutator", "StepMutator"}
#: How a class attribute is declared a Config.
CONFIG_CALLS = ("Config", "metaflow.Config")


@frozen
class Trigger:
    """Why a flow needs expansion: the first use found (a mutator, a config use, a base).
    `location` is resolved only when a diagnostic is reported (it pickles as a Location)."""

    location: Location | LazyLocation
    name: str


def callee(dec: cst.Decorator) -> cst.BaseExpression:
    """The decorator's name expression: `x` in `@x` and in `@x(...)`."""
    return dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator


def call_args(dec: cst.Decorator) -> tuple[cst.Arg, ...]:
    """The arguments written in `@x(...)`; none for `@x`."""
    return tuple(dec.decorator.args) if isinstance(dec.decorator, cst.Call) else ()


def is_generator(resolver: Resolver, target: Defined) -> bool:
    """A custom decorator written as a generator (its work is inlined, never imported)."""
    return decorator_generator(resolver, target) is not None


class Detector:
    """Static detection; every result is cached per class statement."""

    def __init__(self, resolver: Resolver, flow_ns: Namespace, locator: Locator) -> None:
        self.resolver = resolver
        self.flow_ns = flow_ns
        self.locator = locator
        self._mutator: dict[tuple[int, frozenset[str]], bool] = {}

    def _resolve(self, ns: Namespace, expr: cst.BaseExpression) -> object:
        """What `expr` refers to; a module that cannot be read counts as nothing here (the
        passes that follow report it, with the use that needed it)."""
        try:
            return self.resolver.expression(ns, expr)
        except CompileError:
            return None

    def is_mutator_class(
        self, target: object, depth: int = 0, bases: frozenset[str] = frozenset(MUTATOR_BASES)
    ) -> bool:
        """A class deriving (through any chain of classes read from files) from one of
        `bases` (by default a mutator base or UserStepDecorator)."""
        if not (isinstance(target, Defined) and isinstance(target.stmt, cst.ClassDef)):
            return False
        key = (id(target.stmt), bases)
        if key not in self._mutator:
            self._mutator[key] = False
            found = False
            for base in target.stmt.bases:
                resolved = self._resolve(target.namespace, base.value)
                if isinstance(resolved, MetaflowName) and resolved.name in bases:
                    found = True
                elif depth < 20 and self.is_mutator_class(resolved, depth + 1, bases):
                    found = True
            self._mutator[key] = found
        return self._mutator[key]

    def is_trigger_class(self, target: object) -> bool:
        """A FlowMutator or StepMutator class (a subclass of one, at any depth)."""
        return self.is_mutator_class(target, bases=frozenset(TRIGGER_BASES))

    def _where(self, ns: Namespace, node: cst.CSTNode) -> LazyLocation:
        """Where `node` is, computed if asked: positions cost ~10x a parse of the module,
        and a trigger's location is only read by a diagnostic (most flows report none)."""
        return LazyLocation(self.locator, ns.source, node)

    def class_trigger(self, ns: Namespace, cls: cst.ClassDef, depth: int = 0) -> Trigger | None:
        """What in `cls` (its decorators, its steps' decorators, its bases) needs Metaflow to
        evaluate it, or None. A base in another module is blamed as a whole, at the use."""
        for dec in cls.decorators:
            target = self._resolve(ns, callee(dec))
            if self.is_trigger_class(target):
                return Trigger(self._where(ns, dec), f"@{dotted_name(callee(dec))}")
        configs = self._config_names(cls)
        for item in cls.body.body:
            if not isinstance(item, cst.FunctionDef):
                continue
            for dec in item.decorators:
                target = self._resolve(ns, callee(dec))
                if self.is_trigger_class(target):  # also a class-based decorator, maybe
                    return Trigger(self._where(ns, dec), f"@{dotted_name(callee(dec))}")
                if isinstance(target, (MetaflowName, ModuleObject)):
                    continue
                if any(self._reads_config(ns, a.value, configs) for a in call_args(dec)):
                    name = dotted_name(callee(dec))
                    return Trigger(self._where(ns, dec), f"@{name} (its arguments read a Config)")
        if depth < 20:
            for base in cls.bases:
                target = self._resolve(ns, base.value)
                if isinstance(target, Defined) and isinstance(target.stmt, cst.ClassDef):
                    inner = self.class_trigger(target.namespace, target.stmt, depth + 1)
                    if inner is not None:
                        name = dotted_name(base.value)
                        if target.namespace is not self.flow_ns:
                            return Trigger(self._where(ns, base), f"base class {name}")
                        return inner
        return None

    def check_findable(self, cls: cst.ClassDef) -> None:
        """A flow class's decorators and bases must be read to know whether Metaflow has to
        evaluate it (a mutator there changes every step): one whose module cannot be found
        is reported as a custom step decorator's is (DF201), not taken for a plain class
        (the flow would be copied as it is, mutators unapplied, and exit 0)."""
        ns = self.flow_ns
        step = MetaflowName("step")
        flow_class = any(
            self._resolve(ns, b.value) == MetaflowName("FlowSpec") for b in cls.bases
        ) or any(
            isinstance(item, cst.FunctionDef)
            and any(self._resolve(ns, callee(d)) == step for d in item.decorators)
            for item in cls.body.body
        )
        if not flow_class:
            return
        uses = [(callee(d), d, "decorator") for d in cls.decorators]
        uses += [(b.value, b, "base class") for b in cls.bases]
        for expr, node, what in uses:
            try:
                target = self.resolver.expression(ns, expr)
            except CompileError:
                continue  # an unreadable module: reported where it is read
            if isinstance(target, Unresolved) and target.missing_module:
                written = dotted_name(expr)
                shown = f"@{written}" if what == "decorator" else written
                message = (
                    f"cannot find module '{target.missing_module}' for the flow's {what} "
                    f"{shown} (searched: {self.resolver.finder.searched})"
                )
                use = self.locator.locate(ns.source, node)
                if target.at is None:
                    raise CompileError([MODULE_NOT_FOUND(message, use)])
                at = self.locator.locate(*target.at)
                raise CompileError([MODULE_NOT_FOUND(message, at, ((use, f"{shown} used here"),))])

    def _config_names(self, cls: cst.ClassDef) -> set[str]:
        """The class attributes declared as `Config(...)`."""
        names = set()
        for item in cls.body.body:
            if isinstance(item, cst.SimpleStatementLine):
                for small in item.body:
                    if (
                        isinstance(small, cst.Assign)
                        and isinstance(small.value, cst.Call)
                        and dotted_name(small.value.func) in CONFIG_CALLS
                    ):
                        for target in small.targets:
                            if isinstance(target.target, cst.Name):
                                names.add(target.target.value)
        return names

    def _reads_config(self, ns: Namespace, expr: cst.BaseExpression, configs: set[str]) -> bool:
        """Whether `expr` calls `config_expr` or names one of the class's Configs."""
        stack: list[cst.CSTNode] = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, cst.Call) and self._resolve(
                ns, node.func
            ) == MetaflowName("config_expr"):
                return True
            if isinstance(node, cst.Name) and node.value in configs:
                return True
            stack.extend(node.children)
        return False

    def find(self) -> Trigger | None:
        """The first trigger of any class of the flow module (mutators defined there are not
        flows, and are skipped)."""
        for stmt in self.flow_ns.source.module.body:
            if isinstance(stmt, cst.ClassDef) and not self.is_mutator_class(
                Defined(self.flow_ns, stmt.name.value, stmt)
            ):
                self.check_findable(stmt)
                found = self.class_trigger(self.flow_ns, stmt)
                if found is not None:
                    return found
        return None


    # -- base classes that need no Metaflow, but cannot stay imported ------------------------

    def custom_base(self, base: Defined) -> str | None:
        """Why a base class in another module cannot stay imported although it needs no
        expansion: a class of its chain has a step with a custom decorator, or its module
        imports what only Metaflow 2.16+ has. None: a plain-Metaflow base, kept imported."""
        chain = [base]
        seen: set[int] = set()
        while chain:
            current = chain.pop()
            if id(current.stmt) in seen or len(seen) > 20:
                continue
            seen.add(id(current.stmt))
            ns, cls = current.namespace, current.stmt
            assert isinstance(cls, cst.ClassDef)
            for item in cls.body.body:
                if isinstance(item, cst.FunctionDef):
                    for dec in item.decorators:
                        target = self._resolve(ns, callee(dec))
                        if is_generator(self.resolver, target) or self.is_mutator_class(
                            target, bases=frozenset({"UserStepDecorator"})
                        ):
                            return f"its step {item.name.value} uses @{dotted_name(callee(dec))}"
            for binding in ns.bindings.values():
                if isinstance(binding, ImportFrom) and binding.module == METAFLOW:
                    if binding.name in NEWER_METAFLOW:
                        return f"its module imports {binding.name} from metaflow"
            for arg in cls.bases:
                inner = self._resolve(ns, arg.value)
                if isinstance(inner, Defined) and isinstance(inner.stmt, cst.ClassDef):
                    chain.append(inner)
        return None

    def find_custom_bases(self) -> Trigger | None:
        """The first base class in another module that a class of the flow module derives
        from and that must be flattened statically (`custom_base`), or None."""
        for stmt in self.flow_ns.source.module.body:
            if not isinstance(stmt, cst.ClassDef):
                continue
            for arg in stmt.bases:
                target = self._resolve(self.flow_ns, arg.value)
                if (
                    isinstance(target, Defined)
                    and isinstance(target.stmt, cst.ClassDef)
                    and target.namespace is not self.flow_ns
                ):
                    why = self.custom_base(target)
                    if why is not None:
                        name = dotted_name(arg.value)
                        return Trigger(self._where(self.flow_ns, arg), f"base class {name}: {why}")
        return None


def find_trigger(
    resolver: Resolver, flow_ns: Namespace, locator: Locator, with_specs: tuple[str, ...] = ()
) -> Trigger | None:
    """Why the flow module needs expansion, or None: it compiles statically. A `--with`
    spec naming a mutator (a class-based decorator that is also a StepMutator) needs it
    too: Metaflow runs its mutate as the flow loads."""
    detector = Detector(resolver, flow_ns, locator)
    found = detector.find()
    for spec in with_specs if found is None else ():
        module, _, name = spec.split(":", 1)[0].rpartition(".")
        ns = resolver.namespace_of(module) if module else None
        if isinstance(ns, Namespace) and name in ns.bindings:
            if detector.is_trigger_class(detector._resolve(ns, cst.Name(name))):
                return Trigger(Location(flow_ns.source.display, 1, 1), f"--with {spec}")
    return found


def find_custom_bases(
    resolver: Resolver, flow_ns: Namespace, locator: Locator
) -> Trigger | None:
    """Why the flow module must have a base class flattened statically, or None."""
    return Detector(resolver, flow_ns, locator).find_custom_bases()
