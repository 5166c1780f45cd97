"""Class-based decorators in a step: a class layer planned, then built.

Metaflow runs generator decorators and classes through one loop (`task.py`,
`MetaflowTask._exec_step_function`): `pre_step` outermost first, a `skip_step` or a callable
returned by `pre_step` stops it, then `post_step` innermost first, whose return value decides
the failure and the transition. A class layer is written as readable calls in that order:

    start_trace.pre_step("start", self, None)
    trace_error = None
    try:
        <the decorators below it and the step's own code>
    except Exception as trace_failure:
        trace_error = trace_failure
    trace_error = decoflow_post_step(start_trace, "start", self, trace_error, True)
    if trace_error:
        raise trace_error

`decoflow_post_step` reads what `post_step` returns as Metaflow does; a failure Metaflow
raises past the decorators above (a 3-tuple, a bad value) makes their handlers step aside
with the same `setting_up` marker as a generator's before-code failure (see `setup`). When
something on the step may skip it, the step notes whether what a layer wraps ran (`ran`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import libcst as cst

from ...support.code import block, line, trailing, with_comment
from ...support.records import frozen
from ..analyze import YieldKind
from ..carry import Layer
from .dead_handlers import cannot_raise, is_bare_pass
from .setup import Setup, guard_level

if TYPE_CHECKING:
    from .plan import StepPlan


@frozen
class ClassLayerPlan:
    """One class-based decorator on the step, planned."""

    layer: Layer
    error: str  # what the layer's `try` caught (None when nothing failed)
    failure: str  # the name of the caught exception
    replacement: str  # what `pre_step` returned, when it may return a replacement
    tracks: bool  # sets the setup marker to its level around `pre_step`
    guarded: bool  # its handler re-raises while a decorator below is setting up
    bypass: bool  # a failure of `post_step` goes past every decorator: the marker first


def is_class_layer(layer: Layer) -> bool:
    return getattr(layer.info, "is_class", False)


def may_skip(layers: Sequence[Layer]) -> bool:
    """Whether something on the step may skip it (a class, or a generator's yield)."""
    return any(is_class_layer(la) and la.info.can_skip for la in layers) or any(
        s.kind in (YieldKind.SKIP, YieldKind.SKIP_NEXT, YieldKind.DYNAMIC)
        for la in layers
        if not is_class_layer(la)
        for s in la.info.sites
    )


def plan_class_layer(
    layer: Layer,
    setup: Setup,
    layers: Sequence[Layer],
    claim: Callable[..., tuple[str, ...]],
    runtime: set[str],
) -> ClassLayerPlan:
    """`claim`: fresh names for the step; `runtime` gains the helpers the layer calls."""
    info = layer.info
    name = info.name
    error, failure = claim(f"{name}_error", f"{name}_failure")
    replacement = claim(f"{name}_replacement")[0] if info.can_replace else ""
    if info.can_replace:
        runtime.add("decoflow_replace")
    if info.can_skip:
        runtime.add("decoflow_transition")
    runtime.add("decoflow_post_step")
    return ClassLayerPlan(
        layer=layer,
        error=error,
        failure=failure,
        replacement=replacement,
        tracks="pre_step" in info.hooks and setup.tracks(layer),
        guarded=guard_level(setup, layers, layer) is not None,
        bypass=setup.bypasses(layer) and info.may_not_yield,
    )


def _class_below(step: StepPlan, plan: ClassLayerPlan) -> ClassLayerPlan | None:
    """The class layer right inside `plan`, when its own post_step may leave a value that is
    falsy but not None (`return 0, None`): Metaflow does not raise it but hands it on to the
    next post_step as its exception, so the layer above must see it."""
    at = step.layers.index(plan)
    below = step.layers[at + 1] if at + 1 < len(step.layers) else None
    if isinstance(below, ClassLayerPlan) and "post_step" in below.layer.info.hooks:
        return below
    return None


def build_class_layer(
    step: StepPlan, plan: ClassLayerPlan, inner: list[cst.BaseStatement]
) -> list[cst.BaseStatement]:
    """pre_step -> skip / replacement / `inner` -> post_step."""
    layer = plan.layer
    info = layer.info
    instance = layer.instance
    flag = step.setup.flag
    ran = step.ran
    error, failure, replacement = plan.error, plan.failure, plan.replacement
    step_name = f'"{step.site.name}"'
    self_name = step.site.self_name
    inputs = step.site.inputs_name
    out: list[cst.BaseStatement] = []
    if "pre_step" in info.hooks:
        call = f"{instance}.pre_step({step_name}, {self_name}, {inputs or 'None'})"
        if plan.tracks:
            out.append(line(f"{flag} = {layer.level}"))
        out.append(line(f"{replacement} = {call}" if replacement else call))
        if plan.tracks:
            out.append(line(f"{flag} = 0"))
    body = list(inner) or [line("pass")]
    below = _class_below(step, plan)
    if below is not None:  # Metaflow hands what its post_step left to ours, raised or not
        handed = line(f"{error} = {below.error}")
        body.append(trailing(handed, f"what @{below.layer.use.written}'s post_step left"))
    if info.can_replace:
        replace = f"decoflow_replace({self_name}, {replacement}{', ' + inputs if inputs else ''})"
        noted = [line(f"{ran} = True")] if ran else []
        body = [
            cst.If(
                test=cst.parse_expression(replacement),
                body=block(
                    [*noted, trailing(line(replace), f"@{layer.use.written} replaces the step")]
                ),
                orelse=cst.Else(body=block(body)),
            )
        ]
    if info.can_skip:
        skip = f"decoflow_transition({self_name}, {instance}.skip_step, False)"
        rest = body[0] if info.can_replace else None
        orelse: cst.If | cst.Else = (
            rest if isinstance(rest, cst.If) else cst.Else(body=block(body))
        )
        body = [
            cst.If(
                test=cst.parse_expression(f"{instance}.skip_step"),
                body=block([trailing(line(skip), f"@{layer.use.written} skips the step")]),
                orelse=orelse,
            )
        ]
    handler: list[cst.BaseStatement] = []
    if plan.guarded:
        handler.append(line(f"if {flag} > {layer.level}:\n    raise\n"))
    handler.append(line(f"{error} = {failure}"))
    failed = "None"  # what post_step is given: nothing below can fail (an empty step)...
    if cannot_raise(body):  # ... so no handler to catch it
        out.extend(stmt for stmt in body if not is_bare_pass(stmt))
    else:
        failed = error  # ... or what the handler caught
        out.append(line(f"{error} = None"))
        out.append(
            cst.Try(
                body=block(body),
                handlers=[
                    cst.ExceptHandler(
                        body=block(handler),
                        type=cst.Name("Exception"),
                        name=cst.AsName(cst.Name(failure)),
                    )
                ],
            )
        )
    post = line(
        f"{error} = decoflow_post_step("
        f"{instance}, {step_name}, {self_name}, {failed}, {ran or 'True'})"
    )
    tail = [post]
    if plan.bypass:
        tail = [line(f"{flag} = {step.setup.depth + 1}"), post, line(f"{flag} = 0")]
    tail[0] = with_comment(tail[0], f"@{layer.use.written}: post_step")
    out.extend(tail)
    out.append(line(f"if {error}:\n    raise {error}\n"))
    via = "--with, " if layer.use.via_with else ""
    out[0] = with_comment(
        out[0],
        f"@{layer.use.written} ({via}{layer.use.definition.origin}), class-based: {instance}",
    )
    return out
