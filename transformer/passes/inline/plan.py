"""Planning a step: every name the compiled step claims, and what each part of it does.

Nothing is built here. For one step and its layers of decorators (outermost first), the
plan says, per layer: how the decorator's names read in the step (`locals`), which of its
parameters become assignments, how its guards step aside (`Guard`), which flags count its
returns and yields, whether what is below its yields becomes a local function, and what
each of its yields does (`YieldRoute`). For the step: whether it tracks setup (`Setup`),
the shared `step_name` variable, the flag for the body's own `return`, and the runtime
helpers it calls. The builders (`step`, `decorator`, `yields`) only assemble code from it.

Names are claimed in the order the builders used to claim them (the step's own flags
first, then each layer from the innermost out), so that outputs stay as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import libcst as cst

from ...support.names import NameAllocator, name_nodes
from ...support.records import frozen
from ...support.step_facts import StepFacts
from ..analyze import YieldKind, YieldSite
from ..carry import Layer
from ..discover import StepSite
from .classes import ClassLayerPlan, is_class_layer, may_skip, plan_class_layer
from .parts import has_arguments, split_step
from .setup import Setup, guard_level, hot_sites, needs_tracking

#: The runtime helper that does what a yield says, by what it says.
HELPERS = {
    YieldKind.SKIP_NEXT: "decoflow_next_with",
    YieldKind.REPLACE: "decoflow_replace",
    YieldKind.DYNAMIC: "decoflow_yield",
}


@frozen
class Guard:
    """How a decorator's handlers, `finally` and `with` exits step aside while a decorator
    below it is still setting up (`flag > level`), with the names its spelled-out
    statements use (claimed fresh for the step)."""

    level: int
    flag: str
    # the `try`s whose handlers step aside, and the `try`s and `with`s whose `finally`
    # (or exit) does: those that may see a failure they must step aside for
    handlers: frozenset[cst.CSTNode] = frozenset()
    finals: frozenset[cst.CSTNode] = frozenset()
    # per guarded `with`, per item: the manager, whether it exited, the error
    withs: tuple[tuple[cst.With, tuple[tuple[str, ...], ...]], ...] = ()
    # for `try/except*` around a yield: the failure kept aside, and as it was caught
    star: tuple[str, ...] = ("", "")

    @property
    def below_setting_up(self) -> str:
        return f"{self.flag} > {self.level}"

    @property
    def settled(self) -> str:
        return f"{self.flag} <= {self.level}"


@frozen
class YieldRoute:
    """What the compiled step does where a decorator yielded."""

    site: YieldSite
    checks_second: bool  # fail as Metaflow does if the decorator had yielded already
    surely_second: bool  # reached only after another yield: fail as Metaflow does, only
    counts: bool  # note that the decorator yielded (`<deco>_yielded = True`)
    resets_setup: bool  # the setup marker goes back to 0 before what is below runs
    helper: str | None  # the runtime helper that does what the yield says


@frozen
class RunFunction:
    """A local function holding what is below a decorator whose yields reach it from
    several places (the step and the decorators below), instead of copies of it."""

    name: str
    nonlocals: tuple[str, ...]  # step-level flags the code inside assigns
    globals: tuple[str, ...]  # names of the `global` statements of the decorators below


@frozen
class LayerPlan:
    """One decorator on the step, planned."""

    layer: Layer
    locals: Mapping[str, str]  # the decorator's own names -> names in the step
    bindings: tuple[tuple[str, str], ...]  # (name, parameter role) assigned before its code
    guard: Guard | None
    returned: str | None  # flag for its `return`s
    yielded: str | None  # flag counting its yields, when Metaflow's checks apply
    tracks: bool  # sets the setup marker to its level before its code
    bypass: str  # what its run-time checks set the marker to first (and the indentation)
    run_function: RunFunction | None
    routes: tuple[YieldRoute, ...]  # per yield, in the order of `info.sites`


@frozen
class StepPlan:
    """One step, planned: its layers outermost first."""

    site: StepSite
    layers: tuple[LayerPlan | ClassLayerPlan, ...]
    setup: Setup
    step_name: str | None  # one `step_name = "<step>"` shared by the decorators reading it
    body_returned: str | None  # flag for the body's own `return`
    next_here: bool  # take a transition with arguments inside the body (see `step`)
    declared_globals: tuple[str, ...]  # the decorators' `global` names, as output names
    runtime: frozenset[str]  # runtime helpers the step calls
    ran: str | None = None  # with class layers: notes that the step (or a replacement) ran


def plan_step(
    site: StepSite, layers: Sequence[Layer], module_names: set[str], facts: StepFacts
) -> StepPlan:
    """The plan of `site` with `layers`; `module_names`: what a step's locals must not
    shadow (the module's names, carried names, runtime helpers)."""
    return _Planner(site, layers, module_names, facts).plan()


def _runs_inner(plan: LayerPlan | ClassLayerPlan) -> bool:
    """Whether the layer's code places what is below it (a class layer always does; a
    decorator that only skips or replaces the step statically does not)."""
    if isinstance(plan, ClassLayerPlan):
        return True
    return any(
        route.site.kind in (YieldKind.RUN, YieldKind.DYNAMIC) and not route.surely_second
        for route in plan.routes
    )


class _Planner:
    """Claims the step's names in order, and plans each layer."""

    def __init__(
        self, site: StepSite, layers: Sequence[Layer], module_names: set[str], facts: StepFacts
    ) -> None:
        self.site = site
        self.layers = tuple(layers)
        step_names = set(facts.names) | set(site.params)
        self.body_has_return = facts.has_return
        self.alloc = NameAllocator(step_names | module_names)
        # Names each decorator reads from outside itself (its module's names, as renamed,
        # and builtins): no local of another decorator inlined in this step may shadow them.
        self._unused_memo: dict[int, frozenset[str]] = {}  # by layer level
        self.decorator_names = [
            {layer.globals.get(n, n) for n in layer.info.names.all - layer.info.names.local_names}
            for layer in layers
        ]
        track_from = needs_tracking(self.layers)
        flag = self._claim_step("setting_up") if track_from is not None else ""
        self.setup = Setup(track_from, flag, len(self.layers))
        self.step_name = self._shared_step_name(step_names | module_names)
        self.runtime: set[str] = set()
        has_class = any(is_class_layer(layer) for layer in self.layers)
        self.ran = self._claim_step("ran") if has_class and may_skip(self.layers) else None

    def plan(self) -> StepPlan:
        parts = split_step(self.site)
        body_returned = None
        assigned_inside: set[str] = set()  # step-level flags the step's own code assigns
        if self.ran:
            assigned_inside.add(self.ran)
        if self.body_has_return:
            body_returned = self._claim_step("step_returned")
            assigned_inside.add(body_returned)
        next_here = bool(parts.tail) and has_arguments(parts.tail[0])
        inner_empty = not parts.core and not next_here and not self.ran
        planned: list[LayerPlan | ClassLayerPlan] = []
        for layer in reversed(self.layers):
            if is_class_layer(layer):
                planned.append(self._class_layer(layer))
            else:
                planned.append(self._layer(layer, inner_empty, assigned_inside))
            inner_empty = False  # a layer's code is never empty
        if next_here and all(_runs_inner(p) for p in planned):
            self.runtime.add("decoflow_next_done")  # the body is placed: it transitions there
        declared = sorted(
            {
                layer.globals.get(g, g)
                for layer in self.layers
                for g in layer.info.names.declared_globals
            }
        )
        return StepPlan(
            site=self.site,
            layers=tuple(reversed(planned)),
            setup=self.setup,
            step_name=self.step_name,
            body_returned=body_returned,
            next_here=next_here,
            declared_globals=tuple(declared),
            runtime=frozenset(self.runtime),
            ran=self.ran,
        )

    # -- the step's own names -------------------------------------------------------------

    def _claim_step(self, preferred: str) -> str:
        """A step-level name: taken by no decorator's code, local or read."""
        reserved = set().union(*self.decorator_names) if self.decorator_names else set()
        reserved |= {n for layer in self.layers for n in layer.info.names.local_names}
        name = NameAllocator(self.alloc.taken | reserved).claim(preferred, prefix="decoflow")
        self.alloc.reserve(name)
        return name

    def _shares_step_name(self, layer: Layer) -> bool:
        if is_class_layer(layer):  # a class reads the step's name from its own argument
            return False
        param = layer.info.params[0]
        return param not in self._unused(layer) and param not in layer.info.names.reassigned

    def _unused(self, layer: Layer) -> frozenset[str]:
        """The decorator's parameters its code in this step never reads: those it never
        reads at all, and those read only inside `inspect.getsource(...)` calls that the
        output answers with a constant (`getattr(flow, step_name)` there reads nothing)."""
        info = layer.info
        if not layer.sources:
            return info.unused_params
        if layer.level not in self._unused_memo:
            inside = {n for node, _ in layer.sources for n in name_nodes(node)}
            params = {p.name for p in info.func.params.params}
            read = {
                name
                for node, name in info.names.local_refs.items()
                if node not in params and node not in inside
            }
            self._unused_memo[layer.level] = frozenset(p for p in info.params if p not in read)
        return self._unused_memo[layer.level]

    def _shared_step_name(self, taken: set[str]) -> str | None:
        """One `step_name = "<step>"` for every decorator that reads its step-name parameter."""
        sharing = [layer for layer in self.layers if self._shares_step_name(layer)]
        if not sharing:
            return None
        preferred = [layer.info.params[0] for layer in sharing] + ["step_name"]

        def free(name: str) -> bool:
            if name in taken or name in self.alloc.taken:
                return False
            for layer in self.layers:
                info = layer.info
                own = {info.params[0]} if layer in sharing and info.params[0] == name else set()
                own |= self._unused(layer)  # never bound in the output
                if name in (info.names.local_names | info.names.bound_anywhere) - own:
                    return False
                if name in self.decorator_names[layer.level - 1]:
                    return False
            return True

        for name in preferred:
            if free(name):
                self.alloc.reserve(name)
                return name
        return None

    # -- one layer ------------------------------------------------------------------------

    def _layer(self, layer: Layer, inner_empty: bool, assigned_inside: set[str]) -> LayerPlan:
        info = layer.info
        name = info.name
        others = set().union(
            *(n for i, n in enumerate(self.decorator_names) if i != layer.level - 1)
        )
        alloc = NameAllocator(self.alloc.taken | others | set(layer.globals.values()))
        locals_ = self._locals(layer, alloc)
        guard = None
        level = guard_level(self.setup, self.layers, layer)
        if level is not None:
            hot = hot_sites(self.layers, layer)
            sees = info.guards.sees
            handlers = frozenset(n for n, (by_h, _) in sees.items() if by_h & hot)
            finals = frozenset(n for n, (_, by_f) in sees.items() if by_f & hot)
            withs = tuple(
                (
                    w,
                    tuple(
                        self._claim(
                            alloc, f"{name}_with", f"{name}_with_exited", f"{name}_with_error"
                        )
                        for _ in w.items
                    ),
                )
                for w in info.guards.withs
                if w in finals
            )
            star = (
                self._claim(alloc, f"{name}_setup_failure", f"{name}_failure")
                if any(isinstance(n, cst.TryStar) for n in handlers)
                else ("", "")
            )
            guard = Guard(level, self.setup.flag, handlers, finals, withs, star)
        returned = self._claim(alloc, f"{name}_returned")[0] if info.has_return else None
        yielded = self._claim(alloc, f"{name}_yielded")[0] if info.counts_yields else None
        run_function = None
        if len(info.yields_to_body) > 1 and not inner_empty:
            run_function = self._run_function(layer, alloc, assigned_inside)
        tracks = self.setup.tracks(layer)
        routes = []
        for site in info.sites:
            if site.surely_second:
                self.runtime.add("decoflow_yielded_twice")
                routes.append(YieldRoute(site, False, True, False, False, None))
                continue
            checks_second = yielded is not None and site.maybe_second
            if checks_second:
                self.runtime.add("decoflow_yielded_twice")
            helper = HELPERS.get(site.kind)
            if helper is not None:
                self.runtime.add(helper)
            route = YieldRoute(site, checks_second, False, yielded is not None, tracks, helper)
            routes.append(route)
        return LayerPlan(
            layer=layer,
            locals=MappingProxyType(locals_),
            bindings=self._bindings(layer, locals_),
            guard=guard,
            returned=returned,
            yielded=yielded,
            tracks=tracks,
            bypass=self.setup.bypass(layer),
            run_function=run_function,
            routes=tuple(routes),
        )

    def _class_layer(self, layer: Layer) -> ClassLayerPlan:
        others = set().union(
            *(n for i, n in enumerate(self.decorator_names) if i != layer.level - 1)
        )
        alloc = NameAllocator(self.alloc.taken | others)

        def claim(*preferred: str) -> tuple[str, ...]:
            return self._claim(alloc, *preferred)

        return plan_class_layer(layer, self.setup, self.layers, claim, self.runtime)

    def _claim(self, alloc: NameAllocator, *preferred: str) -> tuple[str, ...]:
        """Fresh names for code the step gains (reserved for the whole step)."""
        names = tuple(alloc.claim(p) for p in preferred)
        for claimed in names:
            self.alloc.reserve(claimed)
        return names

    def _substitutable(self, layer: Layer, param: str, by: str) -> bool:
        """Can `param` be written as `by` everywhere it is read, without being captured?"""
        names = layer.info.names
        return (
            param not in names.reassigned
            and (by == param or by not in names.shadowed_at_reads.get(param, frozenset()))
            and by not in names.global_names
        )

    def _locals(self, layer: Layer, alloc: NameAllocator) -> dict[str, str]:
        """How the decorator's own names read in the step: its `flow` as the step's `self`,
        its step name and inputs as the step's where that is safe, the others as they are
        unless taken (then `<decorator>_<name>`)."""
        info = layer.info
        p_step, p_flow, p_inputs = info.params[0], info.params[1], info.params[2]
        locals_: dict[str, str] = {}
        if self._substitutable(layer, p_flow, self.site.self_name):
            locals_[p_flow] = self.site.self_name
        if self.step_name and self._shares_step_name(layer):
            locals_[p_step] = self.step_name
        inputs_name = self.site.inputs_name
        if inputs_name is not None and self._substitutable(layer, p_inputs, inputs_name):
            locals_[p_inputs] = inputs_name
        unused = self._unused(layer)
        for local in sorted(info.names.local_names):
            if local in locals_:
                continue
            if local in unused:
                locals_[local] = local  # never read: nothing is bound, nothing to collide with
                continue
            locals_[local] = alloc.claim(local, prefix=info.name)
        for local, new_name in locals_.items():
            if local not in unused:
                self.alloc.reserve(new_name)
        return locals_

    def _bindings(self, layer: Layer, locals_: dict[str, str]) -> tuple[tuple[str, str], ...]:
        """The parameters assigned before the decorator's code: (name in the step, role)."""
        info = layer.info
        used = set(info.params) - self._unused(layer)
        p_step, p_flow, p_inputs = info.params[0], info.params[1], info.params[2]
        p_attrs = info.signature.param(3)
        out = []
        if p_step in used and not (self.step_name and self._shares_step_name(layer)):
            out.append((locals_[p_step], "step_name"))
        if p_flow in used and locals_[p_flow] != self.site.self_name:
            out.append((locals_[p_flow], "flow"))
        if p_inputs in used and locals_[p_inputs] != self.site.inputs_name:
            out.append((locals_[p_inputs], "inputs"))
        if p_attrs is not None and p_attrs in used:
            out.append((locals_[p_attrs], "attributes"))
        return tuple(out)

    def _run_function(
        self, layer: Layer, alloc: NameAllocator, assigned_inside: set[str]
    ) -> RunFunction:
        name = self._claim(alloc, f"run_{self.site.name}")[0]
        # Step-level names the inner code assigns (it reads the others through the closure).
        assigned = set(assigned_inside)
        if self.setup.tracked and any(
            other.level > layer.level and self.setup.assigns_flag(other) for other in self.layers
        ):
            assigned.add(self.setup.flag)
        declared = sorted(
            {
                g
                for other in self.layers
                if other.level > layer.level
                for g in other.info.names.declared_globals
            }
        )
        return RunFunction(name, tuple(sorted(assigned)), tuple(declared))
