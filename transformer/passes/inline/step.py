"""Building the step: its layers of decorators around its own code, as the plan says.

For a step `@a @b @step def s(self): BODY; self.next(...)` the result is a's code with its
yield replaced by b's code, whose yield is replaced by BODY, followed by the step's own
literal `self.next(...)` (Metaflow reads the graph from it). Built from the inside out:
the body (its `return`s made to leave only the body), then each layer around it.
"""

from __future__ import annotations

import libcst as cst

from ...support.code import block, line, trailing, with_comment
from ...support.returns import ReturnEliminator
from ..analyze import YieldKind
from .classes import ClassLayerPlan, build_class_layer
from .decorator import PLACEHOLDER, decorator_code
from .layout import laid_out
from .parts import split_step
from .plan import LayerPlan, StepPlan
from .yields import Placeholders, build_yield, lift_skip_notes


def build_step(plan: StepPlan) -> cst.FunctionDef:
    """The compiled step."""
    site = plan.site
    parts = split_step(site)
    core = list(parts.core)
    if plan.body_returned:
        core = ReturnEliminator(plan.body_returned).statements(core)
    if plan.next_here:
        # Natively `self.next(...)` runs inside the body: it counts the foreach splits or
        # picks the switch case before the decorators' after code runs, and a decorator's
        # `except` sees its failure (a missing foreach list, say). Take the transition
        # there; the literal last statement (Metaflow's graph) then does nothing. The
        # step calls `self.next` itself, so that Metaflow's message for a bad transition
        # names the step's line, as natively (not a line of a helper).
        done = line(f"decoflow_next_done({site.self_name})")
        core = [*core, parts.tail[0].with_changes(leading_lines=[]), done]
    if core:
        core[0] = with_comment(core[0], f"step {site.name}: its own code")
    inner = [line(f"{plan.ran} = True"), *core] if plan.ran else core
    for layer in reversed(plan.layers):
        if isinstance(layer, ClassLayerPlan):
            inner = build_class_layer(plan, layer, inner)
        else:
            inner = _build_layer(plan, layer, inner)
    prologue: list[cst.BaseStatement] = []
    if plan.declared_globals:
        prologue.append(line(f"global {', '.join(plan.declared_globals)}"))
    if plan.setup.tracked:
        note = "decoflow: whose before-code runs (1: outermost)"
        prologue.append(trailing(line(f"{plan.setup.flag} = 0"), note))
    if plan.step_name:
        prologue.append(line(f'{plan.step_name} = "{site.name}"'))
    if plan.body_returned:
        prologue.append(line(f"{plan.body_returned} = False"))
    if plan.ran:
        note = "decoflow: the step (or a replacement) ran"
        prologue.append(trailing(line(f"{plan.ran} = False"), note))
    body = [*parts.head, *prologue, *inner]
    if plan.body_returned and parts.tail:
        body.append(
            line(
                f"if {plan.body_returned}:\n"
                "    return  # as in the original: no self.next() was reached\n"
            )
        )
    body.extend(parts.tail)
    old = site.func.body
    functions = frozenset(
        layer.run_function.name
        for layer in plan.layers
        if isinstance(layer, LayerPlan) and layer.run_function is not None
    )
    new_block = block(laid_out(lift_skip_notes(body), 2, functions))  # a method of the flow
    if isinstance(old, cst.IndentedBlock):
        new_block = new_block.with_changes(header=old.header, footer=old.footer)
    return site.func.with_changes(body=new_block, decorators=_kept_decorators(plan))


def _kept_decorators(plan: StepPlan) -> list[cst.Decorator]:
    """The step's decorators without the inlined ones (their comments stay)."""
    custom = {layer.layer.use.node for layer in plan.layers}
    kept: list[cst.Decorator] = []
    carry: list[cst.EmptyLine] = []
    for dec in plan.site.func.decorators:
        if dec in custom:
            carry.extend(line_ for line_ in dec.leading_lines if line_.comment is not None)
            continue
        if carry:
            dec = dec.with_changes(leading_lines=[*carry, *dec.leading_lines])
            carry = []
        kept.append(dec)
    return kept


def _build_layer(
    step: StepPlan, plan: LayerPlan, inner: list[cst.BaseStatement]
) -> list[cst.BaseStatement]:
    """One decorator's code around `inner` (what is below it)."""
    layer = plan.layer
    info = layer.info
    name = info.name
    site = step.site
    stmts = decorator_code(plan)
    prologue: list[cst.BaseStatement] = []
    epilogue: list[cst.BaseStatement] = []
    if plan.returned:
        stmts = ReturnEliminator(plan.returned).statements(stmts)
        prologue.append(line(f"{plan.returned} = False"))
    if plan.yielded:
        prologue.append(line(f"{plan.yielded} = False"))
    if info.flow.may_not_yield:  # Metaflow's generator.send(None) raises StopIteration
        epilogue.append(
            line(
                f"if not {plan.yielded}:\n    {plan.bypass}raise StopIteration from None"
                f"  # @{name} finished without yielding\n"
            )
        )
    run_inner = inner
    definitions: list[cst.BaseStatement] = []
    fn = plan.run_function
    if fn is not None:
        fn_body = list(inner)
        if fn.globals:
            fn_body.insert(0, line(f"global {', '.join(fn.globals)}"))
        if fn.nonlocals:
            fn_body.insert(0, line(f"nonlocal {', '.join(fn.nonlocals)}"))
        definitions.append(
            with_comment(
                cst.FunctionDef(
                    name=cst.Name(fn.name), params=cst.Parameters(), body=block(fn_body)
                ),
                f"what @{name} runs where it yields: the step and the decorators below it",
            )
        )
        run_inner = [line(f"{fn.name}()")]
    expansions = {}
    for route in plan.routes:
        built = build_yield(plan, route, run_inner, site, step.setup.flag)
        replaces = route.site.kind in (YieldKind.REPLACE, YieldKind.DYNAMIC)
        if step.ran and replaces and not route.surely_second:
            built = [line(f"{step.ran} = True"), *built]  # a replacement runs: not skipped
        expansions[PLACEHOLDER.format(route.site.index)] = built
    ends = frozenset(PLACEHOLDER.format(r.site.index) for r in plan.routes if r.surely_second)
    after = f"@{layer.use.written}: after the step"
    flags = {step.setup.flag, step.ran, step.body_returned, plan.yielded, plan.returned}
    always_bound = frozenset(f for f in flags if f)
    stmts = Placeholders(expansions, after, ends, always_bound).code(stmts)
    out: list[cst.BaseStatement] = []
    if plan.tracks:
        out.append(line(f"{step.setup.flag} = {layer.level}"))
    out.extend(definitions)
    out.extend(_bindings(step, plan))
    out.extend(prologue)
    out.extend(stmts)
    out.extend(epilogue)
    if not out:
        out = [line("pass")]
    via = "--with, " if layer.use.via_with else ""
    origin = f"@{layer.use.written} ({via}{layer.use.definition.origin})"
    first = out[0].leading_lines
    if first and first[0].comment is not None and first[0].comment.value == f"# {after}":
        # its code starts after the step (nothing before its yield, nothing run there):
        # one comment says both
        out[0] = out[0].with_changes(leading_lines=first[1:])
        origin = f"{origin}: after the step"
    out[0] = with_comment(out[0], origin)
    return out


def _bindings(step: StepPlan, plan: LayerPlan) -> list[cst.BaseStatement]:
    """The decorator's parameters, assigned as the plan says."""
    site = step.site
    out: list[cst.BaseStatement] = []
    for name, role in plan.bindings:
        if role == "step_name":
            out.append(line(f'{name} = "{site.name}"'))
        elif role == "flow":
            out.append(line(f"{name} = {site.self_name}"))
        elif role == "inputs":
            out.append(line(f"{name} = {site.inputs_name or 'None'}"))
        else:
            value = _attributes(plan)
            assign = cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=value)
            out.append(cst.SimpleStatementLine(body=[assign]))
    return out


def _attributes(plan: LayerPlan) -> cst.BaseExpression:
    """The `attributes` dict of the use, from its keyword arguments."""
    elements = []
    for arg in plan.layer.use.arguments or ():
        assert arg.keyword is not None
        # an identifier needs no escaping; double quotes, as most flows write their strings
        elements.append(cst.DictElement(cst.SimpleString(f'"{arg.keyword.value}"'), arg.value))
    return cst.Dict(elements=elements)
