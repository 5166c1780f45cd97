"""The compiler pipeline: the passes of `passes/`, wired in the order they run.

    read the flow (support/source)
    1. expand    only a flow built by mutators or configs (found by reading files):
                 evaluated by Metaflow (in a child process, `transformer/expansion`) and
                 written out as a plain flow, which the passes below then compile
    2. discover  the steps and the custom decorators on each
    3. attach    `--with` specs (loaded only when there are some)
    4. analyze   each decorator once, then the arguments of each use
    5. carry     the module-level names the decorators read, into the output
    6. inline    each step: planned, then built
    7. render    the output module, printed

Class-based decorators (`UserStepDecorator` subclasses) go through the same passes, each
with its own module: `discover/classes` finds them, `analyze/classes` checks them,
`carry/classes` carries each class (base swapped) and names one instance per use,
`inline/classes` plans and builds the class layer, `render` places the instances.

Every diagnostic is gathered before anything is written: a pass that finds problems
raises one `CompileError` carrying all it found.
"""

from __future__ import annotations

import ast
import functools
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import libcst as cst

from .options import CompileOptions
from .passes.analyze import Analyses, GeneratorAnalyzer, analyze_uses
from .passes.carry import carry, flow_reads
from .passes.discover import StepFinder, StepSite, in_flow_decorators
from .passes.inline import rewrite_step
from .passes.render import (
    builtin_imports,
    droppable_imports,
    header,
    module_code,
    place_classes,
    render,
    render_header_only,
)
from .support.config_pickling import add_config_pickling, config_vars, keeps_config_value
from .support.diagnostics import (
    TOO_DEEP,
    UNREADABLE_FILE,
    CompileError,
    CompileWarning,
    Diagnostic,
    Location,
)
from .support.locate import Locator
from .support.names import identifiers_in_text, variable_names
from .support.namespace import Resolver, build_namespace
from .support.newer_metaflow import newer_metaflow_imports
from .support.paths import display_path, find_root
from .support.reads import Reads
from .support.records import frozen
from .support.resolve import ModuleFinder, pythonpath_roots
from .support.runtime_helpers import helper_names, helper_texts
from .support.source import SourceFile, decode, parse_text
from .support.step_facts import step_facts

if TYPE_CHECKING:
    from .passes.attach import BuiltinAttach


def compile_file(path: Path | str, options: CompileOptions, reads: Reads | None = None) -> str:
    """The compiled flow. `reads`, when given, records what the compile read (the flow file
    and every module looked up, found or not)."""
    path = Path(path).resolve()
    root = (options.project_root or find_root(path.parent)).resolve()
    display = display_path(path, root)
    try:
        if reads is not None:
            st = path.stat()
            reads.files[path] = (st.st_size, st.st_mtime_ns)
        data = path.read_bytes()
    except OSError as err:
        where = Location(display)
        raise CompileError([UNREADABLE_FILE(f"cannot read file: {err.strerror}", where)]) from None
    text = decode(data, display)
    return compile_source(text, path, options, reads)


def compile_source(
    source: str, path: Path | str, options: CompileOptions, reads: Reads | None = None
) -> str:
    path = Path(path).resolve()
    root = (options.project_root or find_root(path.parent)).resolve()
    display = display_path(path, root)
    bom = source.startswith("\ufeff")
    text = source[1:] if bom else source
    flow_source = _reparse(text, path, display) or parse_text(text, path, display)
    limit = sys.getrecursionlimit()
    # long expressions make libcst's visitors recurse deeply
    sys.setrecursionlimit(max(limit, 20000))
    try:
        output = prepare(flow_source, options, root, reads).run()
    except RecursionError:
        message = "code nested too deeply for decoflow to analyse"
        raise CompileError([TOO_DEEP(message, Location(display))]) from None
    finally:
        sys.setrecursionlimit(limit)
    return ("\ufeff" + output) if bom and output is not source else output


def _reparse(text: str, path: Path, display: str) -> SourceFile | None:
    """A flow a batch set aside for expansion (pass 1), compiled again once expanded: the
    first round's parse of the same text, or None."""
    expand = sys.modules.get("decoflow.transformer.passes.expand.obtain")
    return None if expand is None else expand.reparse(text, path, display)


def prepare(
    flow_source: SourceFile, options: CompileOptions, root: Path, reads: Reads | None = None
) -> Compilation:
    """The compilation of a flow, after pass 1 (`expand`): a flow built by mutators or
    configs is expanded by Metaflow and written out as a plain flow, which passes 2 to 7
    then compile (`compilation.expansion` keeps what Metaflow reported)."""
    compilation = Compilation(flow_source, options, reads)
    trigger = compilation.expansion_trigger()
    if trigger is None:
        return _flattened(compilation, flow_source, options, reads)
    from dataclasses import replace

    from .passes.expand import header_lines, obtain_expansion, write_static

    expansion = obtain_expansion(flow_source, options, trigger, lambda p: display_path(p, root))
    text = write_static(
        flow_source, expansion, compilation.resolver, compilation.flow_ns, compilation.locator
    )
    static = parse_text(text, flow_source.path, flow_source.display)
    if reads is not None:
        _record_expansion_reads(reads, expansion)
    compilation = Compilation(static, replace(options, with_specs=()), reads)
    compilation.origin = flow_source
    compilation.expansion = expansion
    compilation.extra_header = header_lines(expansion, options, flow_source.path.parent)
    return compilation


def _flattened(
    compilation: Compilation, flow_source: SourceFile, options: CompileOptions, reads
) -> Compilation:
    """Pass 1 for a flow that needs no expansion: base classes in other modules that use
    custom decorators are flattened into the flow class, statically (`expand.inherit`);
    any other flow is compiled as it is."""
    from .passes.expand import find_custom_bases

    if find_custom_bases(compilation.resolver, compilation.flow_ns, compilation.locator) is None:
        return compilation
    from .passes.expand.inherit import flatten_bases

    text, lines = flatten_bases(
        flow_source, compilation.resolver, compilation.flow_ns, compilation.locator
    )
    flattened = Compilation(parse_text(text, flow_source.path, flow_source.display), options, reads)
    flattened.origin = flow_source
    flattened.extra_header = lines
    return flattened


def _record_expansion_reads(reads: Reads, expansion) -> None:
    """What Metaflow read for the expansion, for the cache: config files, and the files of
    the mutators, custom decorators and base classes it reported."""
    paths = [Path(c.source["path"]) for c in expansion.configs.values() if "path" in c.source]
    users = [*expansion.flow_mutators]
    for stack in expansion.steps.values():
        users += [*stack.wrappers, *stack.mutators]
    paths += [u.file for u in users if u.file is not None]
    paths += [Path(b["file"]) for b in expansion.bases if b.get("file")]
    for path in paths:
        if path not in reads.files:
            try:
                stat = path.stat()
                reads.files[path] = (stat.st_size, stat.st_mtime_ns)
            except OSError:
                reads.files[path] = None


@frozen
class Analysed:
    """What passes 2 to 4 (discover, attach, analyze) found: the steps (with `--with`
    decorators attached), the built-in decorators `--with` adds, and the analysis of every
    decorator used."""

    sites: tuple[StepSite, ...]
    builtins: tuple[BuiltinAttach, ...]
    infos: Analyses


class Compilation:
    """One flow file being compiled."""

    expansion = None  # set when the flow was expanded by Metaflow (pass 1, expand)
    origin: SourceFile | None = None  # the flow as written, when pass 1 rewrote it
    extra_header: list[str] = []  # noqa: RUF012 - replaced, never mutated

    def __init__(
        self, source: SourceFile, options: CompileOptions, reads: Reads | None = None
    ) -> None:
        self.source = source
        self.options = options
        roots = (source.path.parent, *options.search_path, *pythonpath_roots())
        self.finder = ModuleFinder(roots, reads)
        self.resolver = Resolver(self.finder)
        self.locator = Locator()
        self.flow_ns = build_namespace(source, None)

    def expansion_trigger(self):
        """Why this flow needs Metaflow to evaluate it (pass 1, expand), or None: read
        statically."""
        from .passes.expand import find_trigger

        specs = tuple(self.options.with_specs)
        found = find_trigger(self.resolver, self.flow_ns, self.locator, specs)
        if found is None and (self.options.configs or self.options.config_values):
            # A config given for this flow (`--config`, `--config-value`, or per flow in
            # [tool.decoflow]) is the value the compiled flow must be built with, as `run
            # --config-value` builds it: Metaflow resolves it (and reports a bad one), also
            # when only built-in decorators or steps read it.
            from .passes.expand import Trigger

            given = [
                *(f"--config {name}" for name, _ in self.options.configs),
                *(f"--config-value {name}" for name, _ in self.options.config_values),
            ]
            found = Trigger(Location(self.source.display, 1, 1), given[0])
        return found

    def analyse(self) -> Analysed:
        """Passes 2 to 4 (discover, attach, analyze): everything before the output is
        written."""
        finder = StepFinder(self.resolver, self.flow_ns, self.locator)
        sites = finder.find()
        builtins: list[BuiltinAttach] = []
        if self.options.with_specs:  # the --with pass is loaded only when there is one
            from .passes.attach import WithAttacher

            where = Location(self.source.display, 1, 1)
            attacher = WithAttacher(self.resolver, self.flow_ns, finder, where)
            sites, builtins = attacher.attach(tuple(self.options.with_specs), sites)
        analyzer = GeneratorAnalyzer(self.resolver, self.locator, self.source.module)
        infos = analyze_uses(
            sites, analyzer, self.locator, self.source, self.flow_ns, self.expansion is not None
        )
        return Analysed(tuple(sites), tuple(builtins), infos)

    def run(self) -> str:
        """Passes 2 to 7 on the flow (as written, or as expand wrote it out): the compiled
        source."""
        in_flow = in_flow_decorators(self.resolver, self.flow_ns)
        found = self.analyse()
        sites, builtins = found.sites, found.builtins
        if not any(site.uses for site in sites) and not in_flow and not builtins:
            if self.extra_header:  # expanded: say so even when nothing is left to inline
                head = header(
                    self.source.display, self.options.with_specs, sites, self.extra_header
                )
                self._report_warnings(self._kept_imports(self.source.module))
                return render_header_only(self.source.module, head)
            # nothing to compile: the flow is its own output (unless a step keeps a Config's
            # value as an artifact: see config_pickling)
            self._report_warnings(self._kept_imports(self.source.module))
            return self._config_pickling(self.source.text, sites, only_if_kept=True)

        # The flow's own names: carried code must not take them (read as a superset from the
        # text if Python's parser refused what libcst accepted).
        tree = self._ast
        own = identifiers_in_text(self.source.text) if tree is None else variable_names(tree)
        reserved = own | set(helper_names())
        used = flow_reads(self._ast, self.source.text, sites, in_flow, found.infos)
        layers, carried = carry(
            self.resolver, self.flow_ns, reserved, sites, found.infos, self.locator, used
        )
        # What a step's locals must not shadow: the module's names, carried names, helpers.
        module_names = set(self.flow_ns.names) | set(helper_names()) | (carried.claimed - reserved)

        steps: dict[cst.FunctionDef, cst.FunctionDef] = {}
        runtime: set[str] = set()
        facts = step_facts(self._ast) if any(layers) else {}
        for site, step_layers in zip(sites, layers):
            func = site.func
            if step_layers:
                fact = facts.get((site.class_name, site.name))
                func, plan = rewrite_step(site, step_layers, module_names, fact)
                runtime |= plan.runtime
            if builtins:
                from .passes.attach import add_builtins

                func = add_builtins(func, list(builtins), self.resolver, self.flow_ns)
            if func is not site.func:
                steps[site.func] = func

        droppable = droppable_imports(self.resolver, self.flow_ns) | carried.flow_imports
        still_used = used[0] - carried.flow_imports
        module = render(
            self.source.module,
            steps=steps,
            removed_defs=frozenset(in_flow.values()),
            droppable_imports=droppable,
            still_used=still_used,
            carried_imports=[*builtin_imports(builtins), *carried.imports],
            carried_defs=carried.definitions,
            runtime_defs=helper_texts(runtime),
            header=header(
                self.source.display, self.options.with_specs, sites, self.extra_header
            ),
        )
        module = place_classes(module, carried.classes)
        self._report_warnings([*carried.warnings, *self._kept_imports(module)])
        return self._config_pickling(module_code(module), sites)

    def _kept_imports(self, output: cst.Module) -> list[Diagnostic]:
        """DF602: what the output still imports that needs Metaflow 2.16+, a project module
        or a name from metaflow (`support.newer_metaflow`: an import from metaflow, the
        standard library or an installed package makes it look nothing up)."""
        origin = self.origin or self.source
        return newer_metaflow_imports(output, origin, self.resolver, self.locator)

    def _config_pickling(
        self, text: str, sites: Sequence[StepSite], only_if_kept: bool = False
    ) -> str:
        """`text` with `support.config_pickling`'s shim when the flow declares a Config
        (`only_if_kept`: and a step may keep its value as an artifact); a flow expanded by
        Metaflow has it already, from `expand.write`."""
        if self.expansion is not None:
            return text
        configs = config_vars(self._ast, self.resolver, self.flow_ns)
        if not configs or (only_if_kept and not keeps_config_value(self._ast, configs)):
            return text
        return add_config_pickling(text, {site.class_name for site in sites})

    @staticmethod
    def _report_warnings(found: Sequence[Diagnostic]) -> None:
        """Each warning once (a decorator on several steps finds the same), as a Python
        warning: the CLI prints them as `path:line:col: DF601 ...`."""
        seen: set[tuple[str, str]] = set()
        for diag in found:
            key = (str(diag.location), diag.message)
            if key not in seen:
                seen.add(key)
                warnings.warn(CompileWarning(diag), stacklevel=4)

    @functools.cached_property
    def _ast(self) -> ast.Module | None:
        """The flow parsed by Python's own (C) parser, once, for the questions that need no
        libcst node (None if Python refuses what libcst accepted)."""
        try:
            return ast.parse(self.source.text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
