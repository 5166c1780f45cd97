"""The decoflow compiler: a pipeline of small libcst passes.

Public API:

    compile_file(path, options=CompileOptions()) -> str       # the compiled flow's source
    compile_source(source, path, options=CompileOptions()) -> str

Both raise `CompileError` (see `diagnostics`) when the input cannot be compiled, and issue
a `CompileWarning` (Python's `warnings`) for what compiles but may differ from the original.
"""

from __future__ import annotations

from .diagnostics import CompileError, CompileWarning, Diagnostic, Location
from .options import CompileOptions

__all__ = [
    "CompileError",
    "CompileOptions",
    "CompileWarning",
    "Diagnostic",
    "Location",
    "compile_file",
    "compile_source",
]


def compile_file(path, options: CompileOptions | None = None) -> str:
    from .pipeline import compile_file as _compile_file

    return _compile_file(path, options or CompileOptions())


def compile_source(source: str, path, options: CompileOptions | None = None) -> str:
    from .pipeline import compile_source as _compile_source

    return _compile_source(source, path, options or CompileOptions())
