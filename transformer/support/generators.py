"""What makes a function a custom step decorator: read from source, never imported.

A generator is one when it is decorated with Metaflow's `@user_step_decorator`, or handed to
it in a top-level assignment (`deco = user_step_decorator(gen)`). Finding the steps' custom
decorators (`passes/discover`) asks this; so does the expansion (`passes/expand`), which
runs first, to tell what a written-out step stack must not import.
"""

from __future__ import annotations

import libcst as cst

from .namespace import Defined, MetaflowName, Namespace, Resolver, Target, sole_assignment


def decorator_callee(dec: cst.Decorator) -> tuple[cst.BaseExpression, tuple[cst.Arg, ...] | None]:
    expr = dec.decorator
    if isinstance(expr, cst.Call):
        return expr.func, tuple(expr.args)
    return expr, None


def is_user_step_decorator(resolver: Resolver, ns: Namespace, func: cst.FunctionDef) -> bool:
    for dec in func.decorators:
        callee, _ = decorator_callee(dec)
        if resolver.expression(ns, callee) == MetaflowName("user_step_decorator"):
            return True
    return False


def decorator_generator(resolver: Resolver, target: Target) -> Defined | None:
    """The generator behind a custom step decorator, else None: a `def` under
    `@user_step_decorator`, or the `def` handed to it in a top-level assignment
    (`deco = user_step_decorator(gen)`, the decorator applied by a call)."""
    if not isinstance(target, Defined):
        return None
    if isinstance(target.stmt, cst.FunctionDef):
        return target if is_user_step_decorator(resolver, target.namespace, target.stmt) else None
    applied = applied_by_call(resolver, target.namespace, target.stmt)
    if applied is None or applied[0] != target.name:
        return None
    inner = resolver.expression(target.namespace, applied[1].args[0].value)
    if (
        isinstance(inner, Defined)
        and isinstance(inner.stmt, cst.FunctionDef)
        and not is_user_step_decorator(resolver, inner.namespace, inner.stmt)
    ):
        return inner
    return None


def applied_by_call(
    resolver: Resolver, ns: Namespace, stmt: cst.CSTNode
) -> tuple[str, cst.Call] | None:
    """`name = user_step_decorator(<one positional argument>)` as a top-level statement:
    the name and the call."""
    found = sole_assignment(stmt)
    if found is None:
        return None
    name, value = found
    if not (
        isinstance(value, cst.Call)
        and len(value.args) == 1
        and value.args[0].keyword is None
        and not value.args[0].star
        and resolver.expression(ns, value.func) == MetaflowName("user_step_decorator")
    ):
        return None
    return name, value
