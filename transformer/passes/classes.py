"""Class-based step decorators (`UserStepDecorator` subclasses): found, checked, compiled.

Metaflow runs generator decorators and classes through one loop (`task.py`,
`MetaflowTask._exec_step_function`): `pre_step` outermost first, a `skip_step` or a callable
returned by `pre_step` stops it, then `post_step` innermost first, whose return value decides
the failure and the transition. A class layer is compiled as readable calls in that order:

    start_trace.pre_step("start", self, None)
    trace_error = None
    try:
        <the decorators below it and the step's own code>
    except Exception as trace_failure:
        trace_error = trace_failure
    trace_error = decoflow_post_step(start_trace, "start", self, trace_error, True)
    if trace_error:
        raise trace_error

The class itself is carried into the output with its base swapped for
`DecoflowStepDecorator` (runtime/classes.py), and its instance is made once per use when the
flow loads (`start_trace = Trace(label="x")` at module level, in Metaflow's order): its state
lives on that object, never on the flow. `decoflow_post_step` reads what `post_step` returns as
Metaflow does; a failure Metaflow raises past the decorators above (a 3-tuple, a bad value)
makes their handlers step aside with the same `setting_up` marker as a generator's
before-code failure (see `inline`).

The interface for decorators added by mutators (issue 12's expansion): a step's stack is its
`StepSite.uses`, outermost first; a class found there is a `DecoratorUse` whose definition is
a `ClassDecoratorDef` (see `class_use`), its arguments keyword `cst.Arg`s with literal values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import libcst as cst

from ..support.code import block, line, trailing, with_comment
from ..support.diagnostics import (
    ALSO_A_STEP_MUTATOR,
    ARGUMENTS_WITHOUT_ATTRIBUTES,
    CLASS_NOT_FOLLOWED,
    MACHINERY_OVERRIDDEN,
    NON_LITERAL_ARGUMENT,
    POSITIONAL_ARGUMENTS,
    CompileError,
    Diagnostic,
)
from ..support.locate import LazyLocation, Locator
from ..support.names import NameAllocator, child_nodes
from ..support.namespace import Defined, MetaflowName, Namespace, Resolver, dotted_name
from ..support.source import is_docstring
from .analyze import YieldKind
from .discover import DecoratorDef, DecoratorUse, StepSite
from .inline import Layer, StepRewriter

BASE = "DecoflowStepDecorator"
USER_STEP_DECORATOR = "UserStepDecorator"
STEP_MUTATOR = "StepMutator"

#: What Metaflow's UserStepDecorator defines around the protocol: a class overriding one of
#: these changes how Metaflow drives it, which the compiled flow cannot follow.
MACHINERY = frozenset(
    {
        "__init__",
        "__new__",
        "__get__",
        "__call__",
        "__init_subclass__",
        "__class_getitem__",
        "external_init",
        "add_or_raise",
        "_set_my_step",
        "_all_step_fields",
        "get_args_kwargs",
        "make_decorator_spec",
        "parse_decorator_spec",
        "extract_args_kwargs_from_decorator_spec",
        "skip_step",
        "_skip_step",
        "_step_field",
        "_ran_init",
        "_special_kwargs",
    }
)
#: Attributes a Metaflow instance has that the compiled one does not.
INTERNALS = frozenset(
    {
        "_args",
        "_kwargs",
        "_my_step",
        "_special_kwargs",
        "_ran_init",
        "statically_defined",
        "inserted_by",
        "_mutate_called",
        "_mutate_inserted",
        "get_args_kwargs",
        "make_decorator_spec",
        "external_init",
        "_step_field",
        "_allowed_args",
        "_allowed_kwargs",
    }
)


def snake(name: str) -> str:
    """`SkipNamed` -> `skip_named`, `HTTPTimer` -> `http_timer`."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().strip("_") or "deco"


@dataclass(frozen=True)
class ClassDecoratorDef(DecoratorDef):
    """A `UserStepDecorator` subclass used as a step decorator (`func` is its `class`)."""

    chain: tuple[Defined, ...] = field(
        default=(), compare=False, repr=False
    )  # it, then its user bases

    @property
    def metaflow_name(self) -> str:
        for part in self.func.body.body:  # type: ignore[attr-defined]
            found = _literal_assignment(part, "_decorator_name")
            if found is not None:
                return found
        return super().metaflow_name


def _literal_assignment(stmt: cst.CSTNode, name: str) -> str | None:
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        small = stmt.body[0]
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
            and small.targets[0].target.value == name
            and isinstance(small.value, cst.SimpleString)
        ):
            return small.value.evaluated_value  # type: ignore[return-value]
    return None


def _bases(resolver: Resolver, target: Defined) -> list[object]:
    assert isinstance(target.stmt, cst.ClassDef)
    return [resolver.expression(target.namespace, base.value) for base in target.stmt.bases]


def is_decorator_class(resolver: Resolver, target: object, depth: int = 0) -> bool:
    """Whether `target` is a class deriving (through classes decoflow can read) from
    Metaflow's UserStepDecorator."""
    if depth > 20 or not isinstance(target, Defined) or not isinstance(target.stmt, cst.ClassDef):
        return False
    for base in _bases(resolver, target):
        if base == MetaflowName(USER_STEP_DECORATOR) or is_decorator_class(
            resolver, base, depth + 1
        ):
            return True
    return False


def class_definition(target: Defined, flow_ns: Namespace, resolver: Resolver) -> ClassDecoratorDef:
    assert isinstance(target.stmt, cst.ClassDef)
    chain: list[Defined] = []
    stack = [target]
    while stack and len(chain) < 20:
        current = stack.pop(0)
        if any(c.stmt is current.stmt for c in chain):
            continue
        chain.append(current)
        stack.extend(
            b
            for b in _bases(resolver, current)
            if isinstance(b, Defined) and isinstance(b.stmt, cst.ClassDef)
        )
    source = target.namespace.source
    return ClassDecoratorDef(
        name=target.name,
        namespace=target.namespace,
        func=target.stmt,  # type: ignore[arg-type]
        in_flow=target.namespace is flow_ns,
        line=source.line_of(rf"^[ \t]*class[ \t]+{re.escape(target.stmt.name.value)}\b"),
        chain=tuple(chain),
    )


def class_use(
    resolver: Resolver, flow_ns: Namespace, target: Defined, kwargs: dict[str, str], written: str
) -> DecoratorUse:
    """A use of a class made by something other than a decorator line (a mutator's
    `add_decorator`, as the expansion reports it): `kwargs` maps each argument's name to the
    source text of its literal value."""
    args = tuple(
        cst.Arg(
            keyword=cst.Name(k),
            value=cst.parse_expression(v),
            equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
        )
        for k, v in kwargs.items()
    )
    return DecoratorUse(
        class_definition(target, flow_ns, resolver),
        cst.Decorator(cst.parse_expression(written)),
        args or None,
        written,
        True,
    )


# -- what a class does ------------------------------------------------------------------


@dataclass(frozen=True)
class ClassInfo:
    """What the step rewriter needs to know about a class layer. It answers the questions the
    rewriter asks of a generator's analysis (`GeneratorInfo`) for the step as a whole: a class
    layer has `except` around what it wraps (like a guarded `try` around a yield), pre-code
    when it overrides `pre_step`, and may fail past the decorators above when it overrides
    `post_step` (a 3-tuple or a bad value, like a generator's second yield)."""

    definition: ClassDecoratorDef
    hooks: tuple[str, ...]  # the protocol methods the class (or a base of its own) defines
    can_skip: bool
    can_replace: bool
    # The GeneratorInfo questions:
    has_pre_code: bool
    may_not_yield: bool
    names: frozenset[str] = frozenset()
    local_names: frozenset[str] = frozenset()
    params: tuple[str, ...] = ("", "", "")
    func: cst.FunctionDef = field(
        default_factory=lambda: cst.FunctionDef(cst.Name("_"), cst.Parameters(), block([])),
        repr=False,
    )
    local_refs: dict = field(default_factory=dict, repr=False)
    reassigned: frozenset[str] = frozenset()
    bound_anywhere: frozenset[str] = frozenset()
    shadowed_at_reads: dict = field(default_factory=dict, repr=False)
    global_names: frozenset[str] = frozenset()
    declared_globals: frozenset[str] = frozenset()
    attribute_uses: dict = field(default_factory=dict, repr=False)
    guarded_trys: frozenset[int] = frozenset({0})
    handler_trys: frozenset[int] = frozenset()
    sites: tuple = ()
    has_return: bool = False
    yields_to_body: tuple = ()

    is_class = True

    @property
    def name(self) -> str:
        return snake(self.definition.name)


def _methods(stmt: cst.ClassDef) -> dict[str, cst.FunctionDef]:
    out: dict[str, cst.FunctionDef] = {}
    for item in stmt.body.body:  # type: ignore[union-attr]
        if isinstance(item, cst.FunctionDef):
            out[item.name.value] = item
    return out


def _class_names(stmt: cst.ClassDef) -> dict[str, cst.CSTNode]:
    """Names the class body binds: methods, classes and attributes."""
    out: dict[str, cst.CSTNode] = {}
    for item in stmt.body.body:  # type: ignore[union-attr]
        if isinstance(item, (cst.FunctionDef, cst.ClassDef)):
            out[item.name.value] = item
        elif isinstance(item, cst.SimpleStatementLine):
            for small in item.body:
                targets = []
                if isinstance(small, cst.Assign):
                    targets = [t.target for t in small.targets]
                elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
                    targets = [small.target]
                for t in targets:
                    if isinstance(t, cst.Name):
                        out[t.value] = item
    return out


def _walk(node: cst.CSTNode):
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(child_nodes(current))


def _returns_value(func: cst.FunctionDef) -> bool:
    for node in _walk(func.body):
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and node is not func:
            continue
        if isinstance(node, cst.Return) and node.value is not None:
            if not (isinstance(node.value, cst.Name) and node.value.value == "None"):
                return True
    return False


class ClassAnalyzer:
    """Checks a class-based decorator and says what its layer needs."""

    def __init__(
        self, resolver: Resolver, locator: Locator, mutators_applied: bool = False
    ) -> None:
        self.resolver = resolver
        self.locator = locator
        # True once issue 12's expansion has run the flow's mutators and written their result
        # as decorator lines: a class that is also a StepMutator then only wraps the step.
        self.mutators_applied = mutators_applied

    def analyze(self, definition: ClassDecoratorDef) -> ClassInfo:
        problems: list[Diagnostic] = []
        hooks: list[str] = []
        pre_funcs: list[cst.FunctionDef] = []
        mentions_skip = False
        for part in definition.chain:
            stmt = part.stmt
            assert isinstance(stmt, cst.ClassDef)
            where = LazyLocation(self.locator, part.namespace.source, stmt)
            label = f"class {stmt.name.value}"
            for kw in stmt.keywords:
                problems.append(
                    CLASS_NOT_FOLLOWED(
                        f"{label} has a `{kw.keyword.value}=` argument (a metaclass or class "
                        "keyword): decoflow cannot follow what it does to the class",
                        where,
                    )
                )
            for base in stmt.bases:
                target = self.resolver.expression(part.namespace, base.value)
                text = dotted_name(base.value) or cst.Module(body=[]).code_for_node(base.value)
                if isinstance(target, MetaflowName) and target.name == STEP_MUTATOR:
                    if self.mutators_applied:
                        continue
                    problems.append(
                        ALSO_A_STEP_MUTATOR(
                            f"{label} is also a StepMutator: its mutate() changes the flow "
                            "when it is loaded, which needs the expansion of mutators "
                            "(not yet available)",
                            where,
                        )
                    )
                elif isinstance(target, MetaflowName):
                    if target.name != USER_STEP_DECORATOR:
                        problems.append(
                            CLASS_NOT_FOLLOWED(
                                f"{label} derives from Metaflow's {target.name}", where
                            )
                        )
                elif not (isinstance(target, Defined) and isinstance(target.stmt, cst.ClassDef)):
                    problems.append(
                        CLASS_NOT_FOLLOWED(
                            f"{label} has a base decoflow cannot read (`{text}`): a dynamic or "
                            "imported-from-elsewhere base",
                            where,
                        )
                    )
            for name, node in _class_names(stmt).items():
                if name in MACHINERY:
                    problems.append(
                        MACHINERY_OVERRIDDEN(
                            f"{label} overrides `{name}` of Metaflow's UserStepDecorator; "
                            "only init, pre_step and post_step (and setting self.skip_step) "
                            "have a meaning decoflow can keep",
                            LazyLocation(self.locator, part.namespace.source, node),
                        )
                    )
            methods = _methods(stmt)
            for hook in ("init", "pre_step", "post_step"):
                if hook in methods and hook not in hooks:
                    hooks.append(hook)
            if "pre_step" in methods:
                pre_funcs.append(methods["pre_step"])
            for node in _walk(stmt.body):
                if isinstance(node, cst.Attribute) and node.attr.value in INTERNALS:
                    problems.append(
                        MACHINERY_OVERRIDDEN(
                            f"{label} reads `{node.attr.value}`, internal to Metaflow's "
                            "UserStepDecorator (the "
                            "compiled class does not have it)",
                            LazyLocation(self.locator, part.namespace.source, node),
                        )
                    )
                elif isinstance(node, cst.Attribute) and node.attr.value in (
                    "skip_step",
                    "_skip_step",
                ):
                    mentions_skip = True
                elif isinstance(node, cst.Name) and node.value in ("setattr", "__dict__", "vars"):
                    mentions_skip = True
        if problems:
            unique = {(d.code, d.message): d for d in problems}
            raise CompileError(list(unique.values()))
        return ClassInfo(
            definition=definition,
            hooks=tuple(h for h in ("init", "pre_step", "post_step") if h in hooks),
            can_skip=mentions_skip,
            can_replace=any(_returns_value(f) for f in pre_funcs),
            has_pre_code="pre_step" in hooks,
            may_not_yield="post_step" in hooks,
        )

    def check_use(self, use: DecoratorUse, info: ClassInfo, where, non_literal) -> list[Diagnostic]:
        """Arguments Metaflow refuses when the flow loads (`UserStepDecoratorBase.__init__`,
        `external_init`), or that are not literals."""
        args = use.arguments
        if not args:
            return []
        defined = (
            LazyLocation(self.locator, use.definition.namespace.source, use.definition.func),
            f"{use.definition.name} defined here",
        )
        out: list[Diagnostic] = []
        if any(a.star for a in args):
            out.append(
                POSITIONAL_ARGUMENTS(
                    f"@{use.written}: `*`/`**` arguments cannot be read without running the flow",
                    where,
                    (defined,),
                )
            )
        elif any(a.keyword is None for a in args) and not self._allows_args(info.definition):
            out.append(
                POSITIONAL_ARGUMENTS(
                    f"@{use.written} takes keyword arguments only (Metaflow: the class does "
                    "not allow arguments)",
                    where,
                    (defined,),
                )
            )
        elif "init" not in _methods(use.definition.func):  # type: ignore[arg-type]
            out.append(
                ARGUMENTS_WITHOUT_ATTRIBUTES(
                    f"@{use.written} is given arguments but class {use.definition.name} "
                    "does not define init "
                    "(Metaflow refuses this when the flow loads)",
                    where,
                    (defined,),
                )
            )
        else:
            for arg in args:
                bad = non_literal(arg.value)
                if bad:
                    label = arg.keyword.value if arg.keyword else "a positional argument"
                    out.append(
                        NON_LITERAL_ARGUMENT(
                            f"@{use.written}: argument '{label}' uses '{bad}', which is not "
                            "a literal or a module-level name",
                            where,
                            (defined,),
                        )
                    )
        return out

    @staticmethod
    def _allows_args(definition: ClassDecoratorDef) -> bool:
        for part in definition.chain:
            for item in part.stmt.body.body:  # type: ignore[attr-defined]
                if isinstance(item, cst.SimpleStatementLine) and len(item.body) == 1:
                    small = item.body[0]
                    if (
                        isinstance(small, cst.Assign)
                        and isinstance(small.targets[0].target, cst.Name)
                        and small.targets[0].target.value == "_allowed_args"
                    ):
                        return isinstance(small.value, cst.Name) and small.value.value == "True"
        return False


# -- the step ---------------------------------------------------------------------------


def is_class_layer(layer: Layer) -> bool:
    return getattr(layer.info, "is_class", False)


class ClassStepRewriter(StepRewriter):
    """A step with class layers (and maybe generator ones): generator layers are written as
    always; each class layer as pre_step -> what it wraps -> post_step."""

    def __init__(
        self,
        site: StepSite,
        layers: list[Layer],
        module_names: set[str],
        runtime: set[str],
        facts,
        instances: dict[int, str],
    ) -> None:
        super().__init__(site, layers, module_names, runtime, facts)
        self.instances = instances  # layer level -> the module-level name of its instance
        skips = any(is_class_layer(la) and la.info.can_skip for la in layers) or any(
            s.kind in (YieldKind.SKIP, YieldKind.SKIP_NEXT, YieldKind.DYNAMIC)
            for la in layers
            if not is_class_layer(la)
            for s in la.info.sites
        )
        # Whether what a layer wraps ran (not skipped): only needed when something may skip.
        self.ran = self._claim_step("ran") if skips else ""
        if self.ran:
            self.assigned_inside.add(self.ran)

    def _shares_step_name(self, layer: Layer) -> bool:
        return not is_class_layer(layer) and super()._shares_step_name(layer)

    def _step_prologue(self) -> list[cst.BaseStatement]:
        return (
            [trailing(line(f"{self.ran} = False"), "decoflow: the step (or a replacement) ran")]
            if self.ran
            else []
        )

    def _own_code(self, core: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        return [line(f"{self.ran} = True"), *core] if self.ran else core

    def _site(self, layer, site, run_inner, locals_, yielded):
        out = super()._site(layer, site, run_inner, locals_, yielded)
        if self.ran and site.kind in (YieldKind.REPLACE, YieldKind.DYNAMIC):
            out = [line(f"{self.ran} = True"), *out]
        return out

    def _layer(self, layer: Layer, inner: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        if not is_class_layer(layer):
            return super()._layer(layer, inner)
        info: ClassInfo = layer.info  # type: ignore[assignment]
        name = info.name
        instance = self.instances[layer.level]
        others = set().union(
            *(n for i, n in enumerate(self.decorator_names) if i != layer.level - 1)
        )
        alloc = NameAllocator(self.alloc.taken | others)
        error, failure = self._claim(alloc, f"{name}_error", f"{name}_failure")
        replacement = self._claim(alloc, f"{name}_replacement")[0] if info.can_replace else ""
        step = f'"{self.site.name}"'
        self_name = self.site.self_name
        inputs = self.site.inputs_name
        out: list[cst.BaseStatement] = []
        if "pre_step" in info.hooks:
            call = f"{instance}.pre_step({step}, {self_name}, {inputs or 'None'})"
            tracks = self._tracks(layer)
            if tracks:
                out.append(line(f"{self.flag} = {layer.level}"))
            out.append(line(f"{replacement} = {call}" if replacement else call))
            if tracks:
                out.append(line(f"{self.flag} = 0"))
        out.append(line(f"{error} = None"))
        body = list(inner) or [line("pass")]
        if info.can_replace:
            self.runtime.add("decoflow_replace")
            replace = (
                f"decoflow_replace({self_name}, {replacement}{', ' + inputs if inputs else ''})"
            )
            ran = [line(f"{self.ran} = True")] if self.ran else []
            body = [
                cst.If(
                    test=cst.parse_expression(replacement),
                    body=block(
                        [*ran, trailing(line(replace), f"@{layer.use.written} replaces the step")]
                    ),
                    orelse=cst.Else(body=block(body)),
                )
            ]
        if info.can_skip:
            self.runtime.add("decoflow_transition")
            skip = f"decoflow_transition({self_name}, {instance}.skip_step, False)"
            rest = body[0] if info.can_replace else None
            orelse: cst.If | cst.Else = (
                rest if isinstance(rest, cst.If) else cst.Else(body=block(body))
            )
            body = [
                cst.If(
                    test=cst.parse_expression(f"{instance}.skip_step"),
                    body=block([trailing(line(skip), f"@{layer.use.written} skips the step")]),
                    orelse=orelse,
                )
            ]
        handler: list[cst.BaseStatement] = []
        if self._guard_level(layer) is not None:
            handler.append(line(f"if {self.flag} > {layer.level}:\n    raise\n"))
        handler.append(line(f"{error} = {failure}"))
        out.append(
            cst.Try(
                body=block(body),
                handlers=[
                    cst.ExceptHandler(
                        body=block(handler),
                        type=cst.Name("Exception"),
                        name=cst.AsName(cst.Name(failure)),
                    )
                ],
            )
        )
        self.runtime.add("decoflow_post_step")
        post = line(
            f"{error} = decoflow_post_step("
            f"{instance}, {step}, {self_name}, {error}, {self.ran or 'True'})"
        )
        bypass = self._bypasses(layer) and info.may_not_yield
        tail = (
            [line(f"{self.flag} = {len(self.layers) + 1}"), post, line(f"{self.flag} = 0")]
            if bypass
            else [post]
        )
        tail[0] = with_comment(tail[0], f"@{layer.use.written}: post_step")
        out.extend(tail)
        out.append(line(f"if {error}:\n    raise {error}\n"))
        via = "--with, " if layer.use.via_with else ""
        out[0] = with_comment(
            out[0],
            f"@{layer.use.written} ({via}{layer.use.definition.origin}), class-based: {instance}",
        )
        return out


# -- the module -------------------------------------------------------------------------


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
    StepMutator base dropped, and (for a class used as a decorator) its Metaflow name."""
    assert isinstance(original.stmt, cst.ClassDef)
    bases = []
    for carried, written in zip(stmt.bases, original.stmt.bases):
        target = resolver.expression(original.namespace, written.value)
        if target == MetaflowName(USER_STEP_DECORATOR):
            bases.append(carried.with_changes(value=cst.Name(BASE)))
        elif target != MetaflowName(STEP_MUTATOR):
            bases.append(carried)
    if bases:
        bases[-1] = bases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    body = list(stmt.body.body)  # type: ignore[union-attr]
    if decorator_name is not None and "decorator_name" not in _class_names(stmt):
        at = 1 if body and is_docstring(body[0]) else 0
        named = cst.parse_statement(f"decorator_name = {json.dumps(decorator_name)}")
        body.insert(
            at, named.with_changes(leading_lines=[cst.EmptyLine(indent=False)] if at else [])
        )
        if at + 1 < len(body) and not body[at + 1].leading_lines:
            body[at + 1] = body[at + 1].with_changes(leading_lines=[cst.EmptyLine(indent=False)])
    return stmt.with_changes(bases=bases, body=stmt.body.with_changes(body=body))


def insert_instances(module: cst.Module, stmts: list[cst.BaseStatement]) -> cst.Module:
    """The instances, just before `if __name__ == "__main__":` (else at the end): after every
    definition, before the flow runs, as Metaflow makes them when it loads the flow."""
    if not stmts:
        return module
    stmts = list(stmts)
    stmts[0] = stmts[0].with_changes(
        leading_lines=[
            cst.EmptyLine(),
            cst.EmptyLine(),
            cst.EmptyLine(
                comment=cst.Comment(
                    "# decoflow: one instance per use of a class-based decorator, "
                    "made as the flow loads"
                )
            ),
        ]
    )
    body = list(module.body)
    at = len(body)
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.If) and "__name__" in cst.Module(body=[]).code_for_node(stmt.test):
            at = i
            break
    return module.with_changes(body=[*body[:at], *stmts, *body[at:]])


def replace_classes(module: cst.Module, new: dict[str, cst.ClassDef]) -> cst.Module:
    """Top-level classes of the flow module replaced by name (in-flow decorator classes)."""
    if not new:
        return module
    body = [new.get(s.name.value, s) if isinstance(s, cst.ClassDef) else s for s in module.body]
    return module.with_changes(body=body)


class ClassOutput:
    """The module-level part of class layers: the classes carried (bases swapped), one
    instance per use, in-flow classes rewritten in place."""

    def __init__(self, resolver: Resolver, carrier, sites: list[StepSite], infos: dict) -> None:
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
                self._output_name(part)
            self.class_names[definition.key] = self._output_name(definition.chain[0])

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
        from ..support.runtime_helpers import helper_definitions

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

    def finish(self, module: cst.Module) -> cst.Module:
        if not self.uses:
            return module
        in_flow = {
            part.stmt.name.value: self._swapped(part.stmt, part, used)  # type: ignore[attr-defined]
            for part, used in self.chain.values()
            if part.namespace is self.carrier.flow_ns
        }
        module = replace_classes(module, in_flow)
        lines = [
            instance_line(
                self.instances[(id(site.func), level)], self.class_names[use.definition.key], use
            )
            for site, level, use in self.uses
        ]
        return insert_instances(module, lines)


__all__ = [
    "ClassOutput",
    "BASE",
    "ClassAnalyzer",
    "ClassDecoratorDef",
    "ClassInfo",
    "ClassStepRewriter",
    "class_definition",
    "class_use",
    "insert_instances",
    "instance_line",
    "instance_order",
    "is_class_layer",
    "is_decorator_class",
    "replace_classes",
    "snake",
    "swap_bases",
]
