"""Issue 12: evaluate a flow's configs and mutators with Metaflow's own code, in a child process.

Parent side (this package, imported by the compiler only for a flow that needs it):
    expand(requests, ExpansionOptions(...)) -> [Outcome]   # one child for the whole batch
    expand_or_raise(...) -> [Expansion]                    # or CompileError (DF501-DF505)
Child side, never imported by the parent: `child.py` (run by path in the target interpreter;
runs the stages, one flow at a time), `describe.py` (reads the expanded flow into JSON) and
`mfcompat.py` (every use of Metaflow internals, with the version check).
"""

from __future__ import annotations

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
    choose_python,
    expand,
    expand_or_raise,
)

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
