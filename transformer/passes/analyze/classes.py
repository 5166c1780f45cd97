"""Pass 4, class-based decorators: check a `UserStepDecorator` subclass, and say what its
layer needs (`ClassInfo`).

Metaflow runs generator decorators and classes through one loop (`task.py`,
`MetaflowTask._exec_step_function`): `pre_step` outermost first, a `skip_step` or a callable
returned by `pre_step` stops it, then `post_step` innermost first, whose return value decides
the failure and the transition. A class that overrides Metaflow's machinery, has a metaclass
or a base decoflow cannot read, or is also a StepMutator, cannot be followed (DF205-DF207);
`check_class_use` checks the arguments of a use as Metaflow does when the flow loads.
"""

from __future__ import annotations

import libcst as cst

from ...support.diagnostics import (
    ALSO_A_STEP_MUTATOR,
    ARGUMENTS_WITHOUT_ATTRIBUTES,
    CLASS_NOT_FOLLOWED,
    MACHINERY_OVERRIDDEN,
    NON_LITERAL_ARGUMENT,
    POSITIONAL_ARGUMENTS,
    CompileError,
    Diagnostic,
)
from ...support.locate import LazyLocation, Locator
from ...support.namespace import Defined, MetaflowName, Resolver, dotted_name
from ...support.records import frozen
from ..discover import DecoratorUse
from ..discover.classes import (
    STEP_MUTATOR,
    USER_STEP_DECORATOR,
    ClassDecoratorDef,
    snake,
)
from .flow import FlowFacts
from .guards import GuardFacts
from .mutate_state import methods_of, state_kept, walk
from .names import NameFacts

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

#: A class layer's names: it inlines no code of its own, so it claims and reads none.
_NO_NAMES = NameFacts(
    local_names=frozenset(),
    local_refs={},
    local_aliases={},
    local_functions=frozenset(),
    reassigned=frozenset(),
    shadowed_at_reads={},
    bound_anywhere=frozenset(),
    global_refs={},
    global_names=frozenset(),
    declared_globals=frozenset(),
    all=frozenset(),
    attribute_uses={},
)


@frozen
class ClassInfo:
    """What the later passes need to know about a class layer. It answers the questions they
    ask of a generator's analysis (`GeneratorInfo`) for the step as a whole: a class layer
    has `except` around what it wraps (like a guarded `try` around a yield), pre-code when
    it overrides `pre_step`, and may fail past the decorators above when it overrides
    `post_step` (a 3-tuple or a bad value, like a generator finishing without a yield)."""

    definition: ClassDecoratorDef
    hooks: tuple[str, ...]  # the protocol methods the class (or a base of its own) defines
    can_skip: bool
    can_replace: bool
    has_pre_code: bool
    may_not_yield: bool
    # the classes of its chain that are also StepMutators, their mutate applied by the
    # expansion (pass 1, expand): carried without it (carry/classes)
    mutators: tuple[str, ...] = ()

    is_class = True
    names = _NO_NAMES
    params = ("", "", "")
    unused_params = frozenset()
    sites = ()
    yields_to_body = ()
    has_return = False
    inspect_uses = ()
    yields_again = False

    @property
    def name(self) -> str:
        return snake(self.definition.name)

    @property
    def guards(self) -> GuardFacts:
        return GuardFacts(
            guarded=frozenset({self.definition.func}),
            handlers=frozenset(),
            withs=(),
            except_star=False,
            has_pre_code=self.has_pre_code,
        )

    @property
    def flow(self) -> FlowFacts:
        return FlowFacts(self.may_not_yield, frozenset())

    @property
    def miscounts(self) -> bool:
        return self.may_not_yield

    @property
    def fails_past_outer(self) -> bool:
        return self.has_pre_code or self.may_not_yield


def class_body_names(stmt: cst.ClassDef) -> dict[str, cst.CSTNode]:
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


def _returns_value(func: cst.FunctionDef) -> bool:
    for node in walk(func.body):
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
        mutators: list[str] = []
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
                        problems.extend(self._mutate_state(stmt, part.namespace.source, label))
                        mutators.append(stmt.name.value)
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
            for name, node in class_body_names(stmt).items():
                if name in MACHINERY:
                    problems.append(
                        MACHINERY_OVERRIDDEN(
                            f"{label} overrides `{name}` of Metaflow's UserStepDecorator; "
                            "only init, pre_step and post_step (and setting self.skip_step) "
                            "have a meaning decoflow can keep",
                            LazyLocation(self.locator, part.namespace.source, node),
                        )
                    )
            methods = methods_of(stmt)
            for hook in ("init", "pre_step", "post_step"):
                if hook in methods and hook not in hooks:
                    hooks.append(hook)
            if "pre_step" in methods:
                pre_funcs.append(methods["pre_step"])
            for node in walk(stmt.body):
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
            mutators=tuple(mutators),
        )

    def _mutate_state(self, stmt: cst.ClassDef, source, label: str) -> list[Diagnostic]:
        """A class that is also a StepMutator, once its mutate has been applied: state its
        mutate keeps on `self` would reach the hooks natively, not in the compiled flow."""
        return [
            ALSO_A_STEP_MUTATOR(
                f"{label} is also a StepMutator whose {name}() keeps state on the "
                f"instance (self.{stored}): natively its pre_step/post_step see "
                "it, but the compiled flow no longer runs mutators",
                LazyLocation(self.locator, source, node),
            )
            for name, stored, node in state_kept(stmt)
        ]

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


def check_class_use(
    use: DecoratorUse, info: ClassInfo, where, non_literal, locator: Locator
) -> list[Diagnostic]:
    """Arguments Metaflow refuses when the flow loads (`UserStepDecoratorBase.__init__`,
    `external_init`), or that are not literals."""
    args = use.arguments
    if not args:
        return []
    defined = (
        LazyLocation(locator, use.definition.namespace.source, use.definition.func),
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
    elif any(a.keyword is None for a in args) and not ClassAnalyzer._allows_args(info.definition):
        out.append(
            POSITIONAL_ARGUMENTS(
                f"@{use.written} takes keyword arguments only (Metaflow: the class does "
                "not allow arguments)",
                where,
                (defined,),
            )
        )
    elif "init" not in methods_of(use.definition.func):  # type: ignore[arg-type]
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
