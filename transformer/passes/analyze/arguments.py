"""The arguments written on each use: what the compiled step builds `attributes` from.

Metaflow hands a custom decorator its arguments as the `attributes` dict; the compiled step
writes that dict out itself, next to the step. So the arguments must be keywords (DF101),
the decorator must take a 4th parameter to receive them (DF102), and each value must mean
the same thing there: a literal, a module-level name of the flow, or a builtin (DF103).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import libcst as cst

from ...support.diagnostics import (
    ARGUMENTS_WITHOUT_ATTRIBUTES,
    NON_LITERAL_ARGUMENT,
    POSITIONAL_ARGUMENTS,
    CompileError,
    Diagnostic,
)
from ...support.locate import LazyLocation, Locator
from ...support.names import child_nodes
from ...support.namespace import Namespace, bound_names
from ...support.source import SourceFile
from ..discover import DecoratorUse, StepSite
from .classes import ClassInfo, check_class_use

if TYPE_CHECKING:
    from . import GeneratorInfo


def check_arguments(
    sites: Sequence[StepSite],
    infos: Mapping[tuple[str, str], GeneratorInfo | ClassInfo],
    locator: Locator,
    flow: SourceFile,
    flow_ns: Namespace,
) -> None:
    """Raise every problem with the arguments of the decorator uses in `sites`, once."""
    diagnostics: list[Diagnostic] = []
    for site in sites:
        for use in site.uses:
            if use.arguments is not None:
                info = infos[use.definition.key]
                if isinstance(info, ClassInfo):
                    where = LazyLocation(locator, flow, use.node)
                    diagnostics.extend(
                        check_class_use(
                            use, info, where, lambda e: _non_literal(e, flow_ns), locator
                        )
                    )
                    continue
                diagnostics.extend(_check_use(use, len(info.params), locator, flow, flow_ns))
    if diagnostics:
        unique = {(d.code, d.message, str(d.location)): d for d in diagnostics}
        raise CompileError(list(unique.values()))


def _check_use(
    use: DecoratorUse, params: int, locator: Locator, flow: SourceFile, flow_ns: Namespace
) -> list[Diagnostic]:
    args = use.arguments or ()
    where = LazyLocation(locator, flow, use.node)
    defined = (
        LazyLocation(locator, use.definition.namespace.source, use.definition.func),
        f"@{use.definition.name} defined here",
    )
    if any(a.keyword is None for a in args):
        stars = any(a.star == "**" for a in args)
        what = "`**` arguments" if stars else "positional arguments"
        message = f"@{use.written} takes keyword arguments written out (k=v); it cannot take {what}"
        return [POSITIONAL_ARGUMENTS(message, where, (defined,))]
    if args and params == 3:
        message = (
            f"@{use.written} is given arguments but its definition takes 3 parameters; "
            "add a 4th (attributes) to receive them"
        )
        return [ARGUMENTS_WITHOUT_ATTRIBUTES(message, where, (defined,))]
    out = []
    for arg in args:
        bad = _non_literal(arg.value, flow_ns)
        if bad:
            assert arg.keyword is not None
            message = (
                f"@{use.written}: argument '{arg.keyword.value}' uses '{bad}', which is not a "
                "literal or a module-level name"
            )
            out.append(NON_LITERAL_ARGUMENT(message, where, (defined,)))
    return out


def _non_literal(expr: cst.BaseExpression, flow_ns: Namespace) -> str | None:
    """The first name in a decorator argument that is neither the flow module's, a
    builtin, nor bound inside the argument (a comprehension's target); lambdas aside."""
    ns = flow_ns.bindings
    local: set[str] = set()
    candidates: list[str] = []
    stack: list[cst.CSTNode] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Lambda):
            continue
        if isinstance(node, cst.Name):
            if node.value not in ns and not hasattr(builtins, node.value):
                candidates.append(node.value)
            continue
        if isinstance(node, cst.Attribute):
            stack.append(node.value)
            continue
        if isinstance(node, cst.CompFor):
            local.update(bound_names(node.target))
        stack.extend(reversed(child_nodes(node)))
    bad = [n for n in candidates if n not in local]
    return bad[0] if bad else None
