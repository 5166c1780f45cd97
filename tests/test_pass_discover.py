"""Pass 1, discover: how a custom decorator is found on a step (by reading, never importing).

These run no Metaflow; the differential tests (test_differential.py) check behaviour.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from decoflow.transformer import CompileError
from pass_helpers import compile_text, dedent, one_decorated_step


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
    assert (
        with_out.count('print("note", step_name)') == 2
    )  # start (written once, --with adds no second) and end


def test_decorator_applied_by_a_call_to_something_else_is_built_at_run_time(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as err:
        compile_text(tmp_path, one_decorated_step("built"), APPLIED)
    assert [d.code for d in err.value.diagnostics] == ["DF204"]
