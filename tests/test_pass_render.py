"""Pass 6, render: the output module, and printing it."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from decoflow.transformer.support.import_lines import merge_metaflow_imports
from pass_helpers import compile_text, dedent, one_decorated_step


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


def test_an_import_past_the_line_length_is_wrapped_as_black_wraps_it(tmp_path: Path) -> None:
    names = "FlowSpec, Parameter, card, catch, current, environment, resources, retry, step"
    flow = one_decorated_step("timer").replace(
        "from metaflow import FlowSpec, step", f"from metaflow import {names}  # noqa: F401"
    )
    out = compile_text(tmp_path, flow)
    wrapped = "".join(f"    {name},\n" for name in names.split(", "))
    assert f"\nfrom metaflow import (  # noqa: F401\n{wrapped})\n" in out
    assert max(len(line) for line in out.splitlines() if not line.startswith("#")) <= 100


def test_added_metaflow_imports_join_the_flows_own_line() -> None:
    body = list(cst.parse_module("from metaflow import FlowSpec, step\nimport os\n").body)
    added = [cst.parse_statement("from metaflow import current"), cst.parse_statement("import re")]
    rest = merge_metaflow_imports(body, added)
    assert cst.Module(body=body).code == "from metaflow import FlowSpec, current, step\nimport os\n"
    assert [cst.Module(body=[s]).code for s in rest] == ["import re\n"]


def test_an_added_name_another_flow_line_binds_keeps_its_own_line() -> None:
    """`current` is bound by the flow's second line too: merged into the first, the flow's
    own binding would win where the added line (placed after both) won before."""
    flow = "from metaflow import FlowSpec, step\nfrom mylib import current\n"
    body = list(cst.parse_module(flow).body)
    rest = merge_metaflow_imports(body, [cst.parse_statement("from metaflow import current")])
    assert cst.Module(body=body).code == flow
    assert len(rest) == 1


# --- printing ------------------------------------------------------------------------------


def _printed_fixture(path: Path) -> bool:
    """A fixture's own file (not a regression case, not what `pip install` built from one)."""
    return not {"regressions", "build"} & set(path.parts) and not any(
        p.endswith(".egg-info") for p in path.parts
    )


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
