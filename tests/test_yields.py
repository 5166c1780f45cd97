"""Every yield kind on every kind of step, stacked both ways with a core decorator.

`fixtures/yield_matrix/matrix_template.py` is a template: a linear step, a foreach step and its
tasks, a foreach join, a branch and its join, and `end`, each decorated with
`@OUTER @INNER`. Each case fills them with `@core` (before/after, swallows ValueError in a
`try/except/finally`) and one decorator per yield kind (`fixtures/yield_matrix/kinds.py`):
run, skip (`USER_SKIP_STEP` and `{}`), skip with `self.next` arguments, replace, and a yield
decided at run time. Native Metaflow 2.19 vs the compiled flow alone, on 2.19 and 2.15.21.
(Switch steps are left out: Metaflow 2.15.21 has none, and natively a skipped or replaced
switch step fails the run; `fixtures/graphs` covers decorated switch steps on 2.19.)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from decoflow.transformer import compile_file
from harness import assert_same, old_python, run_flow

MATRIX = Path(__file__).resolve().parent.parent / "fixtures" / "yield_matrix"
PLAN = (
    '{"prep": "run", "fan": "skip", "gather": "replace", "a": "replace", "b": "skip", '
    '"merge": "run", "end": "skip"}'
)
KINDS = {
    "runs": "@runs",
    "skips": "@skips",
    "narrows": "@narrows",
    "replaces": "@replaces",
    "decides": f"@decides(plan={PLAN})",
}


def _write_case(folder: Path, outer: str, inner: str) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(MATRIX / "kinds.py", folder / "kinds.py")
    text = (MATRIX / "matrix_template.py").read_text()
    (folder / "matrixflow.py").write_text(text.replace("@OUTER", outer).replace("@INNER", inner))
    return folder / "matrixflow.py"


@pytest.mark.parametrize("order", ["core-outside", "core-inside"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_yield_kind_matches_native(tmp_path: Path, kind: str, order: str) -> None:
    deco = KINDS[kind]
    outer, inner = ("@core", deco) if order == "core-outside" else (deco, "@core")
    flow = _write_case(tmp_path / "native", outer, inner)
    native = run_flow(flow, python=sys.executable, workdir=tmp_path / "run-native")
    assert native.run_found and len(native.tasks) >= 10, native.describe()

    alone = tmp_path / "alone"
    alone.mkdir()
    compiled_file = alone / "matrixflow.py"
    compiled_file.write_text(compile_file(flow))
    for python, label in ((sys.executable, "2.19"), (old_python(), "2.15.21")):
        compiled = run_flow(compiled_file, python=python, workdir=tmp_path / f"run-{label}")
        assert_same(native, compiled)
