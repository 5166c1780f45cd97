"""The decorator's signature: a plain (not async) generator taking 3 or 4 parameters.

Metaflow calls a custom step decorator as `deco(step_name, flow, inputs[, attributes])`;
anything else cannot be called that way, and is refused here (DF305, DF306).
"""

from __future__ import annotations

import libcst as cst

from ...support.diagnostics import (
    ASYNC_DECORATOR,
    BAD_PARAMETERS,
    CompileError,
    Diagnostic,
    Location,
)
from ...support.records import frozen


@frozen
class Signature:
    """The names of the decorator's parameters, in order (3 or 4 of them)."""

    params: tuple[str, ...]

    def param(self, index: int) -> str | None:
        return self.params[index] if index < len(self.params) else None


def read_signature(func: cst.FunctionDef, label: str, where: Location) -> Signature:
    """The signature of `func` (written `label` in messages), or the problems with it."""
    if func.asynchronous is not None:
        message = f"{label} is an async generator; Metaflow runs only plain generators"
        raise CompileError([ASYNC_DECORATOR(message, where)])
    diags: list[Diagnostic] = []
    params = func.params
    if (
        params.star_arg not in (None, cst.MaybeSentinel.DEFAULT)
        or params.star_kwarg
        or params.kwonly_params
    ):
        diags.append(
            BAD_PARAMETERS(
                f"{label} must take 3 or 4 positional parameters "
                "(step_name, flow, inputs[, attributes])",
                where,
            )
        )
    names = tuple(p.name.value for p in (*params.posonly_params, *params.params))
    if len(names) not in (3, 4) and not diags:
        diags.append(
            BAD_PARAMETERS(
                f"{label} takes {len(names)} parameter(s); a custom step decorator takes 3 or 4 "
                "(step_name, flow, inputs[, attributes])",
                where,
            )
        )
    if diags:
        raise CompileError(diags)
    return Signature(names)
