"""Import lines as black and a careful user write them.

* `merge_metaflow_imports`: the `from metaflow import X` lines the compile adds (a carried
  helper's `current`, a `--with` built-in) join the flow's own one-line
  `from metaflow import ...`, kept sorted if it was, instead of a second line under it;
* `wrap_long_imports`: a `from m import a, b, ...` past the line length is wrapped in
  parentheses, one name a line with a trailing comma.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from .namespace import dotted_name

#: The longest line black writes (the project's line length).
LINE_LENGTH = 100

_PRINTER = cst.Module(body=[])


def _metaflow_names(stmt: cst.BaseStatement) -> list[str] | None:
    """The names of a plain one-line `from metaflow import a, b as c` (as written, without
    commas), or None for any other statement (parenthesized, `*`, several statements)."""
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1):
        return None
    small = stmt.body[0]
    if not (
        isinstance(small, cst.ImportFrom)
        and not small.relative
        and small.module is not None
        and dotted_name(small.module) == "metaflow"
        and not isinstance(small.names, cst.ImportStar)
        and small.lpar is None
    ):
        return None
    return [
        _PRINTER.code_for_node(a.with_changes(comma=cst.MaybeSentinel.DEFAULT)) for a in small.names
    ]


def _commented(stmt: cst.BaseStatement) -> bool:
    return any(ln.comment is not None for ln in stmt.leading_lines) or (
        isinstance(stmt, cst.SimpleStatementLine) and stmt.trailing_whitespace.comment is not None
    )


def _bound(stmt: cst.BaseStatement) -> set[str]:
    """The names a top-level import line binds."""
    out: set[str] = set()
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(
                small.names, cst.ImportStar
            ):
                for alias in small.names:
                    name = alias.asname.name if alias.asname is not None else alias.name
                    out.add((_PRINTER.code_for_node(name)).split(".")[0])
    return out


def merge_metaflow_imports(
    body: list[cst.BaseStatement], added: Sequence[cst.BaseStatement]
) -> list[cst.BaseStatement]:
    """Joins the uncommented `from metaflow import X` lines of `added` to the flow's own
    one-line `from metaflow import ...` in `body` (changed in place); returns the others.
    A name another line of the flow binds is left on its own line, so that what each name
    ends up bound to stays as it was."""
    at = next((i for i, s in enumerate(body) if _metaflow_names(s) is not None), None)
    if at is None:
        return list(added)
    written = _metaflow_names(body[at]) or []
    others = set().union(*(_bound(s) for i, s in enumerate(body) if i != at))
    joined: list[str] = []
    rest: list[cst.BaseStatement] = []
    for stmt in added:
        names = _metaflow_names(stmt)
        if names is None or _commented(stmt) or _bound(stmt) & others:
            rest.append(stmt)
            continue
        joined.extend(n for n in names if n not in written and n not in joined)
    if joined:
        merged = [*written, *joined]
        if written == sorted(written):
            merged.sort()
        new = cst.parse_statement(f"from metaflow import {', '.join(merged)}")
        old = body[at]
        assert isinstance(old, cst.SimpleStatementLine)
        body[at] = new.with_changes(
            leading_lines=old.leading_lines, trailing_whitespace=old.trailing_whitespace
        )
    return rest


def wrap_long_imports(module: cst.Module) -> cst.Module:
    """Each top-level `from m import a, b, ...` longer than `LINE_LENGTH` (as the compile
    may write it: names merged in, an alias renamed), wrapped as black wraps it."""
    body = list(module.body)
    for i, stmt in enumerate(body):
        wrapped = _wrapped_import(stmt)
        if wrapped is not None:
            body[i] = wrapped
    return module.with_changes(body=body)


def _wrapped_import(stmt: cst.BaseStatement) -> cst.BaseStatement | None:
    """`stmt` in parentheses, one name a line with a trailing comma, when it is a one-line
    `from ... import` past the line length; else None."""
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1):
        return None
    small = stmt.body[0]
    if (
        not isinstance(small, cst.ImportFrom)
        or isinstance(small.names, cst.ImportStar)
        or small.lpar is not None
    ):
        return None
    text = _PRINTER.code_for_node(stmt.with_changes(leading_lines=[]))
    if len(text.rstrip("\n")) <= LINE_LENGTH:
        return None
    names = "".join(
        f"    {_PRINTER.code_for_node(a.with_changes(comma=cst.MaybeSentinel.DEFAULT))},\n"
        for a in small.names
    )
    head = _PRINTER.code_for_node(small.with_changes(names=[cst.ImportAlias(cst.Name("x"))]))
    head = head[: -len("x")]
    comment = stmt.trailing_whitespace.comment
    note = f"  {comment.value}" if comment is not None else ""
    new = cst.parse_statement(f"{head}({note}\n{names})\n")
    return new.with_changes(leading_lines=stmt.leading_lines)
