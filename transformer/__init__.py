"""The decoflow compiler: a pipeline of small libcst passes.

Public API:

    compile_file(path, options=CompileOptions(), reads=None) -> str  # the compiled source
    compile_source(source, path, options=CompileOptions(), reads=None) -> str

Both raise `CompileError` (see `support/diagnostics.py`) when the input cannot be compiled,
and issue a `CompileWarning` (Python's `warnings`) for what compiles but may differ from the
original. Given a `Reads` (`support/reads.py`), they record in it every file the compile
read and every path it looked at to find a module: what a cache of outputs must check.

Layout
------

`pipeline.py` runs the passes in order and gathers every diagnostic before anything is
written; `options.py` holds `CompileOptions`. The passes live in `passes/`, numbered in
their docstrings in the order they run. To follow one flow through the compiler, read
`pipeline.Compilation.run`, then each pass in turn:

1. `expand/` (only for a flow built by mutators or configs, which `detect` finds by reading
   files): Metaflow evaluates them in a child process (`expansion/`, asked by `obtain`) and
   `write` writes the flow out as a plain one (final stacks as static decorators, resolved
   configs, added parameters, flattened bases), which the passes below then compile; a
   base class in another module with custom decorators on its steps is flattened into the
   flow class statically (`inherit`), without a process.
2. `discover`: the flow's `@step` methods and the custom decorators on each (`StepSite`,
   `DecoratorUse`, `DecoratorDef`), found by following names through modules read from
   disk; and the custom decorators the flow file defines itself (left out of the output).
3. `attach`: `--with` specs baked in: a custom decorator becomes the outermost layer of
   every step lacking it; a Metaflow built-in is written as a static decorator.
4. `analyze/`: each decorator generator, once (`GeneratorInfo`): its `signature`, its
   `yields` and what each says, the control `flow` (a second yield, or none), its `names`
   (its own, its module's) and its `guards` (the `try`/`with` around its yields); then the
   `arguments` written on each use (and `inspect_uses`: what it asks `inspect` about a step).
5. `carry/`: the module-level names each decorator reads, followed to their definitions
   and copied (or re-imported) into the output under names that collide with nothing
   (`carrier` decides, `copies` copies; `sources` holds steps' sources for
   `inspect.getsource`, `flow_imports` what the flow imports from decorator modules for its
   own use); gives each step its `Layer`s (one per decorator, with its names in the output).
6. `inline/`: each step rewritten: first a frozen `StepPlan` (`plan`, with the
   `setting_up` rule in `setup`) names everything and says what each yield does; then
   the builders assemble the step (`step`), each decorator's code (`decorator`, with
   `guards`) and each yield (`yields`).
7. `render`: the output module assembled (steps swapped in, decorator imports dropped,
   carried code and runtime helpers added, a header) and printed.

Class-based decorators (`UserStepDecorator` subclasses, issue 13) have a `classes` module in
each pass they concern: `discover/classes` (`ClassDecoratorDef`), `analyze/classes`
(`ClassInfo`: checks, and the answers a generator's analysis gives), `carry/classes` (the
class carried with its base swapped, one instance per use), `inline/classes` (the class
layer planned and built: pre_step -> what it wraps -> post_step); `render` places the
instances.

A pass imports only support code and what earlier passes produce.

`support/` holds what the passes share, and imports no pass: `source` (read and parse),
`resolve` and `namespace` (find modules and follow names by reading files, never importing),
`generators` (what makes a function a custom step decorator), `diagnostics` (located, coded
messages, and the registry of every DF code), `locate` (positions, computed only for a
diagnostic), `names` (fresh names, fast read-only walks), `rename` (the one renamer, by
node), `code` (small statement builders, literals written as users write them), `scopes`
(libcst scopes, resolved once per module), `memo` (results kept per syntax-tree node),
`returns` (a `return` that leaves only its inlined block), `step_facts` (facts about steps
read with Python's `ast`), `newer_metaflow` (the names only Metaflow 2.16+ has, and the
output's imports that still need them: DF602), `withspec` (the `--with` syntax),
`runtime_helpers` (the helpers compiled flows call, read from `decoflow/runtime/`), `paths`
(the project root, displayed paths) and `reads` (what a compile read, for the cache;
standard library only).

`expansion/` (when present) runs Metaflow in a child process for what cannot be read
statically. Beside this package sit the command line (`decoflow/cli.py`), its batch and
IO plumbing (`project.py`: configuration, process pool, atomic writes), the cache of
compiled flows (`cache.py`) and the `explain` subcommand (`explain.py`).
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
