"""Positions, computed only when a diagnostic needs one (PositionProvider costs ~10x a parse)."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .diagnostics import Location
from .source import SourceFile

#: Positions computed ahead (`compute_ahead`) for modules a coming compile will locate
#: nodes in, until `forget_ahead` (a batch computes them while it waits for Metaflow).
_AHEAD: dict[cst.Module, object] = {}


def _positions(module: cst.Module) -> object:
    return MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)


def compute_ahead(module: cst.Module) -> None:
    """Compute the positions of `module` now, for the next `Locator` that needs them."""
    if module not in _AHEAD:
        _AHEAD[module] = _positions(module)


def forget_ahead() -> None:
    """Drop the positions computed ahead (and the modules they keep alive)."""
    _AHEAD.clear()


class Locator:
    """Maps nodes of parsed files to `Location`s, resolving positions lazily per file."""

    def __init__(self) -> None:
        self._positions: dict[cst.Module, object] = {}

    def locate(self, source: SourceFile, node: cst.CSTNode | None) -> Location:
        if node is None:
            return Location(source.display)
        key = source.module
        if key not in self._positions:
            ahead = _AHEAD.get(key)
            self._positions[key] = ahead if ahead is not None else _positions(key)
        positions = self._positions[key]
        pos = positions.get(node)  # type: ignore[attr-defined]
        if pos is None:
            return Location(source.display)
        return Location(source.display, pos.start.line, pos.start.column + 1)


class LazyLocation:
    """A `Location` computed on first use: building a diagnostic that is never reported is free."""

    def __init__(self, locator: Locator, source: SourceFile, node: cst.CSTNode | None) -> None:
        self._args = (locator, source, node)
        self._resolved: Location | None = None

    def resolve(self) -> Location:
        if self._resolved is None:
            locator, source, node = self._args
            self._resolved = locator.locate(source, node)
        return self._resolved

    @property
    def path(self) -> str:
        return self.resolve().path

    @property
    def line(self) -> int:
        return self.resolve().line

    @property
    def column(self) -> int:
        return self.resolve().column

    def __str__(self) -> str:
        return str(self.resolve())

    def __reduce__(self) -> tuple[type[Location], tuple[str, int, int]]:
        """Pickled (to or from a worker process) as the plain `Location` it resolves to."""
        where = self.resolve()
        return (Location, (where.path, where.line, where.column))


def locate_in_copy(
    locator: Locator,
    source: SourceFile,
    original: cst.CSTNode,
    copy: cst.CSTNode,
    node: cst.CSTNode,
) -> Location:
    """Where `node`, a node of `copy` (a rewritten copy of `original`, which has positions),
    is in the source: found by its text after the start of `original`, else that start."""
    if copy is original:
        return locator.locate(source, node)
    code = cst.Module(body=[]).code_for_node(node)
    start = locator.locate(source, original)
    offset = source.text.find(code, _line_start(source.text, start.line))
    if offset < 0:
        return start
    line = source.text.count("\n", 0, offset) + 1
    column = offset - _line_start(source.text, line) + 1
    return Location(source.display, line, column)


def _line_start(text: str, line: int) -> int:
    """The offset in `text` where its (1-based) `line` starts."""
    pos = 0
    for _ in range(line - 1):
        nxt = text.find("\n", pos)
        if nxt < 0:
            return len(text)
        pos = nxt + 1
    return pos
