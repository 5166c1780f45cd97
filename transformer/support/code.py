"""Small builders of libcst statements shared by the passes that write code."""

from __future__ import annotations

import functools

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
