"""Write an expanded flow out as a plain, static one.

Given what Metaflow made of the flow (`expansion/`: every step's final decorator stack, the
flow decorators, the parameters mutators added, the configs' values), the flow module is
rewritten so that it no longer needs mutators or configs to mean the same thing:

- each step gets its final stack written out: built-in decorators with their resolved
  attributes, custom decorators as literal uses (the later passes inline them as usual),
  plain Python decorators as the user wrote them;
- flow decorators are written with their resolved attributes, mutators left out;
- parameters mutators added are declared on the class;
- each `Config` is declared with the value it had (`default_value=`), also one only
  mutators read (natively every Config is an artifact of every task);
- base classes in other modules that need expansion are flattened (`flatten`);
- imports follow (`imports`): mutators and 2.16+-only names go, what the new code reads
  is imported.

Why a source rewrite: everything after this runs on plain flows, so the expanded flow is
compiled by exactly the passes that compile a hand-written one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import libcst as cst

from ...support.code import literal_source
from ...support.config_pickling import is_main_guard, with_config_pickling
from ...support.diagnostics import (
    BUILT_AT_RUN_TIME,
    NOT_WRITABLE,
    CompileError,
    Diagnostic,
    Location,
)
from ...support.locate import Locator
from ...support.namespace import (
    Defined,
    ImportFrom,
    MetaflowName,
    Namespace,
    Resolver,
    dotted_name,
    sole_assignment,
)
from ...support.source import SourceFile, is_docstring
from .detect import CONFIG_CALLS, Detector, callee, is_generator
from .flatten import Chain, Flattener, assigned
from .imports import AddedImports, fix_imports, metaflow_local


def _kw(name: str, src: str) -> str:
    return f"{name}={src}"


class StaticWriter:
    """Rewrites the flow module from an expansion (see the module docstring)."""

    def __init__(
        self, source: SourceFile, expansion, resolver: Resolver, flow_ns: Namespace,
        locator: Locator,
    ) -> None:
        self.source = source
        self.x = expansion
        self.resolver = resolver
        self.flow_ns = flow_ns
        self.locator = locator
        self.detector = Detector(resolver, flow_ns, locator)
        self.diagnostics: list[Diagnostic] = []
        self.added = AddedImports()
        self.flattener = Flattener(resolver, flow_ns, self.detector, self._metaflow, self.added)

    # -- values and names ----------------------------------------------------------------

    def _src(self, value, what: str, where: Location, config_values: bool = False) -> str:
        """The source of a resolved value (`config_values`: a Config's dicts stay
        ConfigValues, as a custom decorator received them)."""
        if config_values and value.code is not None:
            name = self._metaflow("ConfigValue")
            return re.sub(r"\bConfigValue\(", f"{name}(", value.code)
        if value.src is None and value.ref is not None:  # a function or class, by name
            module, name, file = value.ref
            return self._import_name(module, name, Path(file) if file else None)
        if value.src is not None:
            try:
                return literal_source(ast.literal_eval(value.src))
            except ValueError:  # a name the child wrote out (a Parameter's type)
                return value.src
        if value.src is None:
            self.diagnostics.append(
                NOT_WRITABLE(
                    f"{what} has the value {value.text}, which cannot be written as a Python "
                    "literal in the compiled flow",
                    where,
                )
            )
            return "None"
        return value.src

    def _metaflow(self, name: str) -> str:
        """The local name the output uses for Metaflow's `name` (imported when missing)."""
        return metaflow_local(name, self.flow_ns, self.resolver, self.added)

    def _custom_name(self, user, where: Location) -> str | None:
        qualname = user.qualname or ""
        if "." in qualname or "<" in qualname:
            self.diagnostics.append(
                BUILT_AT_RUN_TIME(
                    f"{user.spec()} is made at run time ({user.module}.{qualname}); decoflow "
                    "inlines only generators defined at a module's top level",
                    where,
                )
            )
            return None
        return self._import_name(user.module or "", qualname, user.file)

    def _import_name(self, module: str, qualname: str, file: Path | None) -> str:
        """The local name of `module.qualname` (a top-level definition) in the written flow:
        its own name in the flow file, else imported (under another name on a clash)."""
        if file is not None and file == self.source.path:
            return qualname  # defined in the flow file itself
        for local, (mod, name) in self.added.custom.items():
            if (mod, name) == (module, qualname):
                return local
        bound = self.flow_ns.bindings.get(qualname)
        if isinstance(bound, ImportFrom) and (bound.module, bound.name) == (module, qualname):
            return qualname
        local = qualname
        n = 1
        while local in self.flow_ns.bindings or local in self.added.custom:
            n += 1
            local = f"{qualname}_{n}"
        self.added.custom[local] = (module, qualname)
        return local

    # -- decorators ------------------------------------------------------------------------

    def _builtin_decorator(self, deco, where: Location) -> cst.Decorator:
        name = self._metaflow(deco.name)
        args = [
            _kw(k, self._src(v, f"@{deco.name}'s attribute {k}", where)) for k, v in deco.given()
        ]
        text = f"{name}({', '.join(args)})" if args else name
        return cst.Decorator(decorator=cst.parse_expression(text))

    def _step_decorators(self, func: cst.FunctionDef, stack, ns: Namespace) -> list[cst.Decorator]:
        where = self.locator.locate(ns.source, func)
        kept: list[cst.Decorator] = []
        step_deco = None
        for dec in func.decorators:
            target = self.resolver.expression(ns, callee(dec))
            if target == MetaflowName("step"):
                step_deco = dec if ns is self.flow_ns else cst.Decorator(
                    decorator=cst.Name(self._metaflow("step"))
                )
                continue
            if isinstance(target, MetaflowName) or self.detector.is_mutator_class(target):
                continue
            if isinstance(target, Defined) and is_generator(self.resolver, target):
                continue
            if ns is self.flow_ns:
                kept.append(dec)  # a plain Python decorator of the user's: as written
        out: list[cst.Decorator] = []
        for user in reversed(stack.wrappers):  # Metaflow keeps them innermost first
            local = self._custom_name(user, where)
            if local is None:
                continue
            parts = [
                self._src(a, f"{user.spec()}'s argument", where, config_values=True)
                for a in user.args
            ]
            parts += [
                _kw(k, self._src(v, f"{user.spec()}'s attribute {k}", where, config_values=True))
                for k, v in user.kwargs
            ]
            text = f"{local}({', '.join(parts)})" if parts else local
            out.append(cst.Decorator(decorator=cst.parse_expression(text)))
        out.extend(kept)
        out.extend(self._builtin_decorator(d, where) for d in stack.decorators)
        out.append(step_deco or cst.Decorator(decorator=cst.Name(self._metaflow("step"))))
        return out

    def _flow_decorators(self, cls: cst.ClassDef) -> list[cst.Decorator]:
        where = self.locator.locate(self.source, cls)
        kept = []
        for dec in cls.decorators:
            target = self.resolver.expression(self.flow_ns, callee(dec))
            if isinstance(target, MetaflowName) or self.detector.is_mutator_class(target):
                continue
            kept.append(dec)
        last: dict[str, object] = {}
        ordered = []
        for deco in self.x.flow_decorators:  # a second @project (OVERRIDE) wins: keep the last
            if not deco.allow_multiple:
                last[deco.name] = deco
        for deco in self.x.flow_decorators:
            if deco.allow_multiple or last.get(deco.name) is deco:
                ordered.append(deco)
        return kept + [self._builtin_decorator(d, where) for d in ordered]


    # -- class members ------------------------------------------------------------------------

    def _config_statement(self, var: str, call: cst.Call, where: Location) -> str:
        """`var = Config(name, default_value=<value at compile time>, ...)`, or "keep" (as
        written). Kept even when only mutators read it: a Config is an artifact of every task."""
        name = None
        for i, arg in enumerate(call.args):
            if (i == 0 and arg.keyword is None) or (arg.keyword and arg.keyword.value == "name"):
                text = isinstance(arg.value, cst.SimpleString)
                name = arg.value.evaluated_value if text else None
        info = self.x.configs.get(name) if name else None
        if info is None or info.plain or not (info.value.src or "").startswith("{"):
            return "keep"
        extra = []
        for arg in call.args[1:]:
            key = arg.keyword.value if arg.keyword is not None else None
            if key == "parser":  # run when the value was read: the value is written out
                self.added.unread |= _names_read(arg.value)
            if key in (None, "default", "default_value", "parser", "name"):
                continue
            extra.append(f"{key}={cst.Module(body=[]).code_for_node(arg.value)}")
        config = self._metaflow("Config")
        value = literal_source(ast.literal_eval(info.value.src))
        # Metaflow 2.15 passes a config whose name has a "-" to no task (they read None):
        # the name only names the command-line option, so "_" stands in for it
        parts = [literal_source(name.replace("-", "_")), f"default_value={value}"]
        parts += extra
        return f"{var} = {config}({', '.join(parts)})"

    def _class_body(self, cls: cst.ClassDef, bases: Chain) -> list[cst.BaseStatement]:
        """The flow class's body: members carried from flattened bases, parameters mutators
        added, then its own members with their steps' stacks and Configs written out."""
        where = self.locator.locate(self.source, cls)
        body = self.flattener.members(assigned(cls), bases)
        spaced = None  # the flow's first own member, set apart from the carried ones
        if body:
            first = cls.body.body[0] if cls.body.body else None
            if first is not None and not first.leading_lines:
                spaced = first
        added = []
        for param in self.x.added_parameters:
            if param.class_name != "Parameter" or param.callable_kwargs:
                self.diagnostics.append(
                    NOT_WRITABLE(
                        f"parameter {param.var!r} added by a mutator is a {param.class_name} "
                        "or has a callable argument: it cannot be declared in the compiled flow",
                        where,
                    )
                )
                continue
            parts = [literal_source(param.name)] + [
                _kw(k, self._src(v, f"parameter {param.var}'s {k}", where))
                for k, v in param.kwargs
                if k != "show_default" and not (k == "required" and v.src == "False")
            ]
            for k, v in param.kwargs:
                if k == "type" and v.src == "JSONType":
                    self._metaflow("JSONType")
            ctor = self._metaflow("Parameter")
            added.append(cst.parse_statement(f"{param.var} = {ctor}({', '.join(parts)})"))
        for item in [*body, *cls.body.body]:
            if item is spaced:
                item = item.with_changes(leading_lines=[cst.EmptyLine(indent=False)])
            body_item = self._rewrite_member(item, cls, where)
            if body_item is not None:
                added.append(body_item)
        docstring = []
        if added and cls.body.body and is_docstring(cls.body.body[0]):
            docstring = [cls.body.body[0]]
            added = [a for a in added if a is not cls.body.body[0]]
        return docstring + added

    def _rewrite_member(self, item, cls: cst.ClassDef, where: Location):
        """A member with what the expansion decided written out: a step's final stack, a
        Config's compile-time value; None when it is dropped (a Config no longer read)."""
        if isinstance(item, cst.FunctionDef):
            ns = self.flattener.origin.get(item, self.flow_ns)
            stack = self.x.steps.get(item.name.value)
            if stack is None or not self._is_step(item, ns):
                return item
            return item.with_changes(decorators=self._step_decorators(item, stack, ns))
        pair = sole_assignment(item)
        if pair is not None:
            var, value = pair
            if var in self.x.replaced_parameters:  # removed, or declared anew above
                return None
            if isinstance(value, cst.Call) and dotted_name(value.func) in CONFIG_CALLS:
                new = self._config_statement(var, value, where)
                if new == "keep":
                    return item
                return cst.parse_statement(new).with_changes(leading_lines=item.leading_lines)
        return item

    def _is_step(self, func: cst.FunctionDef, ns: Namespace) -> bool:
        return any(
            self.resolver.expression(ns, callee(d)) == MetaflowName("step")
            for d in func.decorators
        )

    # -- the module ---------------------------------------------------------------------------

    def _needs_expansion(self, base: Defined) -> bool:
        """Whether a base class in another module must be flattened: it uses mutators or
        configs, or custom decorators (which its carried steps get written out too), or
        its module imports what only Metaflow 2.16+ has; or it is the project's own (not
        an installed package's), or mutators changed one of its steps: its steps are then
        written out with their final decorators, and the compiled flow runs alone."""
        detector = self.detector
        ref = base.namespace.ref
        return (
            detector.class_trigger(base.namespace, base.stmt) is not None
            or detector.custom_base(base) is not None
            or (ref is not None and not ref.external)
            or any(
                isinstance(item, cst.FunctionDef) and self.x.changes(item.name.value)
                for item in base.stmt.body.body
            )
        )

    def write(self) -> str:
        """The flow module, written out (or CompileError: what cannot be written)."""
        body: list[cst.BaseStatement] = []
        for stmt in self.source.module.body:
            if isinstance(stmt, cst.ClassDef):
                defined = Defined(self.flow_ns, stmt.name.value, stmt)
                if self.detector.is_mutator_class(defined) and not self.detector.is_mutator_class(
                    defined, bases=frozenset({"UserStepDecorator"})
                ):
                    continue  # a mutator defined in the flow file (a class-based decorator,
                    # also a StepMutator, stays): its work is written out
                if stmt.name.value == self.x.flow_name:
                    chain, bases = self.flattener.bases(stmt, self._needs_expansion)
                    if chain:
                        wrappers = [w for s in self.x.steps.values() for w in s.wrappers]
                        modules = frozenset(w.module for w in wrappers if w.module)
                        self.flattener.imports(chain, decorator_modules=modules)
                        self.diagnostics += self.flattener.report(self.locator, stmt)
                    stmt = stmt.with_changes(
                        decorators=self._flow_decorators(stmt),
                        bases=bases,
                        body=stmt.body.with_changes(body=self._class_body(stmt, chain)),
                    )
            body.append(stmt)
        if self.diagnostics:
            raise CompileError(self.diagnostics)
        if self.x.configs:
            body = with_config_pickling(body, {self.x.flow_name})
        body = _with_printed(body, self.x.printed)
        module = self.source.module.with_changes(body=body)
        module = fix_imports(module, self.flow_ns, self.resolver, self.detector, self.added)
        return module.code


def _with_printed(body: list[cst.BaseStatement], printed: dict[str, str]):
    """`body` with what the mutators printed written out to be printed as the module loads,
    before `if __name__ == "__main__":`: natively every process that loads the flow (each
    task too) runs the mutators again, and they print it there."""
    calls = [
        f'print({literal_source(text)}, end=""'
        + (', file=__import__("sys").stderr)' if stream == "stderr" else ")")
        for stream, text in sorted(printed.items(), key=lambda item: item[0] != "stdout")
        if text
    ]
    if not calls:
        return body
    replay = [cst.parse_statement(call) for call in calls]
    comment = (
        "# What the mutators printed when Metaflow evaluated them: natively every process",
        "# that loads the flow, each task too, runs them again and prints it.",
    )
    blank = cst.EmptyLine(indent=False)
    replay[0] = replay[0].with_changes(
        leading_lines=[blank, blank, *(cst.EmptyLine(comment=cst.Comment(c)) for c in comment)]
    )
    main = next((i for i, stmt in enumerate(body) if is_main_guard(stmt)), len(body))
    if main < len(body):
        body[main] = body[main].with_changes(leading_lines=[blank, blank])
    return body[:main] + replay + body[main:]


def header_lines(expansion, options, folder: Path | None = None) -> list[str]:
    """What the compiled flow's header records about the expansion (config files relative to
    `folder`, the flow's)."""
    lines = [
        f"Mutators and configs evaluated with Metaflow {expansion.metaflow_version}: "
        "their effects are written out below."
    ]
    if expansion.configs:
        used = "; ".join(
            f"{c.describe(folder)} = {c.value.text}" for c in expansion.configs.values()
        )
        lines.append(f"Configs used: {used}")
    if options.with_specs:
        lines.append(
            "With (attached before mutate): " + " ".join(f"--with {s}" for s in options.with_specs)
        )
    return lines


def write_static(source: SourceFile, expansion, resolver, flow_ns, locator) -> str:
    """The source of the flow module, written out from `expansion` as a plain flow."""
    return StaticWriter(source, expansion, resolver, flow_ns, locator).write()


def _names_read(expr: cst.BaseExpression) -> set[str]:
    """The module-level names an expression reads (`parse` of `parse`, `mod` of `mod.parse`;
    a string names nothing)."""
    tree = ast.parse(f"({cst.Module(body=[]).code_for_node(expr)})", mode="eval")
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    own = {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in ast.walk(n.args)
           if isinstance(a, ast.arg)}
    return read - own
