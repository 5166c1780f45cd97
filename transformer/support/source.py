"""Reading a Python file into a libcst module, or a located syntax diagnostic.

Reading is the only thing done to user files: nothing is imported or executed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import field
from pathlib import Path

import libcst as cst

from .diagnostics import SYNTAX_ERROR, TOO_DEEP, UNREADABLE_FILE, CompileError, Diagnostic, Location
from .records import frozen


@frozen
class SourceFile:
    """A parsed file. `display` is the path as diagnostics and output comments name it."""

    path: Path
    display: str
    text: str
    module: cst.Module = field(repr=False, compare=False)

    def line_of(self, pattern: str) -> int:
        """1-based line of the first match of a regex (used for cheap origin comments)."""
        match = re.search(pattern, self.text, flags=re.MULTILINE)
        return self.text.count("\n", 0, match.start()) + 1 if match else 1

    def def_line(self, name: str) -> int:
        return self.line_of(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(name)}\b")


def is_docstring(stmt: cst.CSTNode) -> bool:
    """A statement that is only a string literal (a module, class or function docstring)."""
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def decode(data: bytes, display: str) -> str:
    """Decode source bytes the way Python does (BOM, encoding cookie, else UTF-8)."""
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as err:
        raise CompileError(
            [SYNTAX_ERROR(f"cannot decode source: {err}", Location(display))]
        ) from None


MAX_NESTING = 200  # CPython refuses deeper bracket nesting; libcst's parser may crash on it
_BRACKETS = re.compile(r"[()\[\]{}]")


def _check_nesting(text: str, display: str) -> None:
    """Reject absurdly nested brackets before the parser sees them (it could overflow its stack)."""
    if text.count("(") + text.count("[") + text.count("{") <= MAX_NESTING:
        return
    depth = 0
    for match in _BRACKETS.finditer(text):
        depth += 1 if match.group() in "([{" else -1
        if depth > MAX_NESTING:
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            raise CompileError(
                [
                    SYNTAX_ERROR(
                        "syntax error: too many nested parentheses", Location(display, line, column)
                    )
                ]
            )


def _syntax_error(err: SyntaxError, display: str) -> Diagnostic:
    return SYNTAX_ERROR(
        f"syntax error: {err.msg}", Location(display, err.lineno or 1, err.offset or 1)
    )


def _python_syntax_error(text: str, display: str) -> Diagnostic | None:
    """Where Python itself puts a syntax error (libcst's positions can be a line late)."""
    try:
        compile(text, display, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as err:
        return _syntax_error(err, display)
    except (ValueError, RecursionError, MemoryError, OverflowError):
        return None
    return None


MAX_LINE_FOR_FAST_PATH = 2000
MAX_EXPRESSION_DEPTH = 1000  # libcst's native parser can overflow its stack beyond this


def _check_depth(text: str, display: str) -> None:
    """Very long lines may hide an expression too deep for libcst's parser (it would crash):
    measure with Python's parser first."""
    if not any(len(ln) > MAX_LINE_FOR_FAST_PATH for ln in text.splitlines()):
        return
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise CompileError([_syntax_error(err, display)]) from None
    except (RecursionError, MemoryError):
        raise CompileError(
            [TOO_DEEP("code nested too deeply (Python itself refuses it)", Location(display))]
        ) from None
    except ValueError:
        return  # e.g. a NUL byte: the parse below reports it
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            line = getattr(node, "lineno", 1)
            raise CompileError(
                [
                    TOO_DEEP(
                        "expression nested too deeply for decoflow "
                        f"(over {MAX_EXPRESSION_DEPTH} levels)",
                        Location(display, line, 1),
                    )
                ]
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def parse_text(text: str, path: Path, display: str) -> SourceFile:
    """Parse source text; a syntax error becomes a located DF001 diagnostic."""
    _check_nesting(text, display)
    _check_depth(text, display)
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as err:
        found = _python_syntax_error(text, display)
        if found is None:
            message = str(err.message).splitlines()[0] if err.message else "invalid syntax"
            found = SYNTAX_ERROR(
                f"syntax error: {message}", Location(display, err.raw_line, err.raw_column + 1)
            )
        raise CompileError([found]) from None
    except (RecursionError, MemoryError):
        raise CompileError(
            [SYNTAX_ERROR("source too deeply nested to parse", Location(display))]
        ) from None
    return SourceFile(path=path, display=display, text=text, module=module)


def read_source(path: Path, display: str) -> SourceFile:
    """Read and parse a file."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CompileError(
            [UNREADABLE_FILE(f"cannot read file: {err.strerror}", Location(display))]
        ) from None
    text = decode(data, display)
    if text.startswith("\ufeff"):
        text = text[1:]
    return parse_text(text, path, display)
