"""Steps' sources, carried as constants for the decorators that ask `inspect` for them.

`inspect.getsource(<a step>)` in a decorator natively returns the step as written in the
flow file. The compiled step is not that text, so the call is answered at compile time: the
text becomes a module-level string constant of the output, and the inlined call reads it
(see `inline.decorator`). What cannot be answered so gets a warning (DF601).
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst

from ...support.diagnostics import INSPECT_READS_COMPILED, Diagnostic
from ...support.locate import LazyLocation, Locator
from ...support.names import NameAllocator, name_nodes
from ...support.source import SourceFile
from ..analyze import GeneratorInfo
from ..analyze.inspect_uses import THIS_STEP, native_source, string_constant
from ..discover import DecoratorUse, StepSite


def read_only_in(info: GeneratorInfo, calls: set[cst.CSTNode]) -> set[str]:
    """Module-level names the decorator reads only inside the calls `calls`, which the
    output replaces by constants: nothing needs them carried (`inspect` for getsource)."""
    inside = [n for u in info.inspect_uses if u.node in calls for n in name_nodes(u.node)]
    counts: dict[str, int] = {}
    for name in info.names.global_refs.values():
        counts[name] = counts.get(name, 0) + 1
    for node in inside:
        name = info.names.global_refs.get(node)
        if name is not None:
            counts[name] -= 1
    declared = info.names.declared_globals
    return {name for name, count in counts.items() if count == 0 and name not in declared}


class StepSources:
    """The constants holding steps' sources, named once per step, and the warnings for the
    questions they cannot answer."""

    def __init__(self, flow: SourceFile, locator: Locator, alloc: NameAllocator) -> None:
        self.flow = flow
        self.locator = locator
        self.alloc = alloc
        self.warnings: list[Diagnostic] = []
        # (class, method) -> its source constant's name, its text
        self._sources: dict[tuple[str, str], tuple[str, str]] = {}

    def for_use(
        self, site: StepSite, use: DecoratorUse, info: GeneratorInfo
    ) -> tuple[tuple[cst.CSTNode, str], ...]:
        """Constants for the decorator's `inspect.getsource(<a step>)` calls (the step's
        text as natively read from the flow file); a DF601 warning for what cannot be
        answered so."""
        out: list[tuple[cst.CSTNode, str]] = []
        for found in info.inspect_uses:
            name = site.name if found.step == THIS_STEP else found.step
            method = self._method(site.class_name, name) if name is not None else None
            if found.replaced and method is not None:
                assert name is not None
                out.append((found.node, self._constant(site.class_name, name, method)))
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
                    f"{call} about {about} reads the compiled flow file: its lines, line "
                    "numbers and file differ from the original's"
                )
            note = (LazyLocation(self.locator, self.flow, use.node), f"@{use.written} used here")
            message = f"@{use.written}: {message}"
            self.warnings.append(INSPECT_READS_COMPILED(message, found.location, (note,)))
        return tuple(out)

    def definitions(self) -> list[tuple[str, cst.BaseStatement]]:
        """The constants, as carried definitions (in the order they were named)."""
        origin = f"{self.flow.display} (a step's source, as inspect.getsource reads it there)"
        return [(origin, string_constant(n, text)) for n, text in self._sources.values()]

    def _method(
        self, class_name: str, name: str, seen: frozenset[str] = frozenset()
    ) -> cst.FunctionDef | None:
        """The method `name` of top-level class `class_name` of the flow file, or of a base
        class defined there too (None: not code of this file)."""
        classes: Mapping[str, cst.ClassDef] = {
            s.name.value: s for s in self.flow.module.body if isinstance(s, cst.ClassDef)
        }
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

    def _constant(self, class_name: str, name: str, method: cst.FunctionDef) -> str:
        key = (class_name, name)
        if key not in self._sources:
            start = method.decorators[0] if method.decorators else method
            text = native_source(self.flow.text, self.locator.locate(self.flow, start).line)
            self._sources[key] = (self.alloc.claim(f"{name.upper()}_SOURCE"), text)
        return self._sources[key][0]
