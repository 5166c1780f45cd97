"""Pass 1: expand a flow built by mutators and configs into a plain flow (issue 12).

Metaflow applies mutators and resolves configs when a flow is deployed, and decoflow
compiles at deploy time; so for such a flow, Metaflow's own code is asked for the result,
which is then written out as a plain flow that the following passes compile like any other.
Most flows need none of this, and compile without starting a process or importing
Metaflow. In the order the pipeline uses them:

1. `detect`: whether the flow needs expansion (`find_trigger`), read statically;
2. `obtain`: the expansion, evaluated by Metaflow in a child process (`expansion/`), or
   taken from those a batch computed together (`preload`);
3. `write`: the flow written out from it (`write_static`), with the help of `flatten`
   (base classes carried into the flow class) and `imports` (the module's imports after).

A flow that needs no expansion but inherits steps from a base class in another module that
uses custom decorators (`detect.find_custom_bases`) is flattened statically instead
(`inherit`), without a process or an import.

`DEFER` is set by a batch (`project.compile_tasks`) while it compiles its flows a first
time: a flow needing expansion then raises `NeedsExpansion` instead of starting its own
child, so that one child serves all of them; `PRELOADED` holds what that child returned.
"""

from typing import TYPE_CHECKING, Any

from .detect import Trigger, find_custom_bases, find_trigger
from .obtain import PRELOADED, NeedsExpansion, obtain_expansion, preload

if TYPE_CHECKING:
    from .write import header_lines, write_static

DEFER = False


def __getattr__(name: str) -> Any:
    """`write` (with `flatten` and `imports`) is imported only for a flow being expanded."""
    if name in ("header_lines", "write_static"):
        from . import write

        return getattr(write, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFER",
    "PRELOADED",
    "NeedsExpansion",
    "Trigger",
    "find_custom_bases",
    "find_trigger",
    "header_lines",
    "obtain_expansion",
    "preload",
    "write_static",
]
