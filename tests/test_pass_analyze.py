"""Pass 3, analyze: located diagnostics for decorators that cannot be inlined, and what the
analysis of control flow leaves to run time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from decoflow.transformer import CompileError
from pass_helpers import compile_text, dedent, one_decorated_step, with_body_line

BAD = [
    ("loop", "for i in range(2):\n        yield", "DF304"),
    ("yield from", "yield from other()", "DF303"),
    ("two yields", "yield\n    yield", "DF308"),
    ("never yields", "return\n    yield", "DF301"),
    ("in expression", "print((yield))", "DF302"),
]


@pytest.mark.parametrize("name,body,code", BAD, ids=[b[0] for b in BAD])
def test_bad_decorators_get_located_diagnostics(
    tmp_path: Path, name: str, body: str, code: str
) -> None:
    decos = (
        "from metaflow import user_step_decorator\n\n@user_step_decorator\n"
        f"def bad(step_name, flow, inputs):\n    {body}\n"
    )
    with pytest.raises(CompileError) as err:
        compile_text(tmp_path, one_decorated_step("bad"), decos)
    text = "\n".join(d.format() for d in err.value.diagnostics)
    assert f" {code} " in text
    assert text.startswith("decos.py:")
    assert "flow.py:5:5: note: @bad used here" in text


def test_wrong_arity_and_positional_arguments(tmp_path: Path) -> None:
    decos = (
        "from metaflow import user_step_decorator\n\n@user_step_decorator\n"
        "def two(a, b):\n    yield\n"
    )
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
    out = compile_text(
        tmp_path, with_body_line(one_decorated_step("retry_skip"), "self.x = 1"), decos
    )
    # The second yield is reached only after the first: it always fails, as Metaflow does
    # (no count kept, nothing after the raise). It is raised in the handler, where no guard
    # of the decorator sees it: no setup marker.
    handler = (
        "        except Exception:\n"
        '            raise decoflow_yielded_twice("decos.retry_skip") from None\n'
        "        self.next(self.end)\n"
    )
    assert handler in out
    assert "retry_skip_yielded" not in out
    assert "setting_up" not in out


def test_second_yield_a_guard_would_see_keeps_the_marker(tmp_path: Path) -> None:
    """A second yield inside an outer `try` body: that `try`'s handler and `finally` must step
    aside for Metaflow's error (the generator stays suspended), so the marker stays."""
    decos = dedent(
        """
        from metaflow import user_step_decorator

        @user_step_decorator
        def retry_skip(step_name, flow, inputs):
            try:
                try:
                    yield
                except Exception:
                    yield {}
            except Exception:
                print("caught")
        """
    )
    out = compile_text(
        tmp_path, with_body_line(one_decorated_step("retry_skip"), "self.x = 1"), decos
    )
    assert "                setting_up = 2\n" in out
    outer_handler = "    except Exception:\n            if setting_up > 1:\n                raise\n"
    assert outer_handler in out
