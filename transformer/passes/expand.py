"""Pass 1b: flows built by mutators and configs (issue 12).

`find_trigger` decides STATICALLY (reading files, never importing) whether a flow needs
Metaflow to evaluate it: a FlowMutator/StepMutator (or class-based decorator) on the flow
class, on a base class or on a step; a `config_expr`/Config in a custom decorator's
arguments; a base class in another module that uses any of these. Only then is the flow
expanded (`expansion/`, a child process running Metaflow) and `write_static` turns it into
an equivalent plain flow source: mutators gone, every step's final stack written out
(built-ins with their resolved attributes, custom decorators as literal uses, which the
later passes inline as usual), flow decorators resolved, parameters mutators added declared,
Configs that are still read declared with the value they had (`default_value=`), steps and
members inherited from such a base class carried into the flow class.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from ..support.diagnostics import (
    BUILT_AT_RUN_TIME,
    CLASS_OR_MUTATOR,
    NOT_WRITABLE,
    CompileError,
    Diagnostic,
    Location,
)
from ..support.locate import Locator
from ..support.namespace import (
    METAFLOW,
    Defined,
    ImportFrom,
    ImportModule,
    MetaflowName,
    ModuleObject,
    Namespace,
    Resolver,
    dotted_name,
)
from ..support.source import SourceFile

MUTATOR_BASES = {"FlowMutator", "StepMutator", "UserStepDecorator"}
#: What makes a flow need expansion: a mutator. (A class-based UserStepDecorator alone is
#: refused statically with DF203 as before; one that is also a StepMutator is expanded.)
TRIGGER_BASES = {"FlowMutator", "StepMutator"}
#: Names from metaflow the compiled flow must not import (2.16+ only) once expanded.
EXPANSION_ONLY = {
    "FlowMutator",
    "StepMutator",
    "UserStepDecorator",
    "user_step_decorator",
    "USER_SKIP_STEP",
    "config_expr",
}


@dataclass(frozen=True)
class Trigger:
    """Why a flow needs expansion: the first use found (a mutator, a config use, a base)."""

    location: Location
    name: str


def _callee(dec: cst.Decorator) -> cst.BaseExpression:
    return dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator


def _args(dec: cst.Decorator) -> tuple[cst.Arg, ...]:
    return tuple(dec.decorator.args) if isinstance(dec.decorator, cst.Call) else ()


class Detector:
    """Static detection; every result is cached per class statement."""

    def __init__(self, resolver: Resolver, flow_ns: Namespace, locator: Locator) -> None:
        self.resolver = resolver
        self.flow_ns = flow_ns
        self.locator = locator
        self._mutator: dict[tuple[int, frozenset[str]], bool] = {}

    def _resolve(self, ns: Namespace, expr: cst.BaseExpression) -> object:
        """What `expr` refers to; a module that cannot be read counts as nothing here (the
        passes that follow report it, with the use that needed it)."""
        try:
            return self.resolver.expression(ns, expr)
        except CompileError:
            return None

    def is_mutator_class(
        self, target: object, depth: int = 0, bases: frozenset[str] = frozenset(MUTATOR_BASES)
    ) -> bool:
        """A class deriving (through any chain of classes read from files) from one of
        `bases` (by default a mutator base or UserStepDecorator)."""
        if not (isinstance(target, Defined) and isinstance(target.stmt, cst.ClassDef)):
            return False
        key = (id(target.stmt), bases)
        if key not in self._mutator:
            self._mutator[key] = False
            found = False
            for base in target.stmt.bases:
                resolved = self._resolve(target.namespace, base.value)
                if isinstance(resolved, MetaflowName) and resolved.name in bases:
                    found = True
                elif depth < 20 and self.is_mutator_class(resolved, depth + 1, bases):
                    found = True
            self._mutator[key] = found
        return self._mutator[key]

    def is_trigger_class(self, target: object) -> bool:
        return self.is_mutator_class(target, bases=frozenset(TRIGGER_BASES))

    def _where(self, ns: Namespace, node: cst.CSTNode) -> Location:
        return self.locator.locate(ns.source, node)

    def class_trigger(self, ns: Namespace, cls: cst.ClassDef, depth: int = 0) -> Trigger | None:
        for dec in cls.decorators:
            target = self._resolve(ns, _callee(dec))
            if self.is_trigger_class(target):
                return Trigger(self._where(ns, dec), f"@{dotted_name(_callee(dec))}")
        configs = self._config_names(cls)
        for item in cls.body.body:
            if not isinstance(item, cst.FunctionDef):
                continue
            for dec in item.decorators:
                target = self._resolve(ns, _callee(dec))
                if self.is_trigger_class(target) and not self.is_mutator_class(
                    target, bases=frozenset({"UserStepDecorator"})
                ):  # a custom decorator that is also a StepMutator: DF207, statically
                    return Trigger(self._where(ns, dec), f"@{dotted_name(_callee(dec))}")
                if isinstance(target, (MetaflowName, ModuleObject)):
                    continue
                if any(self._reads_config(ns, a.value, configs) for a in _args(dec)):
                    name = dotted_name(_callee(dec))
                    return Trigger(self._where(ns, dec), f"@{name} (its arguments read a Config)")
        if depth < 20:
            for base in cls.bases:
                target = self._resolve(ns, base.value)
                if isinstance(target, Defined) and isinstance(target.stmt, cst.ClassDef):
                    inner = self.class_trigger(target.namespace, target.stmt, depth + 1)
                    if inner is not None:
                        name = dotted_name(base.value)
                        if target.namespace is not self.flow_ns:
                            return Trigger(self._where(ns, base), f"base class {name}")
                        return inner
        return None

    def _config_names(self, cls: cst.ClassDef) -> set[str]:
        names = set()
        for item in cls.body.body:
            if isinstance(item, cst.SimpleStatementLine):
                for small in item.body:
                    if (
                        isinstance(small, cst.Assign)
                        and isinstance(small.value, cst.Call)
                        and dotted_name(small.value.func) in ("Config", "metaflow.Config")
                    ):
                        for target in small.targets:
                            if isinstance(target.target, cst.Name):
                                names.add(target.target.value)
        return names

    def _reads_config(self, ns: Namespace, expr: cst.BaseExpression, configs: set[str]) -> bool:
        stack: list[cst.CSTNode] = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, cst.Call) and self._resolve(
                ns, node.func
            ) == MetaflowName("config_expr"):
                return True
            if isinstance(node, cst.Name) and node.value in configs:
                return True
            stack.extend(node.children)
        return False

    def find(self) -> Trigger | None:
        for stmt in self.flow_ns.source.module.body:
            if isinstance(stmt, cst.ClassDef) and not self.is_mutator_class(
                Defined(self.flow_ns, stmt.name.value, stmt)
            ):
                found = self.class_trigger(self.flow_ns, stmt)
                if found is not None:
                    return found
        return None


def find_trigger(resolver: Resolver, flow_ns: Namespace, locator: Locator) -> Trigger | None:
    return Detector(resolver, flow_ns, locator).find()


# --- writing the expanded flow as a static one ----------------------------------------------


def _kw(name: str, src: str) -> str:
    return f"{name}={src}"


def literal(value) -> str:
    """Python source for a literal value, strings double-quoted as users write them."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


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
        self.metaflow_needed: set[str] = set()
        self.custom_imports: dict[str, tuple[str, str]] = {}  # local name -> (module, name)
        self.carried_imports: list[cst.BaseStatement] = []
        self.flattened: list[str] = []

    # -- values and names ----------------------------------------------------------------

    def _src(self, value, what: str, where: Location) -> str:
        if value.src is not None:
            try:
                return literal(ast.literal_eval(value.src))
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
        bound = self.flow_ns.bindings.get(name)
        if bound is None:
            self.metaflow_needed.add(name)
            return name
        if self.resolver.resolve(self.flow_ns, name) == MetaflowName(name):
            return name
        alias = f"metaflow_{name}"
        self.metaflow_needed.add(f"{name} as {alias}")
        return alias

    def _custom_name(self, user, where: Location) -> str | None:
        if user.kind != "generator" and user.is_step_mutator:
            self.diagnostics.append(
                CLASS_OR_MUTATOR(
                    f"{user.spec()} ({user.module}.{user.qualname}) is a class-based custom "
                    "decorator that is also a StepMutator; decoflow cannot compile it"
                    + (f" (added by {user.inserted_by[0]})" if user.inserted_by else ""),
                    where,
                )
            )
            return None
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
        if user.file is not None and user.file == self.source.path:
            return qualname  # defined in the flow file itself
        module = user.module or ""
        for local, (mod, name) in self.custom_imports.items():
            if (mod, name) == (module, qualname):
                return local
        bound = self.flow_ns.bindings.get(qualname)
        if isinstance(bound, ImportFrom) and (bound.module, bound.name) == (module, qualname):
            return qualname
        local = qualname
        n = 1
        while local in self.flow_ns.bindings or local in self.custom_imports:
            n += 1
            local = f"{qualname}_{n}"
        self.custom_imports[local] = (module, qualname)
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
            target = self.resolver.expression(ns, _callee(dec))
            if target == MetaflowName("step"):
                step_deco = dec if ns is self.flow_ns else cst.Decorator(
                    decorator=cst.Name(self._metaflow("step"))
                )
                continue
            if isinstance(target, MetaflowName) or self.detector.is_mutator_class(target):
                continue
            if isinstance(target, Defined) and self._is_generator(target):
                continue
            if ns is self.flow_ns:
                kept.append(dec)  # a plain Python decorator of the user's: as written
        out: list[cst.Decorator] = []
        for user in reversed(stack.wrappers):  # Metaflow keeps them innermost first
            local = self._custom_name(user, where)
            if local is None:
                continue
            parts = [self._src(a, f"{user.spec()}'s argument", where) for a in user.args]
            parts += [
                _kw(k, self._src(v, f"{user.spec()}'s attribute {k}", where))
                for k, v in user.kwargs
            ]
            text = f"{local}({', '.join(parts)})" if parts else local
            out.append(cst.Decorator(decorator=cst.parse_expression(text)))
        out.extend(kept)
        out.extend(self._builtin_decorator(d, where) for d in stack.decorators)
        out.append(step_deco or cst.Decorator(decorator=cst.Name(self._metaflow("step"))))
        return out

    def _is_generator(self, target: Defined) -> bool:
        from .discover import decorator_generator

        return decorator_generator(self.resolver, target) is not None

    def _flow_decorators(self, cls: cst.ClassDef) -> list[cst.Decorator]:
        where = self.locator.locate(self.source, cls)
        kept = []
        for dec in cls.decorators:
            target = self.resolver.expression(self.flow_ns, _callee(dec))
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

    def _still_read(self, var: str) -> bool:
        """Whether `.var` is read anywhere a run could read it: the flow module (outside the
        Config declaration), the modules of the custom decorators, the base modules."""
        pattern = re.compile(rf"\.{re.escape(var)}\b|getattr\([^)]*['\"]{re.escape(var)}['\"]")
        texts = [self.source.text]
        files = {w.file for s in self.x.steps.values() for w in s.wrappers if w.file}
        files |= {Path(b["file"]) for b in self.x.bases if b.get("file")}
        for file in files:
            try:
                texts.append(file.read_text(encoding="utf-8"))
            except OSError:
                return True
        return any(pattern.search(t) for t in texts)

    def _config_statement(self, var: str, call: cst.Call, where: Location) -> str | None:
        """`var = Config(name, default_value=<value at compile time>, ...)`, or None (dropped)."""
        name = None
        for i, arg in enumerate(call.args):
            if (i == 0 and arg.keyword is None) or (arg.keyword and arg.keyword.value == "name"):
                text = isinstance(arg.value, cst.SimpleString)
                name = arg.value.evaluated_value if text else None
        info = self.x.configs.get(name) if name else None
        if info is None:
            return None if not self._still_read(var) else "keep"
        if not self._still_read(var):
            return None
        if info.plain or info.value.src is None or not info.value.src.startswith("{"):
            return "keep"
        extra = []
        for arg in call.args[1:]:
            key = arg.keyword.value if arg.keyword is not None else None
            if key in (None, "default", "default_value", "parser", "name"):
                continue
            extra.append(f"{key}={cst.Module(body=[]).code_for_node(arg.value)}")
        config = self._metaflow("Config")
        parts = [literal(name), f"default_value={literal(ast.literal_eval(info.value.src))}"]
        parts += extra
        return f"{var} = {config}({', '.join(parts)})"

    def _class_body(self, cls: cst.ClassDef, bases: list[tuple[Namespace, cst.ClassDef]]):
        where = self.locator.locate(self.source, cls)
        own = {
            item.name.value
            for item in cls.body.body
            if isinstance(item, (cst.FunctionDef, cst.ClassDef))
        }
        own |= self._assigned(cls)
        body: list[cst.BaseStatement] = []
        # Members inherited from flattened bases (most basic first), unless overridden.
        for ns, base in reversed(bases):
            for item in base.body.body:
                names = self._names_of(item)
                if not names or names & own:
                    continue
                own |= names
                member = self._member(item, ns)
                if not body:
                    origin = ns.source.display.rsplit("/", 1)[-1]
                    note = f"# carried from {base.name.value} ({origin})"
                    member = member.with_changes(
                        leading_lines=[cst.EmptyLine(comment=cst.Comment(note))]
                    )
                body.append(member)
                self.flattened.append(f"{base.name.value}.{sorted(names)[0]}")
        if body:
            first = cls.body.body[0] if cls.body.body else None
            if first is not None and not first.leading_lines:
                self._spaced = id(first)
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
            parts = [literal(param.name)] + [
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
            if id(item) == getattr(self, "_spaced", None):
                item = item.with_changes(leading_lines=[cst.EmptyLine(indent=False)])
            body_item = self._rewrite_member(item, cls, where)
            if body_item is not None:
                added.append(body_item)
        docstring = []
        if added and self._is_docstring(cls.body.body[0] if cls.body.body else None):
            docstring = [cls.body.body[0]]
            added = [a for a in added if a is not cls.body.body[0]]
        return docstring + added

    @staticmethod
    def _is_docstring(stmt) -> bool:
        from ..support.source import is_docstring

        return stmt is not None and is_docstring(stmt)

    def _assigned(self, cls: cst.ClassDef) -> set[str]:
        out = set()
        for item in cls.body.body:
            out |= self._names_of(item)
        return out

    @staticmethod
    def _names_of(item: cst.CSTNode) -> set[str]:
        if isinstance(item, (cst.FunctionDef, cst.ClassDef)):
            return {item.name.value}
        out = set()
        if isinstance(item, cst.SimpleStatementLine):
            for small in item.body:
                if isinstance(small, cst.Assign):
                    for t in small.targets:
                        if isinstance(t.target, cst.Name):
                            out.add(t.target.value)
                elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                    out.add(small.target.value)
        return out

    def _member(self, item: cst.BaseStatement, ns: Namespace) -> cst.BaseStatement:
        """A member carried from a base class; its step decorators are rewritten later."""
        if isinstance(item, cst.FunctionDef):
            self._origin[id(item)] = ns
        return item

    _origin: dict[int, Namespace]

    def _rewrite_member(self, item, cls: cst.ClassDef, where: Location):
        if isinstance(item, cst.FunctionDef):
            ns = self._origin.get(id(item), self.flow_ns)
            stack = self.x.steps.get(item.name.value)
            if stack is None or not self._is_step(item, ns):
                return item
            return item.with_changes(decorators=self._step_decorators(item, stack, ns))
        if isinstance(item, cst.SimpleStatementLine) and len(item.body) == 1:
            small = item.body[0]
            if (
                isinstance(small, cst.Assign)
                and len(small.targets) == 1
                and isinstance(small.targets[0].target, cst.Name)
                and isinstance(small.value, cst.Call)
                and dotted_name(small.value.func) in ("Config", "metaflow.Config")
            ):
                var = small.targets[0].target.value
                new = self._config_statement(var, small.value, where)
                if new is None:
                    return None
                if new == "keep":
                    return item
                return cst.parse_statement(new).with_changes(leading_lines=item.leading_lines)
        return item

    def _is_step(self, func: cst.FunctionDef, ns: Namespace) -> bool:
        return any(
            self.resolver.expression(ns, _callee(d)) == MetaflowName("step")
            for d in func.decorators
        )

    # -- the module ---------------------------------------------------------------------------

    def _flattened_bases(self, cls: cst.ClassDef) -> tuple[list, list[cst.Arg]]:
        """Base classes in other modules that need expansion are flattened into the flow
        class (their members carried, the class based on FlowSpec); plain ones stay."""
        flattened: list[tuple[Namespace, cst.ClassDef]] = []
        new_bases: list[cst.Arg] = []
        for arg in cls.bases:
            target = self.resolver.expression(self.flow_ns, arg.value)
            if (
                isinstance(target, Defined)
                and isinstance(target.stmt, cst.ClassDef)
                and target.namespace is not self.flow_ns
                and self.detector.class_trigger(target.namespace, target.stmt) is not None
            ):
                chain = self._chain(target)
                flattened.extend(chain)
                new_bases.append(arg.with_changes(value=cst.Name(self._metaflow("FlowSpec"))))
            else:
                new_bases.append(arg)
        return flattened, new_bases

    def _chain(self, target: Defined, depth: int = 0) -> list[tuple[Namespace, cst.ClassDef]]:
        out = [(target.namespace, target.stmt)]
        if depth > 20:
            return out
        for arg in target.stmt.bases:
            inner = self.resolver.expression(target.namespace, arg.value)
            if isinstance(inner, Defined) and isinstance(inner.stmt, cst.ClassDef):
                out.extend(self._chain(inner, depth + 1))
        return out

    def _base_imports(self, chain) -> None:
        """The imports of flattened base modules that their carried members read."""
        for ns, cls in chain:
            used = {
                n.id for n in ast.walk(ast.parse(ns.source.module.code_for_node(cls)))
                if isinstance(n, ast.Name)
            }
            for name in sorted(used):
                binding = ns.bindings.get(name)
                target = self.resolver.resolve(ns, name) if binding is not None else None
                if self.detector.is_mutator_class(target) or (
                    isinstance(target, Defined) and self._is_generator(target)
                ):
                    continue  # its work is written out; its module is not imported
                if name in self.flow_ns.bindings and self.resolver.resolve(
                    self.flow_ns, name
                ) == self.resolver.resolve(ns, name):
                    continue
                if isinstance(binding, ImportFrom) and binding.module:
                    if binding.module == METAFLOW:
                        if binding.name not in EXPANSION_ONLY:
                            self._metaflow(binding.name)
                        continue
                    alias = "" if binding.name == name else f" as {name}"
                    self.carried_imports.append(
                        cst.parse_statement(f"from {binding.module} import {binding.name}{alias}")
                    )
                elif isinstance(binding, ImportModule):
                    self.carried_imports.append(cst.parse_statement(f"import {binding.dotted}"))
                elif binding is not None and not isinstance(binding.stmt, cst.ClassDef):
                    self.carried_imports.append(binding.stmt)  # a module-level helper

    def write(self) -> str:
        self._origin = {}
        body: list[cst.BaseStatement] = []
        for stmt in self.source.module.body:
            if isinstance(stmt, cst.ClassDef):
                if self.detector.is_mutator_class(Defined(self.flow_ns, stmt.name.value, stmt)):
                    continue  # a mutator defined in the flow file: its work is written out
                if stmt.name.value == self.x.flow_name:
                    chain, bases = self._flattened_bases(stmt)
                    if chain:
                        self._base_imports(chain)
                    stmt = stmt.with_changes(
                        decorators=self._flow_decorators(stmt),
                        bases=bases,
                        body=stmt.body.with_changes(body=self._class_body(stmt, chain)),
                    )
            body.append(stmt)
        if self.diagnostics:
            raise CompileError(self.diagnostics)
        module = self.source.module.with_changes(body=body)
        module = self._fix_imports(module)
        return module.code

    def _fix_imports(self, module: cst.Module) -> cst.Module:
        used = _names_outside_imports(module)
        removable = set(EXPANSION_ONLY) | {"Config"}
        for name, binding in self.flow_ns.bindings.items():
            target = self.resolver.resolve(self.flow_ns, name)
            if self.detector.is_mutator_class(target):
                removable.add(name)
            elif isinstance(binding, (ImportFrom, ImportModule)) and isinstance(target, Defined):
                if isinstance(target.stmt, cst.ClassDef) and target.namespace is not self.flow_ns:
                    removable.add(name)  # e.g. a flattened base class
            elif isinstance(binding, ImportModule) and not binding.dotted.startswith(METAFLOW):
                ref = self.resolver.finder.find(binding.dotted)
                if ref is not None and not ref.external:
                    removable.add(name)  # `import baseflow` for a flattened `baseflow.Base`
        drop = {n for n in removable if n not in used}
        body = []
        for stmt in module.body:
            new = _without_names(stmt, drop, self.flow_ns)
            if new is not None:
                body.append(new)
        extra: list[cst.BaseStatement] = []
        if self.metaflow_needed:
            extra.append(
                cst.parse_statement(
                    f"from metaflow import {', '.join(sorted(self.metaflow_needed))}"
                )
            )
        for local, (mod, name) in sorted(self.custom_imports.items()):
            alias = "" if local == name else f" as {local}"
            extra.append(cst.parse_statement(f"from {mod} import {name}{alias}"))
        seen = set()
        for stmt in self.carried_imports:
            code = cst.Module(body=[stmt]).code
            if code not in seen and not any(code == cst.Module(body=[s]).code for s in body):
                seen.add(code)
                extra.append(stmt)
        at = 0
        for i, stmt in enumerate(body):
            if _is_import(stmt) or (i == 0 and self._is_docstring(stmt)):
                at = i + 1
            elif not _is_future(stmt):
                break
        body[at:at] = extra
        return module.with_changes(body=body)


def _is_future(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and isinstance(stmt.body[0], cst.ImportFrom)
        and dotted_name(stmt.body[0].module or cst.Name("x")) == "__future__"
    )


def _is_import(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _names_outside_imports(module: cst.Module) -> set[str]:
    tree = ast.parse(module.code)
    used: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        used |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
        used |= {
            n.value.id for n in ast.walk(stmt)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
        }
    return used


def _without_names(stmt: cst.BaseStatement, drop: set[str], ns: Namespace):
    """The import statement without the aliases binding `drop`; None when nothing is left."""
    if not _is_import(stmt) or not drop:
        return stmt
    from ..support.namespace import alias_name

    smalls = []
    for small in stmt.body:
        if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
            names = [a for a in small.names if alias_name(a) not in drop]
            if not names:
                continue
            if len(names) != len(small.names):
                names = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in names]
                small = small.with_changes(names=names, lpar=None, rpar=None)
        elif isinstance(small, cst.Import):
            names = [
                a for a in small.names
                if (a.asname.name.value if a.asname else (dotted_name(a.name) or "").split(".")[0])
                not in drop
            ]
            if not names:
                continue
            names = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in names]
            small = small.with_changes(names=names)
        smalls.append(small)
    if not smalls:
        return None
    return stmt.with_changes(body=smalls)


def header_lines(expansion, options) -> list[str]:
    """What the compiled flow's header records about the expansion."""
    lines = [
        f"Mutators and configs evaluated with Metaflow {expansion.metaflow_version}: "
        "their effects are written out below."
    ]
    if expansion.configs:
        used = "; ".join(
            f"{c.describe()} = {c.value.text}" for c in expansion.configs.values()
        )
        lines.append(f"Configs used: {used}")
    if options.with_specs:
        lines.append(
            "With (attached before mutate): " + " ".join(f"--with {s}" for s in options.with_specs)
        )
    return lines


def write_static(source: SourceFile, expansion, resolver, flow_ns, locator) -> str:
    return StaticWriter(source, expansion, resolver, flow_ns, locator).write()


def flow_request(source: SourceFile, options, trigger: Trigger):
    """The expansion request for one flow, from the compile options."""
    from ..expansion import FlowRequest

    return FlowRequest(
        path=source.path,
        configs=tuple(options.configs),
        config_values=tuple(options.config_values),
        with_specs=tuple(options.with_specs),
        search_path=tuple(str(p) for p in options.search_path),
        blame=trigger.location,
        blame_name=trigger.name,
    )


#: Expansions computed ahead for a batch (one child for all), by (path, options key).
PRELOADED: dict[tuple, object] = {}
#: Set by a batch (`project.compile_tasks`): a flow needing expansion is not expanded on its
#: own but reported (`NeedsExpansion`), so that one child process serves all of them.
DEFER = False


class NeedsExpansion(Exception):
    """A flow of a batch needs expansion; `request` says what to evaluate."""

    def __init__(self, request, options) -> None:
        super().__init__(str(request.path))
        self.request = request
        self.options = options


def preload(requests_and_options, display) -> None:
    """Expand the deferred flows of a batch: one child per interpreter; results kept in
    PRELOADED (an expansion, or the CompileError of its diagnostics)."""
    from ..expansion import ExpansionOptions, expand

    groups: dict[tuple, list] = {}
    for request, options in requests_and_options:
        groups.setdefault((options.python, options.expansion_timeout), []).append(
            (request, options)
        )
    for (python, timeout), items in groups.items():
        outcomes = expand(
            [r for r, _ in items],
            ExpansionOptions(python=python, timeout=timeout),
            lambda p: display(p),
        )
        for (request, options), outcome in zip(items, outcomes):
            key = options_key(request.path, options)
            if outcome.diagnostics:
                PRELOADED[key] = CompileError(outcome.diagnostics)
            else:
                PRELOADED[key] = outcome.expansion


def options_key(path: Path, options) -> tuple:
    return (
        str(path),
        options.python,
        tuple(options.configs),
        tuple(options.config_values),
        tuple(options.with_specs),
        options.expansion_timeout,
    )


def obtain(source: SourceFile, options, trigger: Trigger, display):
    """The expansion of one flow: preloaded by the batch, else evaluated now."""
    from ..expansion import ExpansionOptions, expand_or_raise

    key = options_key(source.path, options)
    if key in PRELOADED:
        found = PRELOADED[key]
        if isinstance(found, CompileError):
            raise found
        return found
    request = flow_request(source, options, trigger)
    if DEFER:
        raise NeedsExpansion(request, options)
    [expansion] = expand_or_raise(
        [request],
        ExpansionOptions(
            python=options.python,
            configs=tuple(options.configs),
            config_values=tuple(options.config_values),
            timeout=options.expansion_timeout,
        ),
        display,
    )
    return expansion
