"""Issue 12: evaluate a flow's configs and mutators with Metaflow's own code, in a child process.

Parent side (this package, imported by the compiler only for a flow that needs it):
    expand(requests, ExpansionOptions(...)) -> [Outcome]   # one child for the whole batch
    expand_or_raise(...) -> [Expansion]                    # or CompileError (DF501-DF505)
`runner.py` runs the child (started ahead by `prestart`), `interpreter.py` chooses the
interpreter (`choose_python`), `failures.py` words what went wrong, `result.py` reads the
answer (`Expansion`).
Child side, never imported by the parent: `child.py` (run by path in the target interpreter;
runs the stages, one flow at a time), `describe.py` (reads the expanded flow into JSON) and
`mfcompat.py` (every use of Metaflow internals, with the version check).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .interpreter import choose_python
    from .result import (
        Builtin,
        ConfigInfo,
        Expansion,
        ParameterInfo,
        StepStack,
        UserObject,
        Value,
    )
    from .runner import (
        DEFAULT_TIMEOUT,
        ExpansionOptions,
        FlowRequest,
        Outcome,
        expand,
        expand_or_raise,
    )

#: Where each name lives. They are imported on first use (PEP 562): importing the runner to
#: start the Metaflow child early (`runner.prestart`) must not import `result` as well.
_HOMES = {
    **dict.fromkeys(
        ("Builtin", "ConfigInfo", "Expansion", "ParameterInfo", "StepStack", "UserObject",
         "Value"),
        "result",
    ),
    **dict.fromkeys(
        ("DEFAULT_TIMEOUT", "ExpansionOptions", "FlowRequest", "Outcome", "expand",
         "expand_or_raise"),
        "runner",
    ),
    "choose_python": "interpreter",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "DEFAULT_TIMEOUT",
    "Builtin",
    "ConfigInfo",
    "Expansion",
    "ExpansionOptions",
    "FlowRequest",
    "Outcome",
    "ParameterInfo",
    "StepStack",
    "UserObject",
    "Value",
    "choose_python",
    "expand",
    "expand_or_raise",
]
