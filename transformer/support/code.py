"""Small builders of libcst statements shared by the passes that write code."""

from __future__ import annotations

import functools
import math
from typing import Any

import libcst as cst


def comment_line(text: str) -> cst.EmptyLine:
    return cst.EmptyLine(comment=cst.Comment(f"# {text}"))


def trailing(stmt: cst.BaseStatement, text: str) -> cst.BaseStatement:
    assert isinstance(stmt, cst.SimpleStatementLine)
    return stmt.with_changes(
        trailing_whitespace=cst.TrailingWhitespace(
            whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(f"# {text}")
        )
    )


def with_comment(stmt: cst.BaseStatement, text: str) -> cst.BaseStatement:
    return stmt.with_changes(leading_lines=[comment_line(text), *stmt.leading_lines])


@functools.lru_cache(maxsize=4096)
def line(code: str) -> cst.BaseStatement:
    """A statement from source (cached: nodes are immutable, so sharing them is safe)."""
    return cst.parse_statement(code)


def block(stmts: list[cst.BaseStatement]) -> cst.IndentedBlock:
    return cst.IndentedBlock(body=stmts or [line("pass")])


def statements_of(suite: cst.BaseSuite) -> list[cst.BaseStatement]:
    if isinstance(suite, cst.SimpleStatementSuite):
        return [cst.SimpleStatementLine(body=list(suite.body))]
    return list(suite.body)


def string_literal(text: str) -> str:
    """Python source for a string, quoted as black quotes it: in double quotes, unless that
    needs more escaped quotes than single quotes would."""
    if text.count('"') > text.count("'"):
        return repr(text)  # single quotes (Python's repr picks them here)
    body = "".join('\\"' if ch == '"' else "'" if ch == "'" else repr(ch)[1:-1] for ch in text)
    return f'"{body}"'


def literal_source(value: Any) -> str:
    """Python source for a literal value (JSON-like, tuples too), written as a user would:
    strings in double quotes, `float("inf")` for what has no literal."""
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'
    if isinstance(value, dict):
        items = ", ".join(f"{literal_source(k)}: {literal_source(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal_source(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(literal_source(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)
