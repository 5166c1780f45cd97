"""The carrier: decides the output name of each module-level name a decorator reads, and
collects the code that defines it in the output (copied definitions, re-emitted imports,
modules carried as objects).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from ...support.diagnostics import Diagnostic
from ...support.memo import NodeMemo
from ...support.names import NameAllocator, attribute_uses, child_nodes
from ...support.namespace import (
    METAFLOW,
    Defined,
    Definition,
    ImportFrom,
    ImportModule,
    ModuleObject,
    Namespace,
    Resolver,
    build_namespace,
    dotted_name,
)
from ...support.records import frozen
from ...support.rename import SKIP_LITERAL
from ...support.source import SourceFile
from .copies import ModuleScopes, module_scopes, postpones_annotations, reads_outside, renamed_copy

if TYPE_CHECKING:
    from .classes import ClassCode

# Names that exist only in Metaflow 2.16+; the compiled flow must not mention them.
METAFLOW_ONLY = frozenset(
    {"user_step_decorator", "USER_SKIP_STEP", "UserStepDecorator", "StepMutator", "FlowMutator"}
)

# Scope facts per parsed module, shared by every compile in the process (modules are parsed
# once per process, see `resolve.parse_cached`).
_SCOPES: NodeMemo[ModuleScopes] = NodeMemo()
_BINDINGS: NodeMemo[dict] = NodeMemo()


def _rebinds(ns: Namespace, name: str) -> bool:
    """Whether module `ns` declares `global name` somewhere (a function rebinds it)."""
    if "global" not in ns.source.text:
        return False
    stack: list[cst.CSTNode] = [ns.source.module]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Global) and any(item.name.value == name for item in node.names):
            return True
        stack.extend(child_nodes(node))
    return False


def _bindings_of(ns: Namespace, stmt: cst.BaseStatement) -> dict:
    """The top-level names one statement of `ns` binds, with what each is bound to."""

    def compute() -> dict:
        alone = SourceFile(ns.source.path, ns.source.display, "", cst.Module(body=[stmt]))
        return build_namespace(alone, ns.ref).bindings

    return _BINDINGS.get(stmt, None, compute)


@frozen
class CarriedCode:
    """What carrying adds to the output module, and the module-level names it takes."""

    imports: tuple[cst.SimpleStatementLine, ...]
    definitions: tuple[tuple[str, cst.BaseStatement], ...]  # (the module it comes from, code)
    claimed: frozenset[str]  # every name the output module now binds or reserves
    warnings: tuple[Diagnostic, ...] = ()  # what compiles but may differ (DF6xx)
    flow_imports: frozenset[str] = frozenset()  # flow imports now carried: dropped
    classes: ClassCode | None = None  # class-based decorators' module-level code


@dataclass
class _Carried:
    """A module-level statement to carry, where it is and its position in its module."""

    namespace: Namespace
    stmt: cst.CSTNode
    index: int


class Carrier:
    """Decides output names for module-level names and collects what must be emitted."""

    def __init__(self, resolver: Resolver, flow_ns: Namespace, reserved: set[str]) -> None:
        self.resolver = resolver
        self.flow_ns = flow_ns
        self.alloc = NameAllocator(reserved)
        self._flow_postpones = postpones_annotations(flow_ns.source.module)
        self._flow_modules = {
            b.dotted if isinstance(b, ImportModule) else b.module
            for b in flow_ns.bindings.values()
            if isinstance(b, (ImportModule, ImportFrom))
        }
        self._shared: dict[str, bool] = {}  # module -> imported as the flow imports it
        self._names: dict[tuple[str, str], str] = {}  # (module path, name) -> output name
        self._imports: dict[tuple, tuple[str, cst.SimpleStatementLine]] = {}
        self._import_order: list[tuple] = []
        self._defs: dict[tuple[str, int], _Carried] = {}
        self._def_order: list[tuple[str, int]] = []
        self._namespaces: dict[
            str, tuple[str, Namespace, set[str]]
        ] = {}  # dotted -> (name, ns, attrs)
        self._module_keys: dict[tuple[str, str], str] = {}  # (module path, name) -> dotted module
        self._prefer: str | None = None  # the output name the next carried definition takes
        self._preferred: dict[tuple[str, str], str] = {}  # (module path, name) -> see `prefer`
        self._adopted: set[str] = set()  # flow names given to carried code
        # id(a top-level class) -> methods its copy leaves out (set by carry/classes: a
        # class-based decorator's mutate, once applied): what only they read is not carried
        self.left_out: dict[int, frozenset[str]] = {}

    # -- public ---------------------------------------------------------------------------

    def output_name(self, ns: Namespace, name: str, attrs: set[str] | None = None) -> str:
        """The name the output uses for module-level `name` of module `ns` (carrying it).

        `attrs`: the attributes read from it, if it may be a module object (`registry.note`);
        "" among them means it is also used as a plain value."""
        if ns is self.flow_ns:
            binding = ns.bindings.get(name)
            if (
                isinstance(binding, ImportFrom)
                and binding.module == METAFLOW
                and binding.name == "USER_SKIP_STEP"
            ):
                return SKIP_LITERAL
            return name
        key = (str(ns.source.path), name)
        if key not in self._names:
            self._prefer = self._preferred.pop(key, None)  # taken by its first claim
            self._names[key] = self._carry(ns, name, attrs)
            self._prefer = None
        elif attrs and key in self._module_keys:
            self._module_object(self._module_keys[key], name, attrs)
        return self._names[key]

    def carries_module(self, ns: Namespace, dotted: str) -> bool:
        """Whether code of module `dotted`, imported by `ns`, is carried (not imported)."""
        return self._is_carried_module(ns, dotted)

    def prefer(self, ns: Namespace, name: str, as_name: str) -> None:
        """The flow imports module-level `name` of `ns` as `as_name` for its own use (the
        import is dropped): carry it under `as_name` itself, so that the flow and the
        decorators share it under the flow's name, unless it is rebound (`global`) where it
        is defined (the flow's import keeps the value it had; see `output_name`), or carried
        already. Call before carrying anything, for every such import."""
        target = self.resolver.resolve(ns, name)
        keys = [(str(ns.source.path), name)]
        if isinstance(target, Defined):
            if _rebinds(target.namespace, target.name):
                return
            keys.append((str(target.namespace.source.path), target.name))
        if not _rebinds(ns, name):
            for key in keys:
                self._preferred.setdefault(key, as_name)

    def flow_module(self, module: Namespace, as_name: str, members: set[str]) -> str:
        """The output name of carried `module`, which the flow imports as `as_name` and reads
        `members` of: a namespace of them, named `as_name` if it is made here."""
        dotted = module.ref.name if module.ref else ""
        if dotted not in self._namespaces:
            self._prefer = as_name
        try:
            return self._module_object(dotted, as_name, members)
        finally:
            self._prefer = None

    def finish(
        self,
        more: Sequence[tuple[str, cst.BaseStatement]] = (),
        warnings: Sequence[Diagnostic] = (),
        flow_imports: frozenset[str] = frozenset(),
        classes: Callable[[list[tuple[str, cst.BaseStatement]]], list] | None = None,
    ) -> CarriedCode:
        """The code carried for every name asked for so far, then `more` definitions.
        Modules carried as objects come after the other definitions; building them may
        carry more (their members, an import of `types`), so they are built first."""
        namespaces = self._namespace_lines()
        definitions = self._definitions()
        if classes is not None:  # class-based decorators: their bases swapped (`classes`)
            definitions = classes(definitions)
        definitions += [("the modules above, as objects", n) for n in namespaces]
        definitions += more
        return CarriedCode(
            imports=tuple(self._imports[k][1] for k in self._import_order),
            definitions=tuple(definitions),
            claimed=frozenset(self.alloc.taken),
            warnings=tuple(warnings),
            flow_imports=flow_imports,
        )

    def _definitions(self) -> list[tuple[str, cst.BaseStatement]]:
        """Carried definitions in emission order, each with the module it comes from."""
        out = []
        for key in self._def_order:
            item = self._defs[key]
            scopes = self._module_scopes(item.namespace)
            used = self._reads(item.namespace, item.index) | set(
                _bindings_of(item.namespace, item.stmt)
            )
            names = {n: self.output_name(item.namespace, n) for n in used}
            strings = not self._flow_postpones and postpones_annotations(
                item.namespace.source.module
            )
            out.append(
                (
                    item.namespace.source.display,
                    renamed_copy(item.stmt, scopes.refs, names, strings),
                )
            )
        return out

    # -- internals ------------------------------------------------------------------------

    def _module_scopes(self, ns: Namespace) -> ModuleScopes:
        module = ns.source.module
        return _SCOPES.get(module, None, lambda: module_scopes(module))

    def _is_carried_module(self, ns: Namespace, dotted: str) -> bool:
        if dotted == METAFLOW or dotted.startswith(METAFLOW + "."):
            return False
        ref = self.resolver.finder.find(dotted)
        if ref is None:
            return False
        if not ref.external:
            return not self._shared_with_flow(dotted)
        own = ns.ref.name.split(".")[0] if ns.ref else None
        return own is not None and dotted.split(".")[0] == own

    def _shared_with_flow(self, dotted: str) -> bool:
        """A module of the project that the flow imports itself and that needs nothing of
        Metaflow 2.16+ (no custom decorator in it or in what it imports): the output imports
        it as the flow does, so that the flow and the decorators share its state (a list
        both append to) instead of each having a copy."""
        if dotted not in self._flow_modules:
            return False
        if dotted not in self._shared:
            self._shared[dotted] = not self._needs_new_metaflow(dotted, set())
        return self._shared[dotted]

    def _needs_new_metaflow(self, dotted: str, seen: set[str]) -> bool:
        """Whether importing `dotted` (its packages, itself, the project modules it imports)
        reads a name only Metaflow 2.16+ has; unknown counts as yes."""
        parts = dotted.split(".")
        for module in (".".join(parts[: i + 1]) for i in range(len(parts))):
            if module in seen:
                continue
            seen.add(module)
            target = self.resolver.namespace_of(module)
            if not isinstance(target, Namespace):
                return True
            if any(n in target.source.text for n in METAFLOW_ONLY):
                return True
            for binding in target.bindings.values():
                used = (
                    binding.dotted
                    if isinstance(binding, ImportModule)
                    else binding.module
                    if isinstance(binding, ImportFrom)
                    else None
                )
                if not used or used == METAFLOW or used.startswith(METAFLOW + "."):
                    continue
                ref = self.resolver.finder.find(used)
                if ref is not None and not ref.external and self._needs_new_metaflow(used, seen):
                    return True
        return False

    def _carry(self, ns: Namespace, name: str, attrs: set[str] | None) -> str:
        binding = ns.bindings.get(name)
        if binding is None:
            return name  # a builtin, or undefined (fails at run time as it would natively)
        if isinstance(binding, ImportFrom):
            if (binding.module or "").split(".")[0] == METAFLOW and binding.name in METAFLOW_ONLY:
                return SKIP_LITERAL if binding.name == "USER_SKIP_STEP" else name
            if binding.module and self._is_carried_module(ns, binding.module):
                target = self.resolver.resolve(ns, name)
                if isinstance(target, Defined):
                    return self.output_name(target.namespace, target.name, attrs)
                if isinstance(target, ModuleObject) and self._is_carried_module(ns, target.dotted):
                    self._module_keys[(str(ns.source.path), name)] = target.dotted
                    return self._module_object(target.dotted, name, attrs or {""})
            return self._import(("from", binding.module, binding.name), name, binding)
        if isinstance(binding, ImportModule):
            written = self._written_module(binding)
            if (
                self._is_carried_module(ns, binding.dotted)
                and "." not in written
                or (self._is_carried_module(ns, binding.dotted) and binding.dotted == written)
            ):
                self._module_keys[(str(ns.source.path), name)] = binding.dotted
                return self._module_object(binding.dotted, name, attrs or {""})
            return self._import(("import", binding.dotted), name, binding)
        return self._definition(ns, name, binding)

    def _module_object(self, dotted: str, name: str, attrs: set[str]) -> str:
        """A module of the user's package used as an object (`from . import registry`):
        carried as a namespace of the members that are read from it."""
        target = self.resolver.namespace_of(dotted)
        if not isinstance(target, Namespace):
            return name
        if dotted not in self._namespaces:
            out = self._take_preferred() or self.alloc.claim(
                name if self.alloc.is_free(name) else f"{dotted.replace('.', '_')}"
            )
            self._namespaces[dotted] = (out, target, set())
        out, target, members = self._namespaces[dotted]
        wanted = set(attrs) - {""}
        if "" in attrs:  # passed around as a value: all it defines
            wanted |= {n for n, b in target.bindings.items() if isinstance(b, Definition)}
        for attr in sorted(wanted - members):
            if attr in target.bindings:
                members.add(attr)
                self.output_name(target, attr)
        return out

    def _namespace_lines(self) -> list[cst.BaseStatement]:
        """`name = types.SimpleNamespace(member=..., ...)` for each module carried as an object."""
        if not self._namespaces:
            return []
        types_name = self._import(("import", "types"), "types", ImportModule("types", cst.Pass()))
        out: list[cst.BaseStatement] = []
        for dotted, (name, target, members) in self._namespaces.items():
            args = ", ".join(f"{m}={self.output_name(target, m)}" for m in sorted(members))
            out.append(
                cst.parse_statement(
                    f"{name} = {types_name}.SimpleNamespace({args})  # module {dotted}"
                )
            )
        return out

    def _import(self, key: tuple, name: str, binding: ImportFrom | ImportModule) -> str:
        if key in self._imports:
            return self._imports[key][0]
        for flow_name, flow_binding in self.flow_ns.bindings.items():
            if flow_binding == binding and (flow_name == name or isinstance(binding, ImportFrom)):
                self._imports[key] = (flow_name, cst.SimpleStatementLine(body=[]))
                return flow_name
        dotted = binding.dotted if isinstance(binding, ImportModule) else None
        if dotted is not None and "." in self._written_module(binding):
            out = name  # `import a.b` binds `a`; keep it as written
            self.alloc.reserve(out)
            line = cst.parse_statement(f"import {self._written_module(binding)}")
        else:
            stem = (key[1] or "mod").split(".")[-1]
            out = self._take_preferred() or self._claim(name, stem)
            if isinstance(binding, ImportModule):
                line = cst.parse_statement(
                    f"import {binding.dotted}" + (f" as {out}" if out != binding.dotted else "")
                )
            else:
                line = cst.parse_statement(
                    f"from {binding.module} import {binding.name}"
                    + (f" as {out}" if out != binding.name else "")
                )
        assert isinstance(line, cst.SimpleStatementLine)
        self._imports[key] = (out, line)
        self._import_order.append(key)
        return out

    @staticmethod
    def _written_module(binding: ImportModule) -> str:
        stmt = binding.stmt
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        full = dotted_name(alias.name) or ""
                        if alias.asname is None and full.split(".")[0] == binding.dotted:
                            return full
        return binding.dotted

    def _definition(self, ns: Namespace, name: str, binding: Definition) -> str:
        index = next(i for i, s in enumerate(ns.source.module.body) if s is binding.stmt)
        path = ns.source.path
        stem = path.stem if path.stem != "__init__" else path.parent.name
        out = self._take_preferred() or self._claim(name, stem)
        self._names[(str(path), name)] = out
        self._statement(ns, index)
        return out

    def _claim(self, name: str, stem: str) -> str:
        return self.alloc.claim(name if self.alloc.is_free(name) else f"{stem}_{name}")

    def _take_preferred(self) -> str | None:
        """The name asked for by `prefer`/`flow_module`, once (the flow's own name for what
        it imported: free once its import is dropped)."""
        preferred, self._prefer = self._prefer, None
        if preferred is None or preferred in self._adopted:
            return None
        self._adopted.add(preferred)
        self.alloc.reserve(preferred)
        return preferred

    def _statement(self, ns: Namespace, index: int) -> None:
        """Carry top-level statement `index` of `ns` after what it reads."""
        key = (str(ns.source.path), index)
        if key in self._defs:
            return
        stmt = ns.source.module.body[index]
        self._defs[key] = _Carried(ns, stmt, index)
        attrs = attribute_uses(stmt)
        binds = set(_bindings_of(ns, stmt))
        for bound in sorted(binds):  # named alike wherever bound (also before a rebinding)
            self.output_name(ns, bound)
        for dep in sorted(self._reads(ns, index)):
            if dep in binds:
                # It reads a name it binds itself: the binding before it when it runs
                # (`LIMIT = LIMIT * 2`), or itself later (a recursive function).
                self._earlier_binding(ns, index, dep)
            else:
                self.output_name(ns, dep, attrs.get(dep))
        self._def_order.append(key)

    def _reads(self, ns: Namespace, index: int) -> frozenset[str]:
        """The module-level names top-level statement `index` reads (outside `left_out`)."""
        scopes = self._module_scopes(ns)
        members = self.left_out.get(id(ns.source.module.body[index]))
        if not members:
            return scopes.reads[index]
        return reads_outside(ns.source.module.body[index], members, scopes, index)

    def _earlier_binding(self, ns: Namespace, index: int, name: str) -> None:
        """Carry the statement before `index` that binds `name` too, unless it imports a
        module whose code is carried (the name then stays unbound, as before)."""
        for earlier in range(index - 1, -1, -1):
            binding = _bindings_of(ns, ns.source.module.body[earlier]).get(name)
            if binding is None:
                continue
            module = binding.dotted if isinstance(binding, ImportModule) else None
            if isinstance(binding, ImportFrom):
                module = binding.module
            if not (module and self._is_carried_module(ns, module)):
                self._statement(ns, earlier)
            return
