"""The step's own statements, split: its docstring, its code, and its literal `self.next`."""

from __future__ import annotations

import libcst as cst

from ...support.code import statements_of
from ...support.records import frozen
from ...support.source import is_docstring
from ..discover import StepSite
from .dead_handlers import is_bare_pass


@frozen
class StepParts:
    """The step's own statements, split: docstring, code, and its literal `self.next`."""

    head: tuple[cst.BaseStatement, ...]
    core: tuple[cst.BaseStatement, ...]
    tail: tuple[cst.BaseStatement, ...]


def split_step(site: StepSite) -> StepParts:
    """The step's parts; a body of only `pass` (no comment on it) has no code of its own:
    the decorators' code stands in its place, and `pass` would be noise there."""
    stmts = statements_of(site.func.body)
    head = (stmts.pop(0),) if stmts and is_docstring(stmts[0]) else ()
    tail = (stmts.pop(),) if stmts and is_next_call(stmts[-1], site.self_name) else ()
    if all(is_bare_pass(stmt) for stmt in stmts):
        stmts = []
    return StepParts(head, tuple(stmts), tail)


def is_next_call(stmt: cst.BaseStatement, self_name: str) -> bool:
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1):
        return False
    expr = stmt.body[0]
    if not (isinstance(expr, cst.Expr) and isinstance(expr.value, cst.Call)):
        return False
    func = expr.value.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value == "next"
        and isinstance(func.value, cst.Name)
        and func.value.value == self_name
    )


def has_arguments(next_line: cst.BaseStatement) -> bool:
    """A transition with arguments (foreach=, condition=, num_parallel=) reads artifacts."""
    call = next_line.body[0].value  # type: ignore[attr-defined]
    return any(arg.keyword is not None for arg in call.args) or any(
        isinstance(arg.value, cst.Dict) for arg in call.args
    )
