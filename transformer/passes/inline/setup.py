"""The `setting_up` rule: when the step tracks whose before-code runs, and who reads it.

Metaflow runs stacked decorators as nested generators: the outer one's code before its
yield runs, then the inner one's, then the step. When an inner decorator's before-code
fails, Metaflow does not throw that failure into the outer decorators: their `except`,
`finally` and `with` exits do not see it, and the task fails at once. Inlined, that code
sits inside the outer decorators' `try` and `with` statements, which would see it.

So when an outer decorator has such guards (`guarded` statements, see pass 4) and a
decorator below may fail that way, the step keeps a marker, `setting_up`:

* it is set to a layer's level before that layer's before-code runs (`tracks`), and reset
  to 0 when its yield runs what is below it;
* a guarded decorator at level L steps aside while `setting_up > L` (`guard_level`);
* a failure Metaflow raises outside the decorators (no yield, or a second yield) sets it
  past every level first, so that every guard steps aside (`bypasses`).

A decorator that may yield twice needs its own guards skipped too where they would see
that failure (the second yield in a `try` body, a `with`, before a `finally`): after a
second yield Metaflow leaves the generator suspended, so its handlers, `finally` and `with`
exits never run. A second yield in an `except` handler with no `finally` is seen by none.

Only the parts that may see such a failure step aside (`hot_sites`): a `try`'s handlers
when one of those yields is in its body, its `finally` (a `with`'s exit) when one is
anywhere in it. A `try` around a skip sees no failure from below; a handler holding the
second yield does not see its own failure, the `finally` after it does.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from ...support.records import frozen
from ..carry import Layer


@frozen
class Setup:
    """Whether the step tracks setup, from which level, and the marker's name."""

    track_from: int | None  # the outermost guarded level, when tracking
    flag: str  # the marker ("" when not tracking)
    depth: int  # the number of layers: `flag = depth + 1` makes every guard step aside

    @property
    def tracked(self) -> bool:
        return self.track_from is not None

    def tracks(self, layer: Layer) -> bool:
        """Whether the marker is set to `layer`'s level before its before-code runs."""
        return (
            self.track_from is not None
            and layer.level > self.track_from
            and layer.info.guards.has_pre_code
        )

    def bypasses(self, layer: Layer) -> bool:
        """Whether an error Metaflow raises outside `layer` must make the guarded
        decorators (above it, and its own) step aside: their handlers re-raise, `finally`
        is skipped."""
        return self.track_from is not None and layer.level >= self.track_from

    def bypass(self, layer: Layer) -> str:
        """The statement doing so (and the indentation after it), or nothing."""
        return f"{self.flag} = {self.depth + 1}\n    " if self.bypasses(layer) else ""

    def assigns_flag(self, layer: Layer) -> bool:
        """Whether `layer`'s code assigns the marker."""
        return self.tracks(layer) or (self.bypasses(layer) and layer.info.miscounts)


def _below_fails(layers: Sequence[Layer], layer: Layer) -> bool:
    """Whether a decorator below `layer` may fail where `layer` must not see it."""
    return any(other.level > layer.level and other.info.fails_past_outer for other in layers)


def hot_sites(layers: Sequence[Layer], layer: Layer) -> frozenset[cst.CSTNode]:
    """The yields of `layer` where a failure its guards must step aside for may arise:
    where what is below it runs (when a decorator below may fail past it), and where a
    second yield fails (Metaflow then leaves the generator suspended)."""
    hot = {s.stmt for s in layer.info.sites if s.maybe_second}
    if _below_fails(layers, layer):
        hot |= {s.stmt for s in layer.info.yields_to_body}
    return frozenset(hot)


def needs_guard(layers: Sequence[Layer], layer: Layer) -> bool:
    """Whether a `try`/`with` of `layer` may see a failure it must step aside for."""
    info = layer.info
    if not info.guards.guarded:
        return False
    if getattr(info, "is_class", False):  # its `except` is around what is below it
        return _below_fails(layers, layer)
    hot = hot_sites(layers, layer)
    return any(
        (by_handlers | by_finally) & hot for by_handlers, by_finally in info.guards.sees.values()
    )


def needs_tracking(layers: Sequence[Layer]) -> int | None:
    """The level from which the step must track setup (the outermost layer with a guard
    to place), or None when no guard can see a failure it must not."""
    levels = [layer.level for layer in layers if needs_guard(layers, layer)]
    return min(levels) if levels else None


def guard_level(setup: Setup, layers: Sequence[Layer], layer: Layer) -> int | None:
    """The level at which `layer`'s guards step aside, or None when they need not."""
    if setup.track_from is None or not needs_guard(layers, layer):
        return None
    return layer.level
