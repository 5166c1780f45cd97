"""Pass 4, carry: the module-level helpers a decorator reads, carried into the output, and
the steps' sources `inspect.getsource` asks for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from decoflow.transformer import CompileWarning
from pass_helpers import STEP_NAMED, compile_text, dedent, one_decorated_step, with_body_line


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
def test_annotations_carried_from_a_pep563_module_stay_unevaluated(
    tmp_path: Path, flow_future: bool
) -> None:
    """Carried code keeps PEP 563's meaning: its annotations become strings (a forward
    reference such as `-> Box` in Box's own body would fail evaluated), unless the flow
    module postpones them too; the decorator's own (local) annotations are never evaluated."""
    flow = one_decorated_step("boxed")
    if flow_future:
        flow = flow.replace(
            "from metaflow import",
            "from __future__ import annotations\n    from metaflow import",
            1,
        )
    out = compile_text(tmp_path, flow, POSTPONED)
    if flow_future:
        assert 'def again(self, mode: Literal["a", \'b\'] = "a") -> Box:' in out
        assert "LIMIT: int = 3" in out
    else:
        assert 'def again(self, mode: \'Literal["a", \\\'b\\\']\' = "a") -> "Box":' in out
        assert 'LIMIT: "int" = 3' in out
    assert "local: Box = Box().again()" in out
    compile(out, "out.py", "exec")
    namespace: dict = {}
    exec(
        compile(
            out.split("class F(FlowSpec)")[0].replace("from metaflow import FlowSpec, step", ""),
            "carried",
            "exec",
        ),
        namespace,
    )
    assert namespace["Box"]().again().__class__.__name__ == "Box"


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
        '        START_SOURCE = "the body\'s"\n        self.next(self.end)\n'
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
            # `decos.stamp` is an attribute: the flow has no variable `stamp` to avoid
            ["def stamp():", "decos = types.SimpleNamespace(stamp=stamp)"],
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
    with pytest.warns(CompileWarning, match="DF602 the compiled flow still imports decos"):
        out = compile_text(tmp_path, flow)  # and says the output needs decos and 2.16+
    assert "import decos\n" in out and "unused" not in out and "\nfrom decos" not in out
