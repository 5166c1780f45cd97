"""The compiled step's own lines kept within the line length, as black would keep them.

Lines the compiler writes can run long once nested: a call of a runtime helper with its
arguments (`error = decoflow_post_step(instance, "step", self, error, True)`), or a line
followed by the compiler's note (`decoflow_next_with(...)  # @d skips the step; ...`).
After the step is built (its depth known), each such line past `LINE_LENGTH` is laid
out again: the note goes on a comment line of its own above the code, and a helper's
call puts its arguments on the next line (one a line, with a trailing comma, when they do
not fit on one), as black does. The user's code, and the decorators', is left as written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import libcst as cst

from ...support.import_lines import LINE_LENGTH

_PRINTER = cst.Module(body=[])
#: The compiler's own trailing notes (see `inline.yields`, `step`, `classes`, `guards`).
_NOTES = re.compile(
    r"# (@\S+ (skips the step|replaces the step|finished without yielding)"
    r"|decoflow: |what @\S+'s post_step left|a failure of a decorator below|as in the original)"
)
_INDENT = 4


def laid_out(
    stmts: Sequence[cst.BaseStatement], depth: int, functions: frozenset[str] = frozenset()
) -> list[cst.BaseStatement]:
    """`stmts`, at `depth` levels of indentation, with the compiler's long lines laid out;
    `functions`: the local functions the compiler made (what a decorator runs where it
    yields), laid out too (other functions and classes are the decorators' code)."""
    return [_statement(stmt, depth, functions) for stmt in stmts]


def _statement(stmt: cst.CSTNode, depth: int, functions: frozenset[str]) -> cst.CSTNode:
    """`stmt` with its lines laid out; a compound statement's blocks one level deeper."""
    if isinstance(stmt, cst.SimpleStatementLine):
        return _simple(stmt, depth * _INDENT)
    if isinstance(stmt, cst.ClassDef) or (
        isinstance(stmt, cst.FunctionDef) and stmt.name.value not in functions
    ):
        return stmt
    changes: dict[str, object] = {}
    for name in ("body", "orelse", "finalbody", "handlers", "cases"):
        part = getattr(stmt, name, None)
        if isinstance(part, cst.IndentedBlock):
            changes[name] = part.with_changes(body=laid_out(part.body, depth + 1, functions))
        elif isinstance(part, (cst.If, cst.Else, cst.Finally)):  # elif, else, finally
            changes[name] = _statement(part, depth, functions)
        elif isinstance(part, (list, tuple)) and part:  # handlers, match cases
            changes[name] = [_statement(p, depth, functions) for p in part]
    return stmt.with_changes(**changes) if changes else stmt


def _width(stmt: cst.SimpleStatementLine, indent: int) -> int:
    text = _PRINTER.code_for_node(stmt.with_changes(leading_lines=[]))
    return indent + max(len(line) for line in text.rstrip("\n").split("\n"))


def _simple(stmt: cst.SimpleStatementLine, indent: int) -> cst.SimpleStatementLine:
    if stmt.trailing_whitespace.comment is None and not _helper_call(stmt):
        return stmt  # nothing the compiler lays out (the common case: no printing)
    if _width(stmt, indent) <= LINE_LENGTH:
        return stmt
    comment = stmt.trailing_whitespace.comment
    if comment is not None and _NOTES.match(comment.value):
        stmt = stmt.with_changes(
            leading_lines=[*stmt.leading_lines, cst.EmptyLine(comment=comment)],
            trailing_whitespace=cst.TrailingWhitespace(),
        )
        if _width(stmt, indent) <= LINE_LENGTH:
            return stmt
    return _wrapped_call(stmt, indent) or stmt


def _helper_call(stmt: cst.SimpleStatementLine) -> tuple[cst.Call, str] | None:
    """The runtime helper's call of `stmt` (`decoflow_...(...)`, alone or assigned to one
    name) and what is before it, if that is what `stmt` is."""
    if len(stmt.body) != 1:
        return None
    small = stmt.body[0]
    if isinstance(small, cst.Expr):
        call, head = small.value, ""
    elif (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
    ):
        call, head = small.value, f"{small.targets[0].target.value} = "
    else:
        return None
    if (
        isinstance(call, cst.Call)
        and isinstance(call.func, cst.Name)
        and call.func.value.startswith("decoflow_")
        and call.args
    ):
        return call, head
    return None


def _wrapped_call(stmt: cst.SimpleStatementLine, indent: int) -> cst.SimpleStatementLine | None:
    """A runtime helper's call with its arguments on the next line, or one a line when
    they do not fit there."""
    found = _helper_call(stmt)
    if found is None:
        return None
    call, head = found
    assert isinstance(call.func, cst.Name)
    args = [
        _PRINTER.code_for_node(a.with_changes(comma=cst.MaybeSentinel.DEFAULT)) for a in call.args
    ]
    one_line = ", ".join(args)
    if indent + _INDENT + len(one_line) <= LINE_LENGTH:
        inside = f"    {one_line}\n"
    else:
        inside = "".join(f"    {a},\n" for a in args)
    comment = stmt.trailing_whitespace.comment
    note = f"  {comment.value}" if comment is not None else ""
    new = cst.parse_statement(f"{head}{call.func.value}(\n{inside}){note}\n")
    return new.with_changes(leading_lines=stmt.leading_lines)  # type: ignore[return-value]
