"""The compiler pipeline: read -> discover -> analyse -> carry -> rewrite steps -> render.

Each pass lives in its own module; this one only wires them together and gathers every
diagnostic before anything is written.
"""

from __future__ import annotations

import ast
import functools
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import libcst as cst

from .options import CompileOptions
from .passes.analyze import GeneratorAnalyzer, GeneratorInfo
from .passes.carry import Carrier
from .passes.classes import (
    ClassAnalyzer,
    ClassDecoratorDef,
    ClassInfo,
    ClassOutput,
    ClassStepRewriter,
    is_decorator_class,
)
from .passes.discover import (
    StepFinder,
    StepSite,
    applied_by_call,
    decorator_generator,
    is_user_step_decorator,
)
from .passes.inline import Layer, StepRewriter
from .passes.render import module_code, render, render_header_only
from .support.diagnostics import (
    ARGUMENTS_WITHOUT_ATTRIBUTES,
    INSPECT_READS_COMPILED,
    NON_LITERAL_ARGUMENT,
    POSITIONAL_ARGUMENTS,
    TOO_DEEP,
    UNREADABLE_FILE,
    CompileError,
    CompileWarning,
    Diagnostic,
    Location,
)
from .support.inspect_uses import THIS_STEP, native_source, string_constant
from .support.locate import LazyLocation, Locator
from .support.names import child_nodes, identifiers_in_text, name_nodes
from .support.namespace import (
    METAFLOW,
    ImportFrom,
    ImportModule,
    MetaflowName,
    Namespace,
    Resolver,
    Unresolved,
    build_namespace,
)
from .support.paths import display_path, find_root
from .support.reads import Reads
from .support.resolve import ModuleFinder, pythonpath_roots
from .support.runtime_helpers import helper_definitions, helper_names
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
        raise CompileError([UNREADABLE_FILE(f"cannot read file: {err.strerror}", Location(display))]) from None
    text = decode(data, display)
    return compile_source(text, path, options, reads)


def compile_source(
    source: str, path: Path | str, options: CompileOptions, reads: Reads | None = None
) -> str:
    path = Path(path).resolve()
    root = (options.project_root or find_root(path.parent)).resolve()
    display = display_path(path, root)
    bom = source.startswith("\ufeff")
    flow_source = parse_text(source[1:] if bom else source, path, display)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))  # long expressions make libcst's visitors recurse deeply
    try:
        output = _compile(flow_source, options, root, reads)
    except RecursionError:
        raise CompileError(
            [TOO_DEEP("code nested too deeply for decoflow to analyse", Location(display))]
        ) from None
    finally:
        sys.setrecursionlimit(limit)
    return ("\ufeff" + output) if bom and output is not source else output


def _compile(
    flow_source: SourceFile, options: CompileOptions, root: Path, reads: Reads | None = None
) -> str:
    return prepare(flow_source, options, root, reads).run()


def prepare(
    flow_source: SourceFile, options: CompileOptions, root: Path, reads: Reads | None = None
) -> Compilation:
    """The compilation of a flow; one built by mutators or configs is first expanded by
    Metaflow and written out as a static flow (pass 1b, `expand`), which the passes below
    then compile (`compilation.expansion` keeps what Metaflow reported)."""
    compilation = Compilation(flow_source, options, reads)
    trigger = compilation.expansion_trigger()
    if trigger is None:
        return compilation
    from dataclasses import replace

    from .passes.expand import header_lines, obtain, write_static

    expansion = obtain(flow_source, options, trigger, lambda p: display_path(p, root))
    text = write_static(
        flow_source, expansion, compilation.resolver, compilation.flow_ns, compilation.locator
    )
    static = parse_text(text, flow_source.path, flow_source.display)
    if reads is not None:
        _record_expansion_reads(reads, expansion)
    compilation = Compilation(static, replace(options, with_specs=()), reads)
    compilation.expansion = expansion
    compilation.extra_header = header_lines(expansion, options)
    return compilation


def _read_only_in(info: GeneratorInfo, calls: set[int]) -> set[str]:
    """Module-level names the decorator reads only inside the calls `calls` (ids), which the
    output replaces by constants: nothing needs them carried (`inspect` for getsource)."""
    inside = [n for u in info.inspect_uses if id(u.node) in calls for n in name_nodes(u.node)]
    counts: dict[str, int] = {}
    for name in info.global_refs.values():
        counts[name] = counts.get(name, 0) + 1
    for node in inside:
        name = info.global_refs.get(id(node))
        if name is not None:
            counts[name] -= 1
    declared = info.declared_globals
    return {name for name, count in counts.items() if count == 0 and name not in declared}


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


class Compilation:
    """One flow file being compiled."""

    expansion = None  # set when the flow was expanded by Metaflow (pass 0, expand)
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
        self.warnings: list[Diagnostic] = []  # reported when the compile succeeds
        # (class, method) -> its source constant's name, its text
        self._sources: dict[tuple[str, str], tuple[str, str]] = {}

    def expansion_trigger(self):
        """Why this flow needs Metaflow to evaluate it (pass 1b), or None: read statically."""
        from .passes.expand import find_trigger

        return find_trigger(self.resolver, self.flow_ns, self.locator)

    def plan(self) -> tuple[list[StepSite], list[BuiltinAttach], dict[tuple[str, str], GeneratorInfo]]:
        """Discover, attach `--with`, analyse and check: everything before rewriting."""
        finder = StepFinder(self.resolver, self.flow_ns, self.locator)
        sites = finder.find()
        where = Location(self.source.display, 1, 1)
        builtins: list[BuiltinAttach] = []
        if self.options.with_specs:  # the --with pass is loaded only when there is one
            from .passes.attach import WithAttacher

            sites, builtins = WithAttacher(self.resolver, self.flow_ns, finder, where).attach(
                tuple(self.options.with_specs), sites
            )
        infos = self._analyze(sites)
        self._check_uses(sites, infos)
        return sites, builtins, infos

    def run(self) -> str:
        in_flow_defs = self._in_flow_decorators()
        sites, builtins, infos = self.plan()
        if not any(site.uses for site in sites) and not in_flow_defs and not builtins:
            if self.extra_header:  # expanded: say so even when nothing is left to inline
                return render_header_only(self.source.module, self._header(sites))
            return self.source.text  # nothing to compile: the flow is its own output

        reserved = identifiers_in_text(self.source.text) | set(helper_names())
        carrier = Carrier(self.resolver, self.flow_ns, reserved)
        used, attributes = self._flow_reads(sites, in_flow_defs, infos)
        own, aliases = self._carry_flow_imports(carrier, used, attributes)
        runtime: set[str] = set()
        plans: list[tuple[StepSite, list[Layer]]] = []
        classes = ClassOutput(self.resolver, carrier, sites, infos)
        for site in sites:
            layers = []
            for level, use in enumerate(site.uses, start=1):
                info = infos[use.definition.key]
                if isinstance(info, ClassInfo):
                    layers.append(Layer(use, info, level, {}))  # type: ignore[arg-type]
                    continue
                attrs = info.attribute_uses
                sources = self._step_sources(site, use, info, carrier) if info.inspect_uses else ()
                gone = _read_only_in(info, {i for i, _ in sources}) if sources else set()
                globals_ = {
                    name: carrier.output_name(use.definition.namespace, name, attrs.get(name))
                    for name in sorted((info.global_names | info.declared_globals) - gone)
                }
                layers.append(Layer(use, info, level, globals_, sources))
            plans.append((site, layers))
        classes.claim_instances()
        namespaces = carrier.namespace_lines()
        carried_defs = classes.carried(carrier.definitions()) + [("the modules above, as objects", n) for n in namespaces]
        origin = f"{self.source.display} (a step's source, as inspect.getsource reads it there)"
        carried_defs += [(origin, string_constant(n, text)) for n, text in self._sources.values()]
        origin = f"{self.source.display} (what it imported from them)"
        carried_defs += [(origin, cst.parse_statement(f"{n} = {out}")) for n, out in aliases]
        carried_imports = carrier.import_lines()
        # What a step's locals must not shadow: the module's names, carried names, helpers.
        module_names = set(self.flow_ns.names) | set(helper_names()) | (carrier.alloc.taken - reserved)
        steps: dict[int, cst.FunctionDef] = {}
        facts = step_facts(self._ast) if any(layers for _, layers in plans) else {}
        for site, layers in plans:
            func = site.func
            if layers:
                fact = facts.get((site.class_name, site.name))
                if any(isinstance(layer.info, ClassInfo) for layer in layers):
                    instances = classes.instances_of(site)
                    func = ClassStepRewriter(site, layers, module_names, runtime, fact, instances).rewrite()
                else:
                    func = StepRewriter(site, layers, module_names, runtime, fact).rewrite()
            if builtins:
                from .passes.attach import add_builtins

                func = add_builtins(func, builtins, self.resolver, self.flow_ns)
            if func is not site.func:
                steps[id(site.func)] = func
        for b in builtins:
            if b.needs_import:
                alias = f" as {b.local_name}" if b.local_name != b.spec.name else ""
                carried_imports.insert(0, cst.parse_statement(f"from metaflow import {b.spec.name}{alias}"))  # type: ignore[arg-type]

        droppable = self._droppable_imports() | own
        module = render(
            self.source.module,
            steps=steps,
            removed_defs={id(stmt) for stmt in in_flow_defs.values()},
            droppable_imports=droppable,
            still_used=used - own,
            carried_imports=carried_imports,
            carried_defs=carried_defs,
            runtime_defs=helper_definitions(runtime),
            header=self._header(sites),
        )
        self._report_warnings()
        return module_code(classes.finish(module))

    # -- helpers --------------------------------------------------------------------------

    @functools.cached_property
    def _ast(self) -> ast.Module | None:
        """The flow parsed by Python's own (C) parser, once, for the questions that need no
        libcst node (None if Python refuses what libcst accepted)."""
        try:
            return ast.parse(self.source.text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None

    def _step_sources(
        self, site: StepSite, use, info: GeneratorInfo, carrier: Carrier
    ) -> tuple[tuple[int, str], ...]:
        """Constants for the decorator's `inspect.getsource(<a step>)` calls (the step's text
        as natively read from the flow file); a DF601 warning for what cannot be answered so."""
        out: list[tuple[int, str]] = []
        for found in info.inspect_uses:
            name = site.name if found.step == THIS_STEP else found.step
            method = self._method(site.class_name, name) if name is not None else None
            if found.replaced and method is not None:
                constant = self._source_constant(site.class_name, name, method, carrier)
                out.append((id(found.node), constant))
                continue
            if found.step is not None and method is None:
                continue  # not code of this file (an artifact, an inherited method): as natively
            called = isinstance(found.node, cst.Call)
            call = f"inspect.{found.function}" + ("(...)" if called else "")
            if found.step is None:
                what = f"decoflow cannot tell whether {call} is about a step"
                if not called:
                    what = f"{call} is used as a value; decoflow cannot tell what it is called on"
                message = f"{what}: about a compiled step, it reads the compiled flow"
                message += ", not the original"
            else:
                about = "the step" if found.step == THIS_STEP else repr(name)
                message = (
                    f"{call} about {about} reads the compiled flow file: its lines, line numbers "
                    "and file differ from the original's"
                )
            note = (LazyLocation(self.locator, self.source, use.node), f"@{use.written} used here")
            message = f"@{use.written}: {message}"
            self.warnings.append(INSPECT_READS_COMPILED(message, found.location, (note,)))
        return tuple(out)

    def _method(
        self, class_name: str, name: str, seen: frozenset[str] = frozenset()
    ) -> cst.FunctionDef | None:
        """The method `name` of top-level class `class_name` of the flow file, or of a base
        class defined there too (None: not code of this file)."""
        classes = {s.name.value: s for s in self.source.module.body if isinstance(s, cst.ClassDef)}
        cls = classes.get(class_name)
        if cls is None or class_name in seen:
            return None
        methods = [s for s in cls.body.body if isinstance(s, cst.FunctionDef)]
        found = [s for s in methods if s.name.value == name]
        if found:
            return found[-1]  # the last definition is the one the class keeps
        for base in cls.bases:
            if isinstance(base.value, cst.Name):
                method = self._method(base.value.value, name, seen | {class_name})
                if method is not None:
                    return method
        return None

    def _source_constant(
        self, class_name: str, name: str, method: cst.FunctionDef, carrier: Carrier
    ) -> str:
        key = (class_name, name)
        if key not in self._sources:
            start = method.decorators[0] if method.decorators else method
            text = native_source(self.source.text, self.locator.locate(self.source, start).line)
            self._sources[key] = (carrier.alloc.claim(f"{name.upper()}_SOURCE"), text)
        return self._sources[key][0]

    def _report_warnings(self) -> None:
        """Each warning once (a decorator on several steps finds the same), as a Python
        warning: the CLI prints them as `path:line:col: DF601 ...`."""
        seen: set[tuple[str, str]] = set()
        for diag in self.warnings:
            key = (str(diag.location), diag.message)
            if key not in seen:
                seen.add(key)
                warnings.warn(CompileWarning(diag), stacklevel=4)

    def _in_flow_decorators(self) -> dict[str, cst.BaseStatement]:
        """Custom decorators made in the flow file, by name: their statements are left out of
        the output (a `def` under @user_step_decorator, or `deco = user_step_decorator(gen)`,
        whose generator stays as the plain function it is)."""
        found: dict[str, cst.BaseStatement] = {}
        for stmt in self.source.module.body:
            if isinstance(stmt, cst.FunctionDef) and is_user_step_decorator(self.resolver, self.flow_ns, stmt):
                found[stmt.name.value] = stmt
            elif (applied := applied_by_call(self.resolver, self.flow_ns, stmt)) is not None:
                found[applied[0]] = stmt
        return found

    def _analyze(self, sites: list[StepSite]) -> dict[tuple[str, str], GeneratorInfo]:
        analyzer = GeneratorAnalyzer(self.resolver, self.locator, self.source.module)
        infos: dict[tuple[str, str], GeneratorInfo] = {}
        diagnostics: list[Diagnostic] = []
        failed: set[tuple[str, str]] = set()
        for site in sites:
            for use in site.uses:
                key = use.definition.key
                if key in infos or key in failed:
                    continue
                try:
                    if isinstance(use.definition, ClassDecoratorDef):
                        applied = getattr(self, "mutators_applied", False)  # issue 12's expansion
                        class_analyzer = ClassAnalyzer(self.resolver, self.locator, applied)
                        infos[key] = class_analyzer.analyze(use.definition)  # type: ignore[assignment]
                    else:
                        infos[key] = analyzer.analyze(use.definition)
                except CompileError as err:
                    failed.add(key)
                    used_at = self.locator.locate(self.source, use.node)
                    for diag in err.diagnostics:
                        diagnostics.append(
                            Diagnostic(diag.code, diag.message, diag.location, (*diag.notes, (used_at, f"@{use.written} used here")))
                        )
        if diagnostics:
            raise CompileError(diagnostics)
        return infos

    def _check_uses(self, sites: list[StepSite], infos: dict[tuple[str, str], GeneratorInfo]) -> None:
        diagnostics: list[Diagnostic] = []
        for site in sites:
            for use in site.uses:
                info = infos[use.definition.key]
                where = LazyLocation(self.locator, self.source, use.node)
                defined = (
                    LazyLocation(self.locator, use.definition.namespace.source, use.definition.func),
                    f"@{use.definition.name} defined here",
                )
                args = use.arguments
                if args is None:
                    continue
                if isinstance(info, ClassInfo):
                    checker = ClassAnalyzer(self.resolver, self.locator)
                    diagnostics.extend(checker.check_use(use, info, where, self._non_literal))
                    continue
                if any(a.keyword is None for a in args):
                    what = "`**` arguments" if any(a.star == "**" for a in args) else "positional arguments"
                    diagnostics.append(
                        POSITIONAL_ARGUMENTS(
                            f"@{use.written} takes keyword arguments written out (k=v); it cannot take {what}",
                            where,
                            (defined,),
                        )
                    )
                elif args and len(info.params) == 3:
                    diagnostics.append(
                        ARGUMENTS_WITHOUT_ATTRIBUTES(
                            f"@{use.written} is given arguments but its definition takes 3 parameters; "
                            "add a 4th (attributes) to receive them",
                            where,
                            (defined,),
                        )
                    )
                else:
                    for arg in args:
                        bad = self._non_literal(arg.value)
                        if bad:
                            diagnostics.append(
                                NON_LITERAL_ARGUMENT(
                                    f"@{use.written}: argument '{arg.keyword.value}' uses '{bad}', which is not a "
                                    "literal or a module-level name",
                                    where,
                                    (defined,),
                                )
                            )
        if diagnostics:
            unique = {(d.code, d.message, str(d.location)): d for d in diagnostics}
            raise CompileError(list(unique.values()))

    def _non_literal(self, expr: cst.BaseExpression) -> str | None:
        """The first name in a decorator argument that is neither the flow module's, a
        builtin, nor bound inside the argument (a comprehension's target); lambdas aside."""
        import builtins

        from .support.namespace import bound_names

        ns = self.flow_ns.bindings
        local: set[str] = set()
        candidates: list[str] = []
        stack: list[cst.CSTNode] = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, cst.Lambda):
                continue
            if isinstance(node, cst.Name):
                if node.value not in ns and not hasattr(builtins, node.value):
                    candidates.append(node.value)
                continue
            if isinstance(node, cst.Attribute):
                stack.append(node.value)
                continue
            if isinstance(node, cst.CompFor):
                local.update(bound_names(node.target))
            stack.extend(reversed(child_nodes(node)))
        bad = [n for n in candidates if n not in local]
        return bad[0] if bad else None

    def _flow_reads(
        self, sites: list[StepSite], in_flow_defs: dict[str, cst.BaseStatement], infos: dict[tuple[str, str], GeneratorInfo]
    ) -> tuple[set[str], dict[str, set[str]]]:
        """Flow-level names the output still reads, found with the fast `ast` parser: all names
        of the flow except those only in removed custom decorator uses and definitions; and
        for each, the attributes the flow reads from it ("" when it is read bare)."""
        custom = {(s.class_name, s.name): {u.written for u in s.uses if not u.via_with} for s in sites}
        in_flow_classes = {  # their Metaflow base is swapped for decoflow's: not read
            u.definition.name
            for s in sites
            for u in s.uses
            if isinstance(u.definition, ClassDecoratorDef) and u.definition.in_flow
        }
        removed = {n for n, stmt in in_flow_defs.items() if isinstance(stmt, cst.FunctionDef)}
        removed_assignments = set(in_flow_defs) - removed
        used: set[str] = set()
        attributes: dict[str, set[str]] = {}

        def collect(node: ast.AST) -> None:
            nodes = list(ast.walk(node))
            bases = {id(n.value): n.attr for n in nodes if isinstance(n, ast.Attribute)}
            for n in nodes:
                if isinstance(n, ast.Name):
                    used.add(n.id)
                    attributes.setdefault(n.id, set()).add(bases.get(id(n), ""))

        tree = self._ast
        if tree is None:  # libcst accepted what Python did not: keep every import
            return set(identifiers_in_text(self.source.text)), {}
        for stmt in tree.body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(stmt, ast.FunctionDef) and stmt.name in removed:
                continue
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id in removed_assignments
                and isinstance(stmt.value, ast.Call)
            ):
                continue
            if not isinstance(stmt, ast.ClassDef):
                collect(stmt)
                continue
            if stmt.name in in_flow_classes:
                for item in stmt.body:
                    collect(item)
                continue
            for part in (*stmt.bases, *stmt.keywords, *stmt.decorator_list):
                collect(part)
            for item in stmt.body:
                written = custom.get((stmt.name, getattr(item, "name", "")), set())
                if not isinstance(item, ast.FunctionDef) or not written:
                    collect(item)
                    continue
                for dec in item.decorator_list:
                    target = dec.func if isinstance(dec, ast.Call) else dec
                    if ast.unparse(target) in written:
                        if isinstance(dec, ast.Call):
                            for arg in (*dec.args, *dec.keywords):
                                collect(arg)
                    else:
                        collect(dec)
                collect(item.args)
                for body_stmt in item.body:
                    collect(body_stmt)
        for info in infos.values():
            if info.definition.in_flow and not isinstance(info, ClassInfo):
                used |= info.global_names
        return used, attributes

    def _carry_flow_imports(
        self, carrier: Carrier, used: set[str], attributes: dict[str, set[str]]
    ) -> tuple[set[str], list[tuple[str, str]]]:
        """Names the flow imports for its own use from a module the output does not import
        (a decorator module: it needs Metaflow 2.16+): carried like the decorators' helpers,
        under the same output names (one object, as natively), and their imports dropped.
        Returns those names, and `name = output name` for each carried under another name."""
        own: set[str] = set()
        aliases: list[tuple[str, str]] = []
        wanted: list[tuple[str, Namespace, str | None]] = []  # flow name, module, name in it
        for name, binding in self.flow_ns.bindings.items():
            if isinstance(binding, ImportFrom):
                module = binding.module
            elif isinstance(binding, ImportModule) and "." not in binding.dotted:
                module = binding.dotted
            else:
                continue
            if not module or not carrier.carries_module(self.flow_ns, module):
                continue
            found = self.resolver.namespace_of(module)
            if isinstance(found, Unresolved):
                continue
            if isinstance(binding, ImportFrom) and binding.name not in found.bindings:
                continue  # nothing to carry (fails as natively)
            target = self.resolver.resolve(self.flow_ns, name)
            if isinstance(target, MetaflowName) or decorator_generator(self.resolver, target):
                continue  # a custom decorator (dropped anyway), or Metaflow's own
            if name not in used:
                own.add(name)  # imported, never read: the import goes
            elif isinstance(binding, ImportFrom):
                carrier.prefer(found, binding.name, name)
                wanted.append((name, found, binding.name))
            else:
                wanted.append((name, found, None))
        for name, found, member in sorted(wanted, key=lambda w: w[2] is None):  # modules last
            if member is not None:
                out = carrier.output_name(found, member, attributes.get(name))
            else:
                members = self._module_members(found, attributes.get(name))
                if members is None:
                    continue  # used as a value, not only through attributes: kept imported
                out = carrier.flow_module(found, name, members)
            own.add(name)
            if out != name:
                aliases.append((name, out))
        return own, aliases

    def _module_members(self, module: Namespace, attributes: set[str] | None) -> set[str] | None:
        """What the flow reads from `module` (`decos.fmt`), custom decorators aside; None when
        it reads the module bare (or that is not known)."""
        if attributes is None or "" in attributes:
            return None
        resolve = self.resolver.resolve
        return {a for a in attributes if not decorator_generator(self.resolver, resolve(module, a))}

    def _droppable_imports(self) -> set[str]:
        """Flow-level names bound to custom decorators, their modules, or 2.16+-only names."""
        out: set[str] = set()
        for name, binding in self.flow_ns.bindings.items():
            if isinstance(binding, ImportFrom) and (binding.module or "").split(".")[0] == METAFLOW and binding.name in {
                "user_step_decorator",
                "USER_SKIP_STEP",
                "UserStepDecorator",
            }:
                out.add(name)
            elif isinstance(binding, (ImportFrom, ImportModule)):
                target = self.resolver.resolve(self.flow_ns, name)
                if isinstance(target, MetaflowName):
                    continue
                if decorator_generator(self.resolver, target) is not None or is_decorator_class(self.resolver, target):
                    out.add(name)
                elif isinstance(binding, ImportModule) and not binding.dotted.startswith(METAFLOW):
                    ref = self.finder.find(binding.dotted)
                    if ref is not None and not ref.external:
                        out.add(name)
        return out

    def _header(self, sites: list[StepSite]) -> list[str]:
        origins: dict[str, str] = {}
        for site in sites:
            for use in site.uses:
                origins.setdefault(use.written, use.definition.origin)
        lines = [f"Generated by decoflow from {self.source.display}. Do not edit: edit the source and recompile."]
        lines.extend(self.extra_header)
        if self.options.with_specs:
            lines.append("With: " + " ".join(f"--with {s}" for s in self.options.with_specs))
        if origins:
            lines.append("Inlined: " + ", ".join(f"@{n} ({o})" for n, o in origins.items()))
        return lines
