"""Hypothesis strategies that write Metaflow flows using random custom step decorators.

`fuzz_cases(shape)` draws a `FuzzCase`: the source of a flow file (`fuzzflow.py`) and of
the decorator module it imports (`fuzzdecos.py`, or the decorators are defined in the flow
file itself). The texts are ordinary, readable Python, meant to be run twice on real
Metaflow: as written (custom decorators as runtime wrappers) and compiled by decoflow.

What the flows contain
----------------------
* sometimes a decorator attached to every step with `--with` (`FuzzCase.with_specs`);
* a graph of one of `SHAPES`: a linear chain, a branch with a join, a foreach with a join
  (the split on `start` or on its own step), a nested foreach, a switch;
* step bodies that print deterministic lines, set and read small artifacts, sometimes fail
  (`raise`, under a condition on the artifacts, or unconditionally when the flow is drawn
  "chaotic"), and in the end step sometimes `return` early;
* on each step a stack of 0-4 custom decorators (at times the same one twice; sometimes
  with a built-in Metaflow decorator among them), used bare, with keyword arguments
  (literals or a module-level
  constant of the flow), imported directly, under an alias or through the module.

What the decorators contain
---------------------------
* 3- or 4-parameter signatures with any parameter names (`(name, self, ins)`, ...), with or
  without `=None` defaults;
* before and after code touching artifacts: set, `setattr`, read with `getattr`/`hasattr`,
  direct reads and `del` (which may fail), counters and a shared `log`, reads of `inputs`,
  `attributes`, a flow Parameter and `metaflow.current`, calls of module helpers and of
  imported modules (`json`), a module-level counter updated through `global`, nested
  functions closing over locals, the flow under another name, a reassigned step-name
  parameter, locals carried across the yield, an early `return` in the after code, a
  function put on the flow (not persisted);
* one yield per path, with what it says chosen statically or at run time: run the step
  (`yield`, `yield None`, `value = yield`), skip (`yield {}`, `yield USER_SKIP_STEP`), skip
  with arguments (`yield {"foreach": "alt_items"}`, on foreach splits only), replace (a
  module function that returns True, returns a dict, calls `self.next` itself, or calls it
  and returns True; a lambda); `yield f if cond else None`, `if/elif/else` and
  `try/except/else` choosing the yield;
* `try/except/else/finally` around the yield whose handler swallows, re-raises, raises
  another exception `from` it, returns, or yields a second time (Metaflow fails the task);
  `try/except*` around the yield, swallowing or re-raising the group;
  a conditional `return` before the yield (finishing without one fails the task); `with`
  around the yield (a module context manager that swallows KeyError, `contextlib.suppress`,
  or both as the items of one `with`); conditional `raise` in before and after code and in
  replacements; a module-level exception class; a replacement
  lambda closing over a local.

With `fuzz_cases(shape, classes=True)` (`test_fuzz_differential_classes`) some decorators
are class-based (`UserStepDecorator` subclasses, see `_class_decorator`), stacked with the
generator ones in any order: `init` keeping its keyword arguments, `pre_step` that may skip
or return a replacement, `post_step` returning None, the exception, raising it, or next
arguments. The default draws (`classes=False`) are the same as before they existed.

Everything printed or stored is deterministic (no time, no randomness, no ids), so two
correct runs print the same lines and store the same artifacts.

Deliberately NOT generated (see SEMANTICS.md): a replacement that returns None (or False)
without calling `self.next` -- Metaflow fails that task, decoflow may succeed; a
decorator whose before code can never reach its yield (decoflow rejects it, DF301);
several yields on one path, yields in loops or expressions (rejected by design).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

#: The graph shapes a flow can have.
SHAPES: tuple[str, ...] = ("linear", "branch", "foreach", "nested_foreach", "switch")

FLOW_FILE = "fuzzflow.py"
DECO_MODULE = "fuzzdecos"
FLOW_CLASS = "FuzzFlow"

#: Artifacts that step bodies and decorators set, read and delete freely.
ARTIFACTS: tuple[str, ...] = ("a1", "a2", "a3", "counter", "log")
#: Artifacts the graph depends on (foreach lists, switch condition); touched rarely.
CONTROL_ARTIFACTS: tuple[str, ...] = ("items", "alt_items", "choice")
#: The switch's cases (values of the `choice` artifact and names of the case steps).
SWITCH_CASES: tuple[str, str] = ("left", "right")

_STEP_NAME_PARAMS = ("step_name", "name", "s", "stp", "step", "label")
_FLOW_PARAMS = ("flow", "fl", "self", "f", "run", "obj")
_INPUTS_PARAMS = ("inputs", "ins", "inp", "xs", "_in", "parents")
_ATTR_PARAMS = ("attributes", "attrs", "kw", "a", "options", "cfg")
_LOCALS = ("count", "value", "x", "tmp", "seen")
_EXC_NAMES = ("e", "err", "exc")
_DECO_STEMS = ("audit", "guard", "skipper", "swap", "trace", "wrap", "tally", "probe")
_EXCEPTIONS_RAISED = ("ValueError", "RuntimeError", "KeyError", "FuzzError")
_EXCEPTIONS_CAUGHT = (
    "Exception",
    "ValueError",
    "RuntimeError",
    "KeyError",
    "FuzzError",
    "AttributeError",
    "(ValueError, KeyError)",
)

INDENT = "    "


def indent(lines: Sequence[str], levels: int = 1) -> list[str]:
    """The lines indented by `levels` steps of four spaces (empty lines stay empty)."""
    pad = INDENT * levels
    return [pad + line if line else line for line in lines]


# --------------------------------------------------------------------------------------
# Cases


@dataclass(frozen=True)
class FuzzCase:
    """One generated flow and its decorator module, ready to be written to a folder.

    files: file name -> source text (the flow file `FLOW_FILE`, and `fuzzdecos.py` unless
        the decorators are defined in the flow file).
    exact_errors: False when a failure's message may legitimately differ between the
        native and the compiled run (e.g. a decorator path that reaches no yield: the
        error is Metaflow's own natively, decoflow's compiled).
    features: short tags naming what the case exercises (for statistics and reports).
    with_specs: `--with` specs (`fuzzdecos.name:k=1`): the native run gets them as
        `run --with SPEC`, the compiler as `CompileOptions(with_specs=...)`.
    """

    shape: str
    files: dict[str, str]
    exact_errors: bool = True
    features: tuple[str, ...] = ()
    with_specs: tuple[str, ...] = ()

    @property
    def flow_source(self) -> str:
        """The flow file's text."""
        return self.files[FLOW_FILE]

    def write(self, folder: Path) -> Path:
        """Write every file into `folder` (created); return the flow file's path."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (folder / name).write_text(text, encoding="utf-8")
        return folder / FLOW_FILE

    def describe(self) -> str:
        """All files, each under a `# ---- name ----` banner (for failure reports)."""
        parts = [f"# --with {spec}" for spec in self.with_specs]
        for name, text in self.files.items():
            parts.append(f"# ---- {name} ----\n{text}")
        return "\n".join(parts)


# --------------------------------------------------------------------------------------
# Graphs


@dataclass(frozen=True)
class StepSpec:
    """A step of the generated graph.

    next_args: the arguments of the step's `self.next(...)`, with `{f}` where the flow
        object goes (`{f}.end`, `{f}.each, foreach="items"`); None for the end step.
    foreach_var: the artifact the step's foreach iterates over (None: not a split).
    foreach_body: the step runs once per foreach item (`self.input` is set).
    """

    name: str
    next_args: str | None
    join: bool = False
    foreach_var: str | None = None
    foreach_body: bool = False
    switch: bool = False
    start: bool = False

    def next_call(self, flow: str = "self") -> str | None:
        """`self.next(...)` written for the flow object `flow` (None for the end step)."""
        if self.next_args is None:
            return None
        return f"{flow}.next({self.next_args.format(f=flow)})"


@st.composite
def graphs(draw: st.DrawFn, shape: str) -> list[StepSpec]:
    """The steps of a flow of the given shape, start first and end last."""
    if shape == "linear":
        names = [f"s{i}" for i in range(1, draw(st.integers(1, 3)) + 1)] + ["end"]
        steps = [StepSpec("start", f"{{f}}.{names[0]}", start=True)]
        for here, there in zip(names, names[1:]):
            steps.append(StepSpec(here, f"{{f}}.{there}"))
    elif shape == "branch":
        branches = ["b1", "b2", "b3"][: draw(st.integers(2, 3))]
        targets = ", ".join(f"{{f}}.{b}" for b in branches)
        if draw(st.booleans()):
            steps = [StepSpec("start", "{f}.split", start=True), StepSpec("split", targets)]
        else:
            steps = [StepSpec("start", targets, start=True)]
        steps += [StepSpec(b, "{f}.join") for b in branches]
        steps.append(StepSpec("join", "{f}.end", join=True))
    elif shape == "foreach":
        each = StepSpec("each", "{f}.join", foreach_body=True)
        if draw(st.booleans()):
            steps = [
                StepSpec("start", "{f}.fan", start=True),
                StepSpec("fan", '{f}.each, foreach="items"', foreach_var="items"),
            ]
        else:
            steps = [
                StepSpec("start", '{f}.each, foreach="items"', foreach_var="items", start=True)
            ]
        steps += [each, StepSpec("join", "{f}.end", join=True)]
    elif shape == "nested_foreach":
        steps = [
            StepSpec("start", '{f}.outer, foreach="items"', foreach_var="items", start=True),
            StepSpec(
                "outer",
                '{f}.inner, foreach="inner_items"',
                foreach_var="inner_items",
                foreach_body=True,
            ),
            StepSpec("inner", "{f}.join_inner", foreach_body=True),
            StepSpec("join_inner", "{f}.join_outer", join=True, foreach_body=True),
            StepSpec("join_outer", "{f}.end", join=True),
        ]
    elif shape == "switch":
        left, right = SWITCH_CASES
        cases = f'{{{{"{left}": {{f}}.{left}, "{right}": {{f}}.{right}}}}}, condition="choice"'
        if draw(st.booleans()):
            steps = [
                StepSpec("start", "{f}.pick", start=True),
                StepSpec("pick", cases, switch=True),
            ]
        else:
            steps = [StepSpec("start", cases, switch=True, start=True)]
        steps += [StepSpec(left, "{f}.end"), StepSpec(right, "{f}.end")]
    else:  # pragma: no cover - a typo in a test
        raise ValueError(f"unknown shape {shape!r}")
    steps.append(StepSpec("end", None))
    return steps


# --------------------------------------------------------------------------------------
# Small pieces


def _values(names: dict[str, str] | None = None) -> st.SearchStrategy[str]:
    """Source text of a small deterministic value (literals, or reads of the context)."""
    literal = st.one_of(
        st.integers(0, 3).map(str),
        st.sampled_from(['"x"', '"yes"', "''", '"é"']),
        st.lists(st.integers(0, 3), max_size=3).map(repr),
        st.sampled_from(["(1, 2)", '{"k": 1}', "None", "True", "2.5"]),
    )
    if not names:
        return literal
    fl, sn = names["flow"], names["step_name"]
    derived = st.sampled_from(
        [
            sn,
            f"len({sn})",
            f"_tag({sn})",
            f'getattr({fl}, "counter", 0) + 1',
            f'getattr({fl}, "a1", 0)',
            f"TAG + {sn}",
        ]
    )
    return st.one_of(literal, derived)


def _artifact_value(artifact: str, names: dict[str, str] | None = None) -> st.SearchStrategy[str]:
    """A value for `artifact`: `counter` stays an int and `log` a list, others vary."""
    if artifact == "counter":
        return st.integers(0, 3).map(str)
    if artifact == "log":
        return st.lists(st.sampled_from(["a", "b"]), max_size=2).map(repr)
    return _values(names)


def _control_value(artifact: str) -> st.SearchStrategy[str]:
    """A valid value for a control artifact (foreach lists, the switch condition)."""
    if artifact == "choice":
        return st.sampled_from([repr(c) for c in SWITCH_CASES])
    return st.lists(st.integers(1, 9), min_size=1, max_size=3).map(repr)


@dataclass
class _Module:
    """What is being written into the decorator module: helpers and decorators."""

    step_names: list[str]
    chaos: int
    inflow: bool = False
    decorators: list[_Decorator] = field(default_factory=list)
    helpers: list[list[str]] = field(default_factory=list)
    features: set[str] = field(default_factory=set)
    exact_errors: bool = True
    counter: int = 0
    classes: bool = False  # also class-based decorators (UserStepDecorator subclasses)

    def fresh(self, stem: str) -> str:
        """A new module-level name `stem<n>`."""
        self.counter += 1
        return f"{stem}{self.counter}"


@dataclass
class _Decorator:
    """A generated decorator: its name, text and where it may be used."""

    name: str
    params: int
    lines: list[str]
    foreach_only: bool = False
    bound_step: str | None = None
    import_form: str = "from"  # "from", "alias" or "module"

    def fits(self, step: StepSpec) -> bool:
        """Whether the decorator may decorate `step`."""
        if self.foreach_only and step.foreach_var is None:
            return False
        return self.bound_step is None or self.bound_step == step.name


@dataclass
class _Ctx:
    """Names visible in one decorator's code."""

    deco: str
    names: dict[str, str]  # role -> parameter name: step_name, flow, inputs, attributes
    local: str
    module: _Module
    step: StepSpec
    state: dict[str, object] = field(default_factory=dict)

    @property
    def fl(self) -> str:
        return self.names["flow"]

    @property
    def sn(self) -> str:
        return self.names["step_name"]


@st.composite
def _condition(draw: st.DrawFn, ctx: _Ctx) -> str:
    """A deterministic condition over the decorator's parameters and the artifacts."""
    fl, sn = ctx.fl, ctx.sn
    options = [
        f'{sn} == "{draw(st.sampled_from(ctx.module.step_names))}"',
        f'{sn}.startswith("{draw(st.sampled_from("sbejlr"))}")',
        f"{ctx.names['inputs']} is not None",
        f'getattr({fl}, "{draw(st.sampled_from(ARTIFACTS))}", 0) == {draw(st.integers(0, 3))}',
        f'hasattr({fl}, "{draw(st.sampled_from(ARTIFACTS))}")',
        f'len(getattr({fl}, "log", [])) % 2 == {draw(st.integers(0, 1))}',
    ]
    if "attributes" in ctx.names:
        options.append(f'{ctx.names["attributes"]}.get("k", 0) >= {draw(st.integers(1, 2))}')
    return draw(st.sampled_from(options))


@st.composite
def _raise_stmt(draw: st.DrawFn, ctx: _Ctx, phase: str) -> list[str]:
    """`raise SomeError("<deco> <phase>")`."""
    exc = draw(st.sampled_from(_EXCEPTIONS_RAISED))
    ctx.module.features.add(f"raise-{phase}")
    return [f'raise {exc}("{ctx.deco} {phase} failed")']


# --------------------------------------------------------------------------------------
# Decorator code


@st.composite
def _action(draw: st.DrawFn, ctx: _Ctx, phase: str) -> list[str]:
    """One statement (or a small block) of a decorator's before or after code."""
    fl, sn, deco = ctx.fl, ctx.sn, ctx.deco
    art = draw(st.sampled_from(ARTIFACTS))
    kinds = [
        "log",
        "set",
        "setattr",
        "read",
        "has",
        "del_guarded",
        "count",
        "inputs",
        "print_local",
        "tool",
        "json",
        "closure",
        "global",
        "alias",
        "current",
        "parameter",
    ]
    if phase == "before":
        kinds.append("rename")
    if "attributes" in ctx.names:
        kinds.append("attrs")
    if ctx.module.chaos >= 1:
        kinds += ["raise_if", "del", "read_direct"]
    if draw(st.integers(0, 9)) == 0:
        kinds.append("control")
    if phase == "after":
        kinds.append("return_if")
    kind = draw(st.sampled_from(kinds))
    if kind == "log":
        return [f'{fl}.log = getattr({fl}, "log", []) + ["{deco}:{phase}"]']
    if kind == "set":
        return [f"{fl}.{art} = {draw(_artifact_value(art, ctx.names))}"]
    if kind == "setattr":
        return [f'setattr({fl}, "{art}", {draw(_artifact_value(art, ctx.names))})']
    if kind == "read":
        return [f'print("{deco} {phase}: {art} =", getattr({fl}, "{art}", None))']
    if kind == "has":
        return [f'print("{deco} {phase}: has {art}", hasattr({fl}, "{art}"))']
    if kind == "del_guarded":
        return [f'if hasattr({fl}, "{art}"):', f"    del {fl}.{art}"]
    if kind == "count":
        return [
            f'{ctx.local} = getattr({fl}, "counter", 0) + 1',
            f"{fl}.counter = {ctx.local}",
        ]
    if kind == "inputs":
        inp = ctx.names["inputs"]
        return [
            f"if {inp} is not None:",
            f'    print("{deco} {phase}: inputs", '
            f'sorted(str(getattr(i, "{art}", None)) for i in {inp}))',
        ]
    if kind == "print_local":
        return [f'print("{deco} {phase}: local", {ctx.local}, {sn})']
    if kind == "tool":
        ctx.module.features.add("function-on-flow")
        return [f"{fl}.tool = _tag"]
    if kind == "json":
        ctx.module.features.add("carried-import")
        return [f'print("{deco} {phase}: json", json.dumps(getattr({fl}, "log", [])))']
    if kind == "closure":
        ctx.module.features.add("closure")
        fn = f"{deco}_peek"
        return [
            f"def {fn}(default=None):",
            f'    return [getattr({fl}, "a1", default), {ctx.local}, {sn}]',
            f'print("{deco} {phase}: peek", {fn}())',
        ]
    if kind == "global":
        ctx.module.features.add("global")
        ctx.state["global"] = True
        return ["CALLS += 1", f'print("{deco} {phase}: calls", CALLS)']
    if kind == "alias":
        ctx.module.features.add("flow-alias")
        return [f"target = {fl}", f"target.{art} = {draw(_artifact_value(art, ctx.names))}"]
    if kind == "current":
        ctx.module.features.add("metaflow-current")
        return [f'print("{deco} {phase}: current", current.step_name, current.retry_count)']
    if kind == "parameter":
        ctx.module.features.add("parameter")
        return [f'print("{deco} {phase}: limit", getattr({fl}, "limit", None))']
    if kind == "rename":
        ctx.module.features.add("param-reassigned")
        return [f'{sn} = {sn} + "!"']
    if kind == "attrs":
        return [f'print("{deco} {phase}: attributes", sorted({ctx.names["attributes"]}.items()))']
    if kind == "raise_if":
        cond = draw(_condition(ctx))
        return [f"if {cond}:", *indent(draw(_raise_stmt(ctx, phase)))]
    if kind == "del":
        ctx.module.features.add("del-may-fail")
        return [f"del {fl}.{art}"]
    if kind == "read_direct":
        ctx.module.features.add("read-may-fail")
        return [f'print("{deco} {phase}: direct {art}", {fl}.{art})']
    if kind == "control":
        control = draw(st.sampled_from(CONTROL_ARTIFACTS))
        ctx.module.features.add(f"control-{phase}")
        return [f"{fl}.{control} = {draw(_control_value(control))}"]
    if kind == "return_if":
        ctx.module.features.add("early-return")
        cond = draw(_condition(ctx))
        return [f"if {cond}:", f'    print("{deco} returns early")', "    return"]
    raise AssertionError(kind)  # pragma: no cover


@st.composite
def _replacement(draw: st.DrawFn, ctx: _Ctx) -> tuple[str, str, str | None]:
    """A module-level replacement function: (its name, its kind, the step it is bound to)."""
    step = ctx.step
    kinds = ["true"]
    if step.foreach_var is not None:
        kinds.append("dict")
    if step.next_args is not None:
        kinds += ["next", "next_true"]
    kind = draw(st.sampled_from(kinds))
    name = ctx.module.fresh("_replace")
    fl = draw(st.sampled_from(("flow", "fl", "self", "obj")))
    rest = draw(st.sampled_from(("*rest", "inputs=None")))
    lines = [f"def {name}({fl}, {rest}):", f'    """Replaces the step ({kind})."""']
    lines.append(f'    print("{name} replaces the step")')
    if rest == "inputs=None":
        lines += [
            "    if inputs is not None:",
            f'        print("{name}: joining", len(list(inputs)))',
        ]
    art = draw(st.sampled_from(ARTIFACTS))
    lines.append(f"    {fl}.{art} = {draw(_artifact_value(art))}")
    if ctx.module.chaos >= 1 and draw(st.integers(0, 3)) == 0:
        ctx.module.features.add("raise-replacement")
        lines += [
            f'    if getattr({fl}, "a2", 0) == {draw(st.integers(0, 3))}:',
            f'        raise {draw(st.sampled_from(_EXCEPTIONS_RAISED))}("{name} failed")',
        ]
    bound = None
    if kind == "true":
        lines.append("    return True")
    elif kind == "dict":
        lines.append('    return {"foreach": "alt_items"}')
    else:
        bound = step.name
        call = step.next_call(fl)
        lines.append(f"    {call}")
        if kind == "next_true":
            lines.append("    return True")
    ctx.module.features.add(f"replace-{kind}")
    ctx.module.helpers.append(lines)
    return name, kind, bound


@st.composite
def _yield_value(draw: st.DrawFn, ctx: _Ctx, state: dict[str, object]) -> str:
    """What one yield says, as source text ('' for a bare yield)."""
    kinds = ["run", "run", "none", "skip", "skip_constant", "replace"]
    if ctx.step.foreach_var is not None:
        kinds.append("foreach")
    kind = draw(st.sampled_from(kinds))
    if kind == "run":
        return ""
    if kind == "none":
        return "None"
    if kind == "skip":
        ctx.module.features.add("skip")
        return "{}"
    if kind == "skip_constant":
        ctx.module.features.add("skip")
        state["uses_skip_constant"] = True
        return "USER_SKIP_STEP"
    if kind == "foreach":
        ctx.module.features.add("skip-foreach")
        state["foreach_only"] = True
        return '{"foreach": "alt_items"}'
    if draw(st.integers(0, 5)) == 0:
        ctx.module.features.add("replace-lambda")
        return draw(
            st.sampled_from(
                [
                    "(lambda fl, *rest: True)",
                    f'(lambda fl, *rest: setattr(fl, "a2", {ctx.local}) or True)',
                ]
            )
        )
    name, kind, bound = draw(_replacement(ctx))
    if bound is not None:
        state["bound_step"] = bound
    if kind == "dict":
        # A replacement returning {"foreach": ...} may only run on foreach splits.
        state["foreach_only"] = True
    return name


@st.composite
def _yield_block(draw: st.DrawFn, ctx: _Ctx, state: dict[str, object]) -> list[str]:
    """The yield of a decorator: one yield per path, chosen statically or at run time."""

    def y(value: str) -> str:
        return f"yield {value}" if value else "yield"

    form = draw(
        st.sampled_from(["plain", "plain", "assign", "ternary", "if_else", "if_elif", "try_read"])
    )
    if form == "plain":
        return [y(draw(_yield_value(ctx, state)))]
    if form == "assign":
        var = ctx.local
        state["assigned"] = var
        return [f"{var} = {y(draw(_yield_value(ctx, state)))}"]
    ctx.module.features.add(f"yield-{form}")
    if form == "ternary":
        first = draw(_yield_value(ctx, state)) or "None"
        second = draw(_yield_value(ctx, state)) or "None"
        return [f"yield {first} if {draw(_condition(ctx))} else {second}"]
    if form == "if_else":
        lines = [f"if {draw(_condition(ctx))}:", "    " + y(draw(_yield_value(ctx, state)))]
        if draw(st.integers(0, 7)) == 0:
            # A path without a yield: Metaflow fails the task ("did not yield").
            ctx.module.features.add("no-yield-path")
            ctx.module.exact_errors = False
            return lines
        return [*lines, "else:", "    " + y(draw(_yield_value(ctx, state)))]
    if form == "if_elif":
        return [
            f"if {draw(_condition(ctx))}:",
            "    " + y(draw(_yield_value(ctx, state))),
            f"elif {draw(_condition(ctx))}:",
            "    " + y(draw(_yield_value(ctx, state))),
            "else:",
            "    " + y(draw(_yield_value(ctx, state))),
        ]
    # try_read: a read that fails when the artifact is missing decides the yield.
    art = draw(st.sampled_from(ARTIFACTS))
    return [
        "try:",
        f"    {ctx.local} = {ctx.fl}.{art}",
        "except AttributeError:",
        "    " + y(draw(_yield_value(ctx, state))),
        "else:",
        "    " + y(draw(_yield_value(ctx, state))),
    ]


@st.composite
def _guarded(draw: st.DrawFn, ctx: _Ctx, inner: list[str]) -> list[str]:
    """The yield block, maybe inside try/except/else/finally."""
    form = draw(
        st.sampled_from(
            [
                "bare",
                "bare",
                "except",
                "except_else",
                "finally",
                "except_finally",
                "full",
                "with",
                "suppress",
                "with_items",
                "except_star",
            ]
        )
    )
    if form == "bare":
        return inner
    deco = ctx.deco
    if form == "with":
        # Noisy.__exit__ prints and swallows KeyError.
        ctx.module.features.add("with-noisy")
        return [f'with Noisy("{deco}") as {draw(st.sampled_from(_EXC_NAMES))}:', *indent(inner)]
    if form == "with_items":
        # `with a, b:`: every item must step aside for a failure below, not only the first.
        ctx.module.features.add("with-noisy")
        ctx.module.features.add("with-suppress")
        exc = draw(st.sampled_from(["FuzzError", "ValueError", "KeyError"]))
        return [f'with Noisy("{deco}"), contextlib.suppress({exc}):', *indent(inner)]
    if form == "suppress":
        ctx.module.features.add("with-suppress")
        exc = draw(st.sampled_from(["FuzzError", "ValueError", "KeyError"]))
        return [f"with contextlib.suppress({exc}):", *indent(inner)]
    ctx.module.features.add(f"try-{form}")
    lines = ["try:", *indent(inner)]
    if form == "except_star":  # Python 3.11: the failure arrives wrapped in an ExceptionGroup
        exc = draw(st.sampled_from(_EXCEPTIONS_CAUGHT))
        var = draw(st.sampled_from(_EXC_NAMES))
        handler = [f'print("{deco} caught*", [type(one).__name__ for one in {var}.exceptions])']
        if draw(st.booleans()):
            handler.append(f"{ctx.fl}.caught = len({var}.exceptions)")
        if draw(st.integers(0, 2)) == 0:
            handler.append("raise")  # re-raises the group
        lines += [f"except* {exc} as {var}:", *indent(handler)]
        if draw(st.booleans()):
            lines += ["finally:", f'    print("{deco} finally")']
        return lines
    if form in ("except", "except_else", "except_finally", "full"):
        exc = draw(st.sampled_from(_EXCEPTIONS_CAUGHT))
        var = draw(st.sampled_from(_EXC_NAMES))
        handler = [f'print("{deco} caught", type({var}).__name__, str({var}))']
        if draw(st.booleans()):
            handler.append(f"{ctx.fl}.caught = type({var}).__name__")
        outcomes = ["swallow", "swallow", "reraise", "wrap", "return"]
        if ctx.module.chaos >= 1:
            outcomes.append("yield_again")  # a second yield when the step failed
        outcome = draw(st.sampled_from(outcomes))
        ctx.module.features.add(f"except-{outcome}")
        if outcome == "reraise":
            handler.append("raise")
        elif outcome == "yield_again":
            handler.append("yield {}")
        elif outcome == "wrap":
            handler.append(f'raise RuntimeError("{deco} wraps " + str({var})) from {var}')
        elif outcome == "return":
            handler.append("return")
        lines += [f"except {exc} as {var}:", *indent(handler)]
    if form in ("except_else", "full"):
        lines += ["else:", f'    print("{deco} else: the step succeeded")']
        if draw(st.booleans()):
            lines.append(f'    {ctx.fl}.log = getattr({ctx.fl}, "log", []) + ["{deco}:else"]')
    if form in ("finally", "except_finally", "full"):
        lines += ["finally:", f'    print("{deco} finally")']
        if ctx.module.chaos >= 2 and draw(st.integers(0, 4)) == 0:
            lines += [
                f"    if {draw(_condition(ctx))}:",
                *indent(draw(_raise_stmt(ctx, "finally")), 2),
            ]
    return lines


def _distinct_names(draw: st.DrawFn, count: int) -> dict[str, str]:
    """Parameter names for the roles, all different."""
    pools = (_STEP_NAME_PARAMS, _FLOW_PARAMS, _INPUTS_PARAMS, _ATTR_PARAMS)
    roles = ("step_name", "flow", "inputs", "attributes")[:count]
    taken: set[str] = set()
    names: dict[str, str] = {}
    for role, pool in zip(roles, pools):
        name = draw(st.sampled_from([n for n in pool if n not in taken]))
        taken.add(name)
        names[role] = name
    return names


@st.composite
def _decorator(draw: st.DrawFn, module: _Module, step: StepSpec) -> _Decorator:
    """A new decorator fit for `step`, added to `module`."""
    if module.classes and draw(st.integers(0, 2)) == 0:
        return draw(_class_decorator(module, step))
    params = draw(st.sampled_from([3, 4, 4]))
    names = _distinct_names(draw, params)
    stem = draw(st.sampled_from(_DECO_STEMS))
    deco = module.fresh(stem)
    local = draw(st.sampled_from(_LOCALS))
    ctx = _Ctx(deco, names, local, module, step)
    state = ctx.state

    before = [f'print("{deco} before", {ctx.sn})', f"{local} = 0"]
    before += [ln for _ in range(draw(st.integers(0, 3))) for ln in draw(_action(ctx, "before"))]
    if module.chaos >= 1 and draw(st.integers(0, 9)) == 0:
        # Finishing without a yield: Metaflow fails the task outside every decorator.
        module.features.add("no-yield")
        before += [
            f"if {draw(_condition(ctx))}:",
            f'    print("{deco} does not yield")',
            "    return",
        ]
    block = draw(_yield_block(ctx, state))
    core = draw(_guarded(ctx, block))
    after = [f'print("{deco} after", {ctx.sn})']
    if state.get("assigned"):
        after.append(f'print("{deco} got", {state["assigned"]})')
    after += [ln for _ in range(draw(st.integers(0, 3))) for ln in draw(_action(ctx, "after"))]
    if module.chaos >= 2 and draw(st.integers(0, 5)) == 0:
        after += draw(_raise_stmt(ctx, "after"))

    param_names = list(names.values())
    if draw(st.booleans()):
        # The usual defaults: (step_name, flow, inputs=None, attributes=None).
        param_names = [f"{n}=None" if i >= 2 else n for i, n in enumerate(param_names)]
    module.features.add(f"params-{params}")
    head = ["global CALLS"] if state.get("global") else []
    lines = [
        "@user_step_decorator",
        f"def {deco}({', '.join(param_names)}):",
        *indent([*head, *before, *core, *after]),
    ]
    if state.get("uses_skip_constant"):
        module.features.add("USER_SKIP_STEP")
    decorator = _Decorator(
        name=deco,
        params=params,
        lines=lines,
        foreach_only=bool(state.get("foreach_only")),
        bound_step=state.get("bound_step"),  # type: ignore[arg-type]
        import_form=(
            "from"
            if module.inflow
            else draw(st.sampled_from(["from", "from", "from", "alias", "module"]))
        ),
    )
    module.decorators.append(decorator)
    return decorator


_CLASS_STEMS = ("Audit", "Gate", "Probe", "Tally", "Watch")


@st.composite
def _class_decorator(draw: st.DrawFn, module: _Module, step: StepSpec) -> _Decorator:
    """A new class-based decorator (`UserStepDecorator` subclass) fit for `step`.

    `init` keeps its keyword arguments; `pre_step` does before-code, may set
    `self.skip_step` (True, or a foreach dict on splits) or return a replacement; `post_step`
    does after-code and returns None, the exception, raises it, or returns next arguments
    ((None, {}) or a foreach dict). Not generated: a post_step returning (None, None) or
    (None, False) after a skip or replacement decided at run time below it, where decoflow
    may succeed and Metaflow fails (README, "Class-based decorators")."""
    name = module.fresh(draw(st.sampled_from(_CLASS_STEMS)))
    names = {
        "step_name": "step_name",
        "flow": "flow",
        "inputs": "inputs",
        "attributes": "self.kwargs",
    }
    local = f"self.{draw(st.sampled_from(_LOCALS))}"
    ctx = _Ctx(name, names, local, module, step)
    state = ctx.state
    seen = f'{local} if hasattr(self, "{local[5:]}") else None'
    pre = [f'print("{name} pre_step", step_name, {seen})']
    pre.append(f"{local} = 0")
    pre += [ln for _ in range(draw(st.integers(0, 2))) for ln in draw(_action(ctx, "before"))]
    outcome = draw(st.sampled_from(["run", "run", "skip", "replace"]))
    if outcome == "skip":
        value = "True"
        if step.foreach_var is not None and draw(st.booleans()):
            value = '{"foreach": "alt_items"}'
            state["foreach_only"] = True
        module.features.add("class-skip")
        pre += [
            f"if {draw(_condition(ctx))}:",
            f'    print("{name} skips", step_name)',
            f"    self.skip_step = {value}",
        ]
    elif outcome == "replace":
        replacement, kind, bound = draw(_replacement(ctx))
        if kind == "dict":
            state["foreach_only"] = True
        if bound is not None:
            state["bound_step"] = bound
        module.features.add("class-replace")
        pre += [f"if {draw(_condition(ctx))}:", f"    return {replacement}"]
    post = [f'print("{name} post_step", step_name, type(exception).__name__)']
    post += [ln for _ in range(draw(st.integers(0, 2))) for ln in draw(_action(ctx, "after"))]
    returns = ["none", "exception", "raise"]
    if not step.switch:
        returns.append("own_next")
        if step.foreach_var is not None:
            returns.append("foreach")
    ret = draw(st.sampled_from(returns))
    module.features.add(f"class-post-{ret}")
    if ret == "none":
        post += [
            "if exception is not None and not isinstance(exception, KeyError):",
            "    return exception",
            "return None",
        ]
    elif ret == "exception":
        post.append("return exception")
    elif ret == "raise":
        post += ["if exception:", "    raise exception"]
    elif ret == "own_next":
        post.append("return exception, {}")
    else:
        state["foreach_only"] = True
        post.append('return exception, {"foreach": "alt_items"}')
    head = ["global CALLS"] if state.get("global") else []
    lines = [
        f"class {name}(UserStepDecorator):",
        '    """A generated class-based decorator."""',
        "",
        "    def init(self, *args, **kwargs):",
        "        self.kwargs = kwargs",
        "",
        "    def pre_step(self, step_name, flow, inputs=None):",
        *indent([*head, *pre], 2),
        "",
        "    def post_step(self, step_name, flow, exception=None):",
        *indent([*head, *post], 2),
    ]
    module.features.add("class-based")
    decorator = _Decorator(
        name=name,
        params=4,
        lines=lines,
        foreach_only=bool(state.get("foreach_only")),
        bound_step=state.get("bound_step"),  # type: ignore[arg-type]
        import_form=(
            "from" if module.inflow else draw(st.sampled_from(["from", "alias", "module"]))
        ),
    )
    module.decorators.append(decorator)
    return decorator


# --------------------------------------------------------------------------------------
# Step bodies


@st.composite
def _body(draw: st.DrawFn, step: StepSpec, chaos: int, features: set[str]) -> list[str]:
    """A step's own code, ending with its `self.next(...)`."""
    lines = [f'print("{step.name} body")']
    if step.start:
        lines += [
            f"self.items = {draw(_control_value('items'))}",
            f"self.inner_items = {draw(_control_value('items'))}",
            f"self.alt_items = {draw(_control_value('items'))}",
        ]
    if step.switch:
        lines.append(f"self.choice = {draw(_control_value('choice'))}")
    if step.foreach_body and not step.join:
        lines += ["self.item = self.input", f'print("{step.name} item", self.input)']
    if step.join:
        lines += [
            'self.joined = sorted(str(getattr(i, "a1", None)) for i in inputs)',
            'print("joined", self.joined, len(list(inputs)))',
        ]
    for _ in range(draw(st.integers(0, 3))):
        art = draw(st.sampled_from(ARTIFACTS))
        kinds = ["set", "read", "count", "local"]
        if chaos >= 1:
            kinds.append("raise_if")
        kind = draw(st.sampled_from(kinds))
        if kind == "set":
            lines.append(f"self.{art} = {draw(_artifact_value(art))}")
        elif kind == "read":
            lines.append(f'print("{step.name} reads {art}", getattr(self, "{art}", None))')
        elif kind == "count":
            lines.append('self.counter = getattr(self, "counter", 0) + 1')
        elif kind == "local":
            lines += ["x = 1", f'print("{step.name} local x", x)']
        else:
            features.add("raise-body")
            lines += [
                f'if getattr(self, "{art}", None) == {draw(st.integers(0, 3))}:',
                f'    raise ValueError("body of {step.name} failed")',
            ]
    if chaos >= 2 and draw(st.integers(0, 5)) == 0:
        features.add("raise-body")
        lines.append(f'raise RuntimeError("body of {step.name} always fails")')
    if step.next_args is None:
        if draw(st.integers(0, 3)) == 0:
            features.add("body-return")
            lines += [
                'if getattr(self, "counter", 0) >= 1:',
                '    print("end returns early")',
                "    return",
                'print("end finishes")',
            ]
        return lines
    lines.append(step.next_call("self") or "")
    return lines


# --------------------------------------------------------------------------------------
# Whole cases


def _use(draw: st.DrawFn, deco: _Decorator) -> str:
    """How the decorator is written above the step (`@name`, `@alias(k=1)`, ...)."""
    written = {
        "from": deco.name,
        "alias": f"{deco.name}_alias",
        "module": f"{DECO_MODULE}.{deco.name}",
    }[deco.import_form]
    if deco.params == 3:
        return f"@{written}"
    args = draw(
        st.sampled_from(
            ["", "", "k=1", "k=2", 'k=0, tag="t"', "k=LIMIT", 'tag="x", flag=True', "vals=[1, 2]"]
        )
    )
    return f"@{written}({args})" if args else f"@{written}"


_BUILTINS = (
    "@resources(cpu=1)",
    "@timeout(seconds=300)",
    '@environment(vars={"FUZZ": "1"})',
    "@retry(times=1, minutes_between_retries=0)",
)


@st.composite
def fuzz_cases(draw: st.DrawFn, shape: str | None = None, classes: bool = False) -> FuzzCase:
    """A flow of `shape` (any of SHAPES when None) with its decorator module; with
    `classes`, some decorators are class-based (UserStepDecorator subclasses)."""
    if shape is None:
        shape = draw(st.sampled_from(SHAPES))
    steps = draw(graphs(shape))
    chaos = draw(st.sampled_from([0, 1, 1, 2]))
    inflow = draw(st.integers(0, 6)) == 0
    module = _Module(
        step_names=[s.name for s in steps], chaos=chaos, inflow=inflow, classes=classes
    )

    stacks: dict[str, list[str]] = {}
    builtins_used: set[str] = set()
    # One step (the simplest choice: the first) is always decorated: a flow without
    # custom decorators would cost two Metaflow runs for nothing.
    forced = draw(st.sampled_from([s.name for s in steps]))
    for step in steps:
        depth = draw(st.sampled_from([0, 1, 1, 2, 2, 3, 4]))
        if step.name == forced:
            depth = max(depth, 1)
        stack: list[_Decorator] = []
        for _ in range(depth):
            reusable = [d for d in module.decorators if d.fits(step)]
            if reusable and draw(st.integers(0, 2)) == 0:
                chosen = draw(st.sampled_from(reusable))
                if chosen in stack:  # Metaflow runs each use as its own layer
                    module.features.add("same-decorator-twice")
                stack.append(chosen)
            else:
                stack.append(draw(_decorator(module, step)))
        uses = [_use(draw, d) for d in stack]
        if uses and draw(st.integers(0, 9)) == 0:
            builtin = draw(st.sampled_from(_BUILTINS))
            builtins_used.add(builtin[1:].split("(")[0])
            uses.insert(draw(st.integers(0, len(uses))), builtin)
            module.features.add("builtin-" + builtin[1:].split("(")[0])
        stacks[step.name] = uses
        if len(stack) > 1:
            module.features.add(f"stack-{len(stack)}")

    with_specs: list[str] = []
    for _ in range(0 if inflow else draw(st.sampled_from([0, 0, 0, 0, 1, 1, 2]))):
        # A decorator attached to every step with --with: one that fits any step.
        portable = [
            d
            for d in module.decorators
            if not d.foreach_only
            and d.bound_step is None
            and not any(spec.split(":")[0].endswith(f".{d.name}") for spec in with_specs)
        ]
        if portable and draw(st.booleans()):
            attached = draw(st.sampled_from(portable))
        else:
            attached = draw(_decorator(module, StepSpec("anywhere", None)))
        args = ""
        if attached.params == 4:
            args = draw(st.sampled_from(["", "k=1", "k=2,tag=x", "vals=[1, 2]"]))
        with_specs.append(f"{DECO_MODULE}.{attached.name}" + (f":{args}" if args else ""))
        module.features.add(f"with-{len(with_specs)}")
    if with_specs and draw(st.integers(0, 3)) == 0:
        # A built-in Metaflow decorator through --with too.
        with_specs.insert(
            draw(st.integers(0, len(with_specs))),
            draw(
                st.sampled_from(["retry:times=1,minutes_between_retries=0", "timeout:seconds=300"])
            ),
        )
        module.features.add("with-builtin")

    # Sometimes a flow mutator in the decorator module attaches one of its decorators to
    # some steps (issue 12: Metaflow evaluates it; the compiled flow has it written out).
    mutator: list[str] = []
    if not inflow and module.decorators and draw(st.integers(0, 4)) == 0:
        added = draw(st.sampled_from(module.decorators))
        fitting = [s.name for s in steps if added.fits(s)]
        if fitting:
            targets = draw(st.lists(st.sampled_from(fitting), min_size=1, unique=True))
            kwargs = "{}"
            if added.params == 4:
                kwargs = draw(st.sampled_from(["{}", '{"k": 1}', '{"k": 2, "tag": "m"}']))
            mutator = [
                "",
                "class fuzz_mutator(FlowMutator):",
                "    def mutate(self, mutable_flow):",
                "        for name, step in mutable_flow.steps:",
                f"            if name in {tuple(sorted(targets))!r}:",
                f"                step.add_decorator({added.name}, deco_kwargs={kwargs})",
                "",
            ]
            module.features.add("flow-mutator")

    used = module.decorators
    deco_body = _render_module_body(module) + mutator
    flow_imports = ["FlowSpec", "Parameter", "step", *sorted(builtins_used)]
    if inflow:
        module.features.add("decorators-in-flow")
        flow_imports += ["USER_SKIP_STEP", "current", "user_step_decorator"]
        if classes:
            flow_imports.append("UserStepDecorator")
    header = [f'"""A generated {shape} flow (tests/strategies.py)."""']
    if inflow:
        header += ["import contextlib", "import json", ""]
    header.append(
        f"from metaflow import {', '.join(sorted(set(flow_imports), key=flow_imports.index))}"
    )
    if not inflow and used:
        direct = [d.name for d in used if d.import_form == "from"]
        aliased = [d.name for d in used if d.import_form == "alias"]
        if direct:
            header.append(f"from {DECO_MODULE} import {', '.join(direct)}")
        for name in aliased:
            header.append(f"from {DECO_MODULE} import {name} as {name}_alias")
        if any(d.import_form == "module" for d in used):
            header.append(f"import {DECO_MODULE}")
        if mutator:
            header.append(f"from {DECO_MODULE} import fuzz_mutator")
    flow_lines = [*header, "", "LIMIT = 2", ""]
    if inflow:
        flow_lines += [*deco_body, ""]
    flow_lines += [
        "",
        *(["@fuzz_mutator"] if mutator else []),
        f"class {FLOW_CLASS}(FlowSpec):",
        "",
        '    limit = Parameter("limit", default=LIMIT, help="read by decorators and steps")',
    ]
    for step in steps:
        flow_lines.append("")
        params = "self, inputs" if step.join else "self"
        body = draw(_body(step, chaos, module.features))
        flow_lines += indent([*stacks[step.name], "@step", f"def {step.name}({params}):"])
        flow_lines += indent(body, 2)
    flow_lines += ["", "", 'if __name__ == "__main__":', f"    {FLOW_CLASS}()", ""]

    files = {FLOW_FILE: "\n".join(flow_lines)}
    if not inflow:
        files[f"{DECO_MODULE}.py"] = "\n".join(
            [
                f'"""Decorators for the generated {shape} flow (tests/strategies.py)."""',
                "import contextlib",
                "import json",
                "",
                "from metaflow import USER_SKIP_STEP, current, user_step_decorator"
                + (", UserStepDecorator" if classes else "")
                + (", FlowMutator" if mutator else ""),
                "",
                *deco_body,
            ]
        )
    features = {*module.features, f"shape-{shape}", f"chaos-{chaos}"}
    return FuzzCase(
        shape=shape,
        files=files,
        exact_errors=module.exact_errors,
        features=tuple(sorted(features)),
        with_specs=tuple(with_specs),
    )


def _render_module_body(module: _Module) -> list[str]:
    """Helpers, replacement functions and decorators, separated by blank lines."""
    lines = [
        'TAG = "fz:"',
        "CALLS = 0",
        "",
        "",
        "class Noisy:",
        '    """A context manager that reports and swallows KeyError."""',
        "",
        "    def __init__(self, name):",
        "        self.name = name",
        "",
        "    def __enter__(self):",
        '        print("enter", self.name)',
        "        return self",
        "",
        "    def __exit__(self, kind, value, tb):",
        '        print("exit", self.name, kind.__name__ if kind else None)',
        "        return kind is KeyError",
        "",
        "",
        "class FuzzError(Exception):",
        '    """A decorator\'s own failure."""',
        "",
        "",
        "def _tag(value):",
        '    return f"<{value}>"',
        "",
    ]
    for helper in module.helpers:
        lines += ["", *helper, ""]
    for deco in module.decorators:
        lines += ["", *deco.lines, ""]
    return lines
