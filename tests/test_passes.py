"""Unit tests for the compiler passes: before/after tables and located diagnostics.

These run no Metaflow; the differential tests (test_differential.py) check behaviour.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest
from decoflow.transformer import CompileError, CompileOptions, compile_source
from decoflow.transformer.support.names import NameAllocator
from decoflow.transformer.support.returns import ReturnEliminator
from decoflow.transformer.support.withspec import SpecError, parse_spec


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# --- return elimination ------------------------------------------------------------------

RETURNS = [
    (
        "return in if, rest guarded",
        """
        a()
        if x:
            return
        b()
        """,
        """
        a()
        if x:
            done = True
        if not done:
            b()
        """,
    ),
    (
        "return in a loop breaks, rest guarded after the loop",
        """
        for i in y:
            if i:
                return
            c(i)
        d()
        """,
        """
        for i in y:
            if i:
                done = True
                break
            c(i)
        if not done:
            d()
        """,
    ),
    (
        "nested loops propagate the break",
        """
        for i in y:
            for j in i:
                return
            e()
        """,
        """
        for i in y:
            for j in i:
                done = True
                break
            if done:
                break
            e()
        """,
    ),
    (
        "try/else is skipped after a return in the body",
        """
        try:
            return
        except E:
            pass
        else:
            f()
        """,
        """
        try:
            done = True
        except E:
            pass
        else:
            if not done:
                f()
        """,
    ),
    (
        "a returned value is still evaluated",
        """
        return compute()
        """,
        """
        compute()
        done = True
        """,
    ),
    (
        "nested functions keep their returns",
        """
        def g():
            return 1
        h()
        """,
        """
        def g():
            return 1
        h()
        """,
    ),
]


@pytest.mark.parametrize("name,before,after", RETURNS, ids=[r[0] for r in RETURNS])
def test_return_elimination(name: str, before: str, after: str) -> None:
    module = cst.parse_module(dedent(before))
    out = ReturnEliminator("done").statements(list(module.body))
    assert cst.Module(body=out).code == dedent(after)


# --- names -------------------------------------------------------------------------------


def test_allocator_prefers_the_name_then_prefix_then_number() -> None:
    alloc = NameAllocator({"start", "deco_start"})
    assert alloc.claim("duration", prefix="deco") == "duration"
    assert alloc.claim("start", prefix="deco") == "deco_start_2"
    assert alloc.claim("class", prefix="deco") == "deco_class"


# --- --with specs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,name,attrs",
    [
        ("mod.deco", "mod.deco", {}),
        ("retry:times=2", "retry", {"times": 2}),
        ('m.d:cfg={"k": [1, 2]},x=1.5,s=hello,t=true', "m.d", {"cfg": {"k": [1, 2]}, "x": 1.5, "s": "hello", "t": True}),
        ("m.d:label=a,b", "m.d", {"label": "a,b"}),
    ],
)
def test_with_spec_values_parse_as_metaflow_parses_them(raw: str, name: str, attrs: dict) -> None:
    spec = parse_spec(raw)
    assert (spec.name, spec.attributes) == (name, attrs)


@pytest.mark.parametrize("raw", ["", ":x=1", "m.d:novalue", "1bad.name"])
def test_malformed_with_specs_are_rejected(raw: str) -> None:
    with pytest.raises(SpecError):
        parse_spec(raw)


# --- whole-file compiles: before/after -----------------------------------------------------

DECOS = dedent(
    """
    import time
    from metaflow import user_step_decorator as usd, USER_SKIP_STEP

    LABEL = "t"

    def stamp():
        return LABEL + str(round(time.time()) * 0)

    def unused():
        return 1

    @usd
    def timer(step_name, flow, inputs=None, attributes=None):
        start = stamp()
        yield
        flow.stamped = start

    @usd
    def skipper(s, self, ins):
        yield USER_SKIP_STEP
    """
)


def one_decorated_step(name: str) -> str:
    """A two-step flow whose `start` carries `@<name>` imported from `decos`."""
    return f"""
    from metaflow import FlowSpec, step
    from decos import {name}

    class F(FlowSpec):
        @{name}
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
    """


def with_body_line(flow: str, code: str) -> str:
    """`flow` (from `one_decorated_step`) with `code` first in the body of `start`."""
    body = "            self.next(self.end)"
    return flow.replace(body, f"            {code}\n{body}", 1)


def compile_text(tmp_path: Path, flow: str, decos: str = DECOS, **opts) -> str:
    (tmp_path / "decos.py").write_text(decos)
    (tmp_path / "flow.py").write_text(dedent(flow))
    return compile_source(dedent(flow), tmp_path / "flow.py", CompileOptions(project_root=tmp_path, **opts))


def test_helpers_are_carried_only_when_needed(tmp_path: Path) -> None:
    out = compile_text(
        tmp_path,
        """
        from metaflow import FlowSpec, step
        from decos import timer

        class F(FlowSpec):
            @timer
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
        """,
    )
    assert "def stamp():" in out and 'LABEL = "t"' in out and "import time" in out
    assert "def unused" not in out
    assert "user_step_decorator" not in out and "usd" not in out and "from decos import" not in out
    assert "# @timer (decos.py:" in out


def test_carried_helper_renamed_when_the_flow_uses_its_name(tmp_path: Path) -> None:
    out = compile_text(
        tmp_path,
        """
        from metaflow import FlowSpec, step
        from decos import timer

        def stamp():
            return "the flow's own"

        class F(FlowSpec):
            @timer
            @step
            def start(self):
                self.own = stamp()
                self.next(self.end)

            @step
            def end(self):
                pass
        """,
    )
    assert "def decos_stamp():" in out
    assert "start = decos_stamp()" in out
    assert "self.own = stamp()" in out


def test_skip_step_constant_never_appears(tmp_path: Path) -> None:
    out = compile_text(
        tmp_path,
        """
        from metaflow import FlowSpec, step
        import decos

        class F(FlowSpec):
            @decos.skipper
            @step
            def start(self):
                self.x = 1
                self.next(self.end)

            @step
            def end(self):
                pass
        """,
    )
    assert "USER_SKIP_STEP" not in out and "import decos" not in out
    assert "self.x = 1" not in out  # skipped statically: the body is not even emitted
    assert out.rstrip().endswith("pass")


def test_flow_without_custom_decorators_is_its_own_output(tmp_path: Path) -> None:
    flow = dedent(
        """
        from metaflow import FlowSpec, step

        class F(FlowSpec):
            @step
            def start(self):  # comment
                self.next(self.end)

            @step
            def end(self):
                pass
        """
    )
    assert compile_text(tmp_path, flow) == flow


# --- diagnostics -------------------------------------------------------------------------

BAD = [
    ("loop", "for i in range(2):\n        yield", "DF304"),
    ("yield from", "yield from other()", "DF303"),
    ("two yields", "yield\n    yield", "DF308"),
    ("never yields", "return\n    yield", "DF301"),
    ("in expression", "print((yield))", "DF302"),
]


@pytest.mark.parametrize("name,body,code", BAD, ids=[b[0] for b in BAD])
def test_bad_decorators_get_located_diagnostics(tmp_path: Path, name: str, body: str, code: str) -> None:
    decos = f"from metaflow import user_step_decorator\n\n@user_step_decorator\ndef bad(step_name, flow, inputs):\n    {body}\n"
    with pytest.raises(CompileError) as err:
        compile_text(tmp_path, one_decorated_step("bad"), decos)
    text = "\n".join(d.format() for d in err.value.diagnostics)
    assert f" {code} " in text
    assert text.startswith("decos.py:")
    assert "flow.py:5:5: note: @bad used here" in text


def test_wrong_arity_and_positional_arguments(tmp_path: Path) -> None:
    decos = "from metaflow import user_step_decorator\n\n@user_step_decorator\ndef two(a, b):\n    yield\n"
    flow = """
    from metaflow import FlowSpec, step
    from decos import two

    class F(FlowSpec):
        @two
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
    """
    with pytest.raises(CompileError) as err:
        compile_text(tmp_path, flow, decos)
    assert err.value.diagnostics[0].code == "DF306"
    assert str(err.value.diagnostics[0].location) == "decos.py:4:1"


def test_missing_module_names_where_it_looked(tmp_path: Path) -> None:
    flow = """
    from metaflow import FlowSpec, step
    from obs.core import deco

    class F(FlowSpec):
        @deco
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
    """
    with pytest.raises(CompileError) as err:
        compile_text(tmp_path, flow)
    diag = err.value.diagnostics[0]
    assert diag.code == "DF201"
    assert str(diag.location) == "flow.py:2:1"  # the import naming the module
    notes = [(str(where), text) for where, text in diag.notes]
    assert notes == [("flow.py:5:5", "@deco used here")]
    assert "cannot find module 'obs.core'" in diag.message and "searched:" in diag.message


def test_second_yield_only_after_a_failure_is_checked_at_run_time(tmp_path: Path) -> None:
    decos = dedent(
        """
        from metaflow import user_step_decorator

        @user_step_decorator
        def retry_skip(step_name, flow, inputs):
            try:
                yield
            except Exception:
                yield {}
        """
    )
    flow = """
    from metaflow import FlowSpec, step
    from decos import retry_skip

    class F(FlowSpec):
        @retry_skip
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
    """
    out = compile_text(tmp_path, flow, decos)
    assert "raise decoflow_yielded_twice('decos.retry_skip') from None" in out


# --- printing ------------------------------------------------------------------------------

def _printed_fixture(path: Path) -> bool:
    """A fixture's own file (not a regression case, not what `pip install` built from one)."""
    return not {"regressions", "build"} & set(path.parts) and not any(p.endswith(".egg-info") for p in path.parts)


PRINTED = sorted(
    p for p in (Path(__file__).parent.parent / "fixtures").rglob("*.py") if _printed_fixture(p)
) + sorted((Path(__file__).parent / "golden").glob("*.py"))


@pytest.mark.parametrize("path", PRINTED, ids=lambda p: p.name)
def test_printing_without_position_bookkeeping_is_libcst_printing(path: Path) -> None:
    """`render.module_code` must print exactly what `Module.code` prints."""
    from decoflow.transformer.passes.render import module_code

    module = cst.parse_module(path.read_text(encoding="utf-8"))
    assert module_code(module) == module.code
    assert module_code(module) == path.read_text(encoding="utf-8")


# --- decorators applied by a call ----------------------------------------------------------

APPLIED = dedent(
    """
    from metaflow import user_step_decorator

    def _note(step_name, flow, inputs=None):
        print("note", step_name)
        yield

    note = user_step_decorator(_note)
    built = user_step_decorator(lambda step_name, flow, inputs: None)
    """
)


def test_decorator_applied_by_a_call_is_inlined_also_through_with(tmp_path: Path) -> None:
    flow = one_decorated_step("note")
    out = compile_text(tmp_path, flow, APPLIED)
    assert out.count('print("note", step_name)') == 1
    assert "from decos" not in out and "user_step_decorator" not in out
    with_out = compile_text(tmp_path, flow, APPLIED, with_specs=("decos.note",))
    assert with_out.count('print("note", step_name)') == 2  # start (written once, --with adds no second) and end


def test_decorator_applied_by_a_call_to_something_else_is_built_at_run_time(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as err:
        compile_text(tmp_path, one_decorated_step("built"), APPLIED)
    assert [d.code for d in err.value.diagnostics] == ["DF204"]


POSTPONED = dedent(
    '''
    """Helpers under PEP 563."""
    from __future__ import annotations

    from typing import Literal

    from metaflow import user_step_decorator


    class Box:
        def again(self, mode: Literal["a", 'b'] = "a") -> Box:
            return Box()

    LIMIT: int = 3


    @user_step_decorator
    def boxed(step_name, flow, inputs=None, attributes=None):
        local: Box = Box().again()
        yield
        flow.limit = LIMIT
    '''
)


@pytest.mark.parametrize("flow_future", [False, True])
def test_annotations_carried_from_a_pep563_module_stay_unevaluated(tmp_path: Path, flow_future: bool) -> None:
    """Carried code keeps PEP 563's meaning: its annotations become strings (a forward
    reference such as `-> Box` in Box's own body would fail evaluated), unless the flow
    module postpones them too; the decorator's own (local) annotations are never evaluated."""
    flow = one_decorated_step("boxed")
    if flow_future:
        flow = flow.replace("from metaflow import", "from __future__ import annotations\n    from metaflow import", 1)
    out = compile_text(tmp_path, flow, POSTPONED)
    if flow_future:
        assert "def again(self, mode: Literal[\"a\", 'b'] = \"a\") -> Box:" in out
        assert "LIMIT: int = 3" in out
    else:
        assert "def again(self, mode: 'Literal[\"a\", \\'b\\']' = \"a\") -> \"Box\":" in out
        assert 'LIMIT: "int" = 3' in out
    assert "local: Box = Box().again()" in out
    compile(out, "out.py", "exec")
    namespace: dict = {}
    exec(compile(out.split("class F(FlowSpec)")[0].replace("from metaflow import FlowSpec, step", ""), "carried", "exec"), namespace)
    assert namespace["Box"]().again().__class__.__name__ == "Box"


# --- names equal to a step's own name (issue 14, item 1) -----------------------------------

STEP_NAMED = dedent(
    """
    import time
    from metaflow import user_step_decorator

    LIMIT = 2
    LIMIT = LIMIT * 5

    def countdown(n):
        return 0 if n <= 0 else countdown(n - 1)

    @user_step_decorator
    def timer(step_name, flow, inputs=None):
        start = time.time()
        yield
        flow.took = time.time() - start
        flow.limit = LIMIT + countdown(2)
    """
)


def test_decorator_local_renamed_when_the_step_uses_its_own_name(tmp_path: Path) -> None:
    """The names a step uses include its own name where the body uses it (`start = ...` in
    step `start`): the decorator's `start` must not be the body's."""
    flow = with_body_line(one_decorated_step("timer"), 'start = "the body\'s"')
    out = compile_text(tmp_path, flow, STEP_NAMED)
    assert "timer_start = time.time()" in out
    assert "self.took = time.time() - timer_start" in out
    assert "start = \"the body's\"" in out


def test_carried_rebinding_carries_the_binding_it_reads(tmp_path: Path) -> None:
    """`LIMIT = LIMIT * 5` reads the binding before it: both are carried, renamed alike on
    a collision; a recursive function reading its own name carries nothing more."""
    flow = one_decorated_step("timer").replace("class F", "LIMIT = 0\n\n    class F")
    out = compile_text(tmp_path, flow, STEP_NAMED)
    assert "decos_LIMIT = 2\n" in out and "decos_LIMIT = decos_LIMIT * 5" in out
    assert out.index("decos_LIMIT = 2") < out.index("decos_LIMIT = decos_LIMIT * 5")
    assert "return 0 if n <= 0 else countdown(n - 1)" in out
    namespace: dict = {}
    head = out.split("class F(FlowSpec)")[0].replace("from metaflow import FlowSpec, step", "")
    exec(compile(head, "carried", "exec"), namespace)
    assert namespace["decos_LIMIT"] == 10 and namespace["LIMIT"] == 0


# --- inspect.getsource of a step from decorator code (issue 14, item 3) ----------------------

SOURCE_FLOW = """
    from metaflow import FlowSpec, step
    from decos import seen


    class Base(FlowSpec):
        @step
        def end(self):
            pass


    class F(Base):
        # not part of the source
        @seen
        @step
        def start(self):
            \"\"\"Doc.\"\"\"
            START_SOURCE = "the body's"
            self.next(self.end)
"""


@pytest.mark.parametrize(
    ("head", "expr"),
    [
        ("import inspect", "inspect.getsource(getattr(flow, step_name))"),
        ("import inspect as i", "i.getsource(getattr(type(flow), step_name))"),
        ("from inspect import getsource", "getsource(flow.start)"),
        ("from inspect import getsource as gs", 'gs(getattr(flow.__class__, "start"))'),
        ("import inspect", "inspect.getsource(method)"),
    ],
)
def test_getsource_of_the_step_is_the_original_text(tmp_path: Path, head: str, expr: str) -> None:
    """Every spelling of 'the source of this step' becomes a constant holding what
    inspect.getsource returns natively: decorators, def line and body, as indented in the
    class; the import it needed is not carried."""
    decos = dedent(
        f"""
        {head}
        from metaflow import user_step_decorator

        @user_step_decorator
        def seen(step_name, flow, inputs=None):
            method = getattr(flow, step_name)
            flow.text = {expr}
            yield
        """
    )
    out = compile_text(tmp_path, SOURCE_FLOW, decos)
    assert "self.text = START_SOURCE_2" in out  # the body's own START_SOURCE is not it
    namespace: dict = {}
    head = out.split("class Base(FlowSpec)")[0].replace("from metaflow import FlowSpec, step", "")
    exec(compile(head, "c", "exec"), namespace)
    assert namespace["START_SOURCE_2"] == (
        '    @seen\n    @step\n    def start(self):\n        """Doc."""\n'
        "        START_SOURCE = \"the body's\"\n        self.next(self.end)\n"
    )
    assert "getsource(" not in out and "import inspect" not in out


def test_getsource_of_a_base_class_step_and_of_other_things(tmp_path: Path) -> None:
    """`flow.end` (a step of a base class in the flow file) gets its text too; getsource of
    what is not the flow's code (an artifact) is left as it is, as is getsourcelines (a
    warning, see test_diagnostics)."""
    decos = dedent(
        """
        import inspect
        from metaflow import user_step_decorator

        @user_step_decorator
        def seen(step_name, flow, inputs=None):
            flow.end_text = inspect.getsource(flow.end)
            flow.helper = inspect.getsource(flow.some_artifact) if False else None
            flow.lines = inspect.getsourcelines(flow.end)[1]
            yield
        """
    )
    with pytest.warns(UserWarning, match="DF601 @seen: inspect.getsourcelines"):
        out = compile_text(tmp_path, SOURCE_FLOW, decos)
    assert "self.end_text = END_SOURCE" in out
    end = '    "    @step\\n"\n    "    def end(self):\\n"\n    "        pass\\n"\n'
    assert f"END_SOURCE = (\n{end})" in out
    assert "inspect.getsource(self.some_artifact)" in out
    assert "inspect.getsourcelines(self.end)[1]" in out and "import inspect" in out


# --- helpers the flow imports from a decorator module for its own use (issue 14, item 4) -----


@pytest.mark.parametrize(
    ("imports", "call", "expected"),
    [
        ("from decos import timer, stamp", "stamp()", ["def stamp():", "self.own = stamp()"]),
        (
            "from decos import timer, stamp as st",
            "st()",
            ["def st():", "start = st()", "self.own = st()"],
        ),
        (
            "import decos\n    from decos import timer",
            "decos.stamp()",
            ["def decos_stamp():", "decos = types.SimpleNamespace(stamp=decos_stamp)"],
        ),
    ],
)
def test_flow_helpers_from_a_decorator_module_are_carried(
    tmp_path: Path, imports: str, call: str, expected: list[str]
) -> None:
    """Carried like the decorators' helpers, under the flow's own name (one object shared
    with the decorators), and the import dropped: the output needs neither the module nor
    Metaflow 2.16."""
    flow = one_decorated_step("timer").replace("from decos import timer", imports)
    flow = with_body_line(flow, f"self.own = {call}")
    out = compile_text(tmp_path, flow)
    for text in expected:
        assert text in out
    assert "\nfrom decos" not in out and "import decos" not in out and "def timer" not in out
    assert out.count("def ") - out.count("def decoflow_") == 3  # the helper, start, end


def test_flow_import_of_a_decorator_module_used_bare_is_kept(tmp_path: Path) -> None:
    """A module the flow passes around as a value cannot be carried as a namespace of what
    it reads: the import stays (a known gap); a helper imported and never read just goes."""
    imports = "import decos\n    from decos import timer, unused"
    flow = one_decorated_step("timer").replace("from decos import timer", imports)
    flow = with_body_line(flow, "self.mod = str(decos)")
    out = compile_text(tmp_path, flow)
    assert "import decos\n" in out and "unused" not in out and "\nfrom decos" not in out
