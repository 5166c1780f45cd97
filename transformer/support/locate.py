"""Positions, computed only when a diagnostic needs one (PositionProvider costs ~10x a parse)."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .diagnostics import Location
from .source import SourceFile


class Locator:
    """Maps nodes of parsed files to `Location`s, resolving positions lazily per file."""

    def __init__(self) -> None:
        self._positions: dict[int, object] = {}

    def locate(self, source: SourceFile, node: cst.CSTNode | None) -> Location:
        if node is None:
            return Location(source.display)
        key = id(source.module)
        if key not in self._positions:
            wrapper = MetadataWrapper(source.module, unsafe_skip_copy=True)
            self._positions[key] = wrapper.resolve(PositionProvider)
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
