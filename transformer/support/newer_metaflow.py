"""What only Metaflow 2.16+ has, and the compiled flow's imports that still need it (DF602).

A compiled flow imports nothing of 2.16+ itself, but it may keep importing a module of the
project (a helper module the flow uses, a decorator module it passes around bare) that
imports, at its top level, a name only 2.16+ has (`from metaflow import FlowMutator`). On
Metaflow 2.15 that import fails (`ImportError: cannot import name 'FlowMutator'`), and the
compiled flow needs that module beside it anyway. `newer_metaflow_imports` finds such imports
in the output, by reading files as the rest of the compiler does (never importing them);
and the output's own `from metaflow import X` of such a name (a flow importing FlowMutator
without using it keeps that import):

- only the output's own top-level import statements (one guarded by `try`/`if` is not
  followed), and only those naming a module found in the project's own roots (the flow's
  folder, the search path, PYTHONPATH): Metaflow, the standard library and installed
  packages are skipped before anything is looked up, so a flow importing only from
  `metaflow` costs a loop over its top-level statements and nothing else;
- in such a module, its top-level `from metaflow import X` with X in `MISSING_BEFORE_2_16`, and
  one level further: the same in the project modules it imports at its top level (a module
  importing a module that imports a mutator fails as well). Deeper chains are not followed:
  each level may parse more of the project, for a case not met so far.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import libcst as cst

from .diagnostics import NEEDS_NEWER_METAFLOW, CompileError, Diagnostic, Location
from .locate import Locator
from .namespace import (
    METAFLOW,
    ImportFrom,
    ImportModule,
    Namespace,
    Resolver,
    dotted_name,
)
from .resolve import ModuleFinder
from .source import SourceFile

#: Metaflow names of the 2.16+ machinery (mutators, custom decorators, configs read by them):
#: a module importing one is expanded or flattened, and a compiled flow imports none of them.
NEWER_METAFLOW = {
    "FlowMutator",
    "StepMutator",
    "UserStepDecorator",
    "user_step_decorator",
    "USER_SKIP_STEP",
    "config_expr",
}
#: Those Metaflow 2.15 does not have: importing one fails there (measured on 2.15.21, which
#: has `config_expr`: a plain flow reading a Config in a built-in's arguments runs on it).
MISSING_BEFORE_2_16 = frozenset(NEWER_METAFLOW - {"config_expr"})

#: Top-level names never looked up: Metaflow's and the standard library's (3.10+ lists it).
_SKIPPED = frozenset({METAFLOW, "__future__"}) | frozenset(getattr(sys, "stdlib_module_names", ()))


def _imported(small: cst.BaseSmallStatement) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(module, names) per module a top-level import statement imports: `import a.b` gives
    ('a.b', ()), `from a import x, y` ('a', ('x', 'y')), which may be submodules."""
    if isinstance(small, cst.Import):
        for alias in small.names:
            name = dotted_name(alias.name)
            if name:
                yield name, ()
    elif isinstance(small, cst.ImportFrom):
        written = dotted_name(small.module) if small.module else None
        module = ModuleFinder.absolute_name(None, written, len(small.relative))
        if module:
            names = () if isinstance(small.names, cst.ImportStar) else small.names
            yield module, tuple(dotted_name(a.name) or "" for a in names)


def _top_imports(module: cst.Module) -> Iterator[tuple[cst.SimpleStatementLine, str, tuple]]:
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                for name, names in _imported(small):
                    yield stmt, name, names


class _Checker:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self._direct: dict[str, tuple[Namespace, ImportFrom] | None] = {}

    def local(self, dotted: str) -> Namespace | None:
        """The module `dotted` when it is the project's own (not Metaflow, the standard
        library or an installed package), read; else None."""
        if dotted.split(".")[0] in _SKIPPED:
            return None
        ref = self.resolver.finder.find(dotted)
        if ref is None or ref.external or ref.path.suffix != ".py":
            return None
        try:
            ns = self.resolver.namespace_of(dotted)
        except CompileError:  # unreadable: the compile reports it where it matters
            return None
        return ns if isinstance(ns, Namespace) else None

    def modules(self, dotted: str, names: tuple[str, ...]) -> list[str]:
        """What `import dotted` or `from dotted import names` runs: each package on the
        way, the module, and the names that are submodules of a project package."""
        if dotted.split(".")[0] in _SKIPPED:
            return []
        parts = dotted.split(".")
        out = [".".join(parts[: i + 1]) for i in range(len(parts))]
        ref = self.resolver.finder.find(dotted)
        if ref is not None and ref.is_package and not ref.external:
            finder = self.resolver.finder
            out += [f"{dotted}.{n}" for n in names if n and finder.find(f"{dotted}.{n}")]
        return out

    def direct(self, dotted: str) -> tuple[Namespace, ImportFrom] | None:
        """The module and its top-level import of a 2.16+ name, if it has one."""
        if dotted not in self._direct:
            self._direct[dotted] = None
            ns = self.local(dotted)
            for binding in ns.bindings.values() if ns is not None else ():
                if (
                    isinstance(binding, ImportFrom)
                    and binding.module == METAFLOW
                    and binding.name in MISSING_BEFORE_2_16
                ):
                    self._direct[dotted] = (ns, binding)
                    break
        return self._direct[dotted]

    def find(self, dotted: str) -> list[tuple[Namespace, str, ImportFrom | ImportModule]]:
        """The chain that makes `dotted` need 2.16+: [(module, what it imports, how)], one
        item (it imports the name itself) or two (a module it imports does); else []."""
        found = self.direct(dotted)
        if found is not None:
            ns, binding = found
            return [(ns, binding.name, binding)]
        ns = self.local(dotted)
        for binding in ns.bindings.values() if ns is not None else ():
            if isinstance(binding, ImportModule):
                inner = [binding.dotted]
            elif isinstance(binding, ImportFrom) and binding.module:
                inner = self.modules(binding.module, (binding.name,))
            else:
                continue
            for name in inner:
                deeper = self.direct(name) if name != dotted else None
                if deeper is not None:
                    assert ns is not None
                    return [(ns, name, binding), (deeper[0], deeper[1].name, deeper[1])]
        return []


def newer_metaflow_imports(
    output: cst.Module, origin: SourceFile, resolver: Resolver, locator: Locator
) -> list[Diagnostic]:
    """DF602 for each project module the compiled module `output` still imports at its top
    level that needs Metaflow 2.16+, at the flow's (`origin`'s) import of it."""
    checker: _Checker | None = None
    out: list[Diagnostic] = []
    seen: set[str] = set()
    for _stmt, dotted, names in _top_imports(output):
        if dotted == METAFLOW:  # the output's own import of a 2.16+ name (no file read)
            for name in names:
                if name in MISSING_BEFORE_2_16 and name not in seen:
                    seen.add(name)
                    out.append(_own_import(name, origin, locator))
        if dotted.split(".")[0] in _SKIPPED:
            continue
        checker = checker or _Checker(resolver)
        for module in checker.modules(dotted, names):
            if module in seen:
                continue
            seen.add(module)
            chain = checker.find(module)
            if chain:
                out.append(_diagnostic(module, chain, origin, locator))
    return out


def _diagnostic(
    module: str,
    chain: list[tuple[Namespace, str, ImportFrom | ImportModule]],
    origin: SourceFile,
    locator: Locator,
) -> Diagnostic:
    newer = chain[-1][1]
    files = [ns.source.display for ns, _, _ in chain]
    if len(chain) == 1:
        why = f"which imports {newer} from metaflow"
    else:
        why = f"which imports {chain[0][1]}, which imports {newer} from metaflow"
    message = (
        f"the compiled flow still imports {module}, {why} (only Metaflow 2.16+ has it): "
        f"the compiled flow needs {' and '.join(files)} beside it, and Metaflow 2.16+, at "
        f"run time (on older Metaflow, importing it fails: ImportError: cannot import name "
        f"'{newer}')"
    )
    notes = tuple(
        (locator.locate(ns.source, binding.stmt), f"{_name(ns)} imports {what} here")
        for ns, what, binding in chain
    )
    return NEEDS_NEWER_METAFLOW(message, _at(origin, module, locator), notes)


def _own_import(name: str, origin: SourceFile, locator: Locator) -> Diagnostic:
    message = (
        f"the compiled flow still imports {name} from metaflow, which only Metaflow 2.16+ "
        f"has: it needs Metaflow 2.16+ at run time (on older Metaflow, importing it fails: "
        f"ImportError: cannot import name '{name}'); remove the import if the flow does not "
        "use it"
    )
    return NEEDS_NEWER_METAFLOW(message, _at(origin, f"{METAFLOW}.{name}", locator))


def _name(ns: Namespace) -> str:
    return ns.ref.name if ns.ref is not None else ns.source.display


def _at(origin: SourceFile, module: str, locator: Locator) -> Location:
    """The flow's own import of `module` (or of a package or module it is part of, or from
    which it is imported); its first line when the import was carried from elsewhere."""
    best = None
    for stmt, dotted, names in _top_imports(origin.module):
        imported = {dotted, *(f"{dotted}.{n}" for n in names)}
        if module in imported:
            return locator.locate(origin, stmt)
        if best is None and (dotted.startswith(module + ".") or module.startswith(dotted + ".")):
            best = stmt
    return locator.locate(origin, best) if best is not None else Location(origin.display, 1, 1)
