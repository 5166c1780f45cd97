"""Pass 2, class-based decorators: `UserStepDecorator` subclasses used as step decorators.

A decorator line that resolves to a class deriving (through classes decoflow can read) from
Metaflow's `UserStepDecorator` becomes a `DecoratorUse` whose definition is a
`ClassDecoratorDef` (the class, and its user bases in `chain`). What such a class does is
checked in pass 4 (`analyze/classes`); how its layer is written, in pass 6 (`inline/classes`).

The interface for decorators added by mutators (issue 12's expansion): a class found in a
step's stack is a `DecoratorUse` with a `ClassDecoratorDef` (see `class_use`), its arguments
keyword `cst.Arg`s with literal values.
"""

from __future__ import annotations

import re
from dataclasses import field

import libcst as cst

from ...support.namespace import Defined, MetaflowName, Namespace, Resolver, sole_assignment
from ...support.records import frozen
from . import DecoratorDef, DecoratorUse

USER_STEP_DECORATOR = "UserStepDecorator"
STEP_MUTATOR = "StepMutator"


def snake(name: str) -> str:
    """`SkipNamed` -> `skip_named`, `HTTPTimer` -> `http_timer`."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().strip("_") or "deco"


@frozen
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
    found = sole_assignment(stmt)
    if found is not None and found[0] == name and isinstance(found[1], cst.SimpleString):
        return found[1].evaluated_value  # type: ignore[return-value]
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
