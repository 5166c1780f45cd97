"""The decoflow compiler: a pipeline of small libcst passes.

Public API:

    compile_file(path, options=CompileOptions(), reads=None) -> str   # the compiled flow's source
    compile_source(source, path, options=CompileOptions(), reads=None) -> str

Both raise `CompileError` (see `support/diagnostics.py`) when the input cannot be compiled,
and issue a `CompileWarning` (Python's `warnings`) for what compiles but may differ from the
original. Given a `Reads` (`support/reads.py`), they record in it every file the compile read
and every path it looked at to find a module: what a cache of outputs must check.

Layout
------

`pipeline.py` runs the passes in order and gathers every diagnostic before anything is
written; `options.py` holds `CompileOptions`. The passes live in `passes/`, one module each,
numbered in their docstrings in the order they run:

0. `expand` (only for a flow built by mutators or configs, found statically): Metaflow
   evaluates them in a child process (`expansion/`) and the flow is written out as a plain
   one (final stacks as static decorators, resolved configs, added parameters, flattened
   bases), which the passes below then compile.
1. `discover`: the flow's `@step` methods and the custom decorators on each (`StepSite`,
   `DecoratorUse`, `DecoratorDef`), found by following names through modules read from disk.
2. `attach`: `--with` specs baked in: custom decorators become the outermost layer of every
   step lacking them; Metaflow's built-ins are written as static decorators.
3. `analyze`: each decorator generator, once: its parameters, its yields and what each says,
   which paths may yield twice or never, which `try`/`with` see a yield's exception, and which
   names are its own or its module's (`GeneratorInfo`).
4. `carry`: the module-level helpers a decorator reads, followed to their definitions and
   copied (or re-imported) into the output under collision-free names.
5. `inline`: each step rewritten, its decorators' code inlined around its body.
6. `render`: the output module assembled (steps swapped in, decorator imports dropped,
   carried code and runtime helpers added, a header) and printed.

`support/` holds what the passes share; it imports no pass: `source` (read and parse),
`resolve` and `namespace` (find modules and follow names by reading files, never importing),
`diagnostics` (located, coded messages), `locate` (positions, lazily), `names` (fresh names,
fast read-only walks), `code` (small statement builders), `scopes` (libcst scopes, resolved
once per module), `memo` (results kept per syntax-tree node), `returns` (return elimination),
`step_facts` (facts about steps read with Python's `ast`), `withspec` (`--with` syntax),
`runtime_helpers` (the helpers emitted into compiled flows, from `decoflow/runtime/`),
`paths` (project root, displayed paths), and `reads` (what a compile read, for the cache;
standard library only).

`expansion/` (when present) runs Metaflow in a child process for what cannot be read
statically. The command line (`decoflow/cli.py`) and its batch plumbing (`project.py`:
configuration, process pool, atomic writes), `cache.py` (the cache of compiled flows) and
`explain.py` sit beside this package.
"""

from __future__ import annotations

from .options import CompileOptions
from .support.diagnostics import CompileError, CompileWarning, Diagnostic, Location
from .support.reads import Reads

__all__ = [
    "CompileError",
    "CompileOptions",
    "CompileWarning",
    "Diagnostic",
    "Location",
    "Reads",
    "compile_file",
    "compile_source",
]


def compile_file(path, options: CompileOptions | None = None, reads: Reads | None = None) -> str:
    from .pipeline import compile_file as _compile_file

    return _compile_file(path, options or CompileOptions(), reads)


def compile_source(
    source: str, path, options: CompileOptions | None = None, reads: Reads | None = None
) -> str:
    from .pipeline import compile_source as _compile_source

    return _compile_source(source, path, options or CompileOptions(), reads)
