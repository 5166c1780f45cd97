"""Diagnostics: located, coded messages (`path:line:col: DFxxx message`), like ruff and mypy.

Every problem the compiler finds in its input becomes a `Diagnostic`; a compile that finds
any raises `CompileError` carrying them all, and writes nothing. A compile that succeeds may
still warn (`CompileWarning`, codes DF6xx): the output is written, the warning printed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a source file; `path` is as the user should read it (relative where possible)."""

    path: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem: a code (`DF101`), a message, where it is, and related places (`note`s)."""

    code: str
    message: str
    location: Location
    notes: tuple[tuple[Location, str], ...] = ()

    def format(self) -> str:
        lines = [f"{self.location}: {self.code} {self.message}"]
        lines.extend(f"{where}: note: {text}" for where, text in self.notes)
        return "\n".join(lines)


class CompileError(Exception):
    """Raised when a flow cannot be compiled; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


class CompileWarning(UserWarning):
    """Issued (with `warnings.warn`) when a flow compiles but something in it may behave
    differently from the original; `diagnostic` says what and where (`DF6xx`)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic
        super().__init__(diagnostic.format())
