"""Class-based decorators (UserStepDecorator subclasses) beyond the fixture flows of
tests/test_differential.py (`fixtures/classdeco`): `--with mod.Cls:k=v` run natively and
compiled (alone, on Metaflow 2.19 and 2.15.21), the compiled form, and `decoflow explain`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from decoflow.explain import explain_file
from decoflow.transformer import CompileOptions, compile_file
from harness import REPO_ROOT, assert_same, old_python, run_flow

FIXTURES = REPO_ROOT / "fixtures" / "classdeco"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "native"
    shutil.copytree(FIXTURES, target, ignore=shutil.ignore_patterns("__pycache__", ".metaflow"))
    return target


@pytest.mark.differential
def test_with_a_class_on_every_step(tmp_path: Path) -> None:
    """`decoflow compile --with classdecos.Trace:label=w` behaves as `run --with` did: the
    class wraps every step (outermost), its instance made per step as the flow loads."""
    spec = "classdecos.Trace:label=w"
    flow = _copy(tmp_path) / "skipflow.py"
    native = run_flow(
        flow, python=sys.executable, workdir=tmp_path / "runs", extra_args=("--with", spec)
    )
    assert native.succeeded, native.console[-3000:]
    out = tmp_path / "compiled"
    out.mkdir()
    compiled = out / "skipflow.py"
    compiled.write_text(compile_file(flow, CompileOptions(with_specs=(spec,))), encoding="utf-8")
    assert 'start_trace = Trace(label="w")' in compiled.read_text(encoding="utf-8")
    for python in (sys.executable, old_python()):
        run = run_flow(
            compiled, python=python, workdir=tmp_path / f"runs-{Path(python).parent.parent.name}"
        )
        assert_same(native, run)


def test_compiled_form(tmp_path: Path) -> None:
    """Readable calls in Metaflow's order; the instance at module level, one per use (the
    outermost use of a class twice on a step gets the plain name); no Metaflow 2.16+ name."""
    source = compile_file(_copy(tmp_path) / "basicflow.py")
    assert "class Trace(DecoflowStepDecorator):" in source
    assert 'decorator_name = "classdecos.Trace"' in source
    assert "class Local(DecoflowStepDecorator):" in source
    assert 'decorator_name = "__main__.Local"' in source
    assert 'twice_trace = Trace(label="outer")' in source
    assert 'twice_trace_2 = Trace(label="inner")' in source
    steps = source.index("class BasicFlow")
    instances = source.index("# decoflow: one instance per use")
    assert steps < instances < source.index('if __name__ == "__main__":')
    for name in (
        "user_step_decorator",
        "UserStepDecorator)",
        "import classdecos",
        "from classdecos import",
    ):
        assert name not in source, name
    body = source[source.index("    def start(self):") : source.index("    def each(self):")]
    assert 'start_trace.pre_step("start", self, None)' in body
    assert 'trace_error = decoflow_post_step(start_trace, "start", self, trace_error, True)' in body


def test_instances_are_made_in_metaflow_order(tmp_path: Path) -> None:
    """Metaflow initialises class decorators by step name (`dir(flow)`), each step's
    innermost first: an `init` that prints shows up in every task's output in that order."""
    source = compile_file(_copy(tmp_path) / "basicflow.py")
    block = source[source.index("# decoflow: one instance per use") :].splitlines()[1:10]
    names = [line.split(" = ")[0] for line in block]
    assert names == [
        "each_trace",
        "end_local",
        "gen_inside_local",
        "gen_inside_trace",
        "gen_outside_trace",
        "join_trace",
        "start_trace",
        "twice_trace_2",
        "twice_trace",
    ]


def test_explain_names_each_class_hooks(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    text = explain_file(folder / "replaceflow.py", step="first")
    assert "class-based decorator; its own hooks: init, pre_step, post_step" in text
    assert "pre_step may return a replacement for the step" in text
    text = explain_file(folder / "eraseflow.py")
    assert "default post_step: returns (None, None), which erases a skip below it" in text


#: Flows where mutators and configs meet class-based decorators (issues 12 and 13).
MUTATING = FIXTURES / "mutating"


@pytest.mark.differential
@pytest.mark.parametrize(
    "flow",
    [
        # a class that is also a StepMutator on steps (its mutate expanded, its hooks
        # inlined); config_expr and a Config's value in a class's arguments; a FlowMutator
        # adding a class to every step; a StepMutator adding one with Config-derived
        # arguments
        "mutatingflow.py",
        # classes defined in the flow file of an expanded flow, one also a StepMutator
        # (pre_mutate and mutate); a FlowMutator's pre_mutate adding a class that is also a
        # StepMutator to every step
        "inflowflow.py",
    ],
)
def test_classes_and_mutators_native_vs_compiled(flow: str, tmp_path: Path) -> None:
    """Run natively on 2.19, compiled (mutators evaluated by Metaflow, classes inlined) and
    run alone on 2.19 and on 2.15.21: the same tasks, output and artifacts."""
    code = _native_vs_compiled(MUTATING, flow, tmp_path)
    imports = [line for line in code.splitlines() if line.startswith("from ")]
    names = {n.strip() for line in imports for n in line.split(" import ")[1].split(",")}
    assert all(line.startswith("from metaflow import ") for line in imports), imports
    assert not names & {"FlowMutator", "StepMutator", "UserStepDecorator", "config_expr"}
    assert "import mutdecos" not in code


def _native_vs_compiled(folder: Path, flow: str, tmp_path: Path, fails: bool = False) -> str:
    """`flow` of `folder` run natively on 2.19, then compiled and run alone on 2.19 and on
    2.15.21; every run compared with the native one. Returns the compiled code."""
    native_dir = tmp_path / "native"
    shutil.copytree(folder, native_dir, ignore=shutil.ignore_patterns("__pycache__"))
    native = run_flow(native_dir / flow, python=sys.executable, workdir=tmp_path / "runs")
    assert native.succeeded is not fails, native.console[-3000:]
    code = compile_file(native_dir / flow, CompileOptions(python=sys.executable))
    alone = tmp_path / "compiled"
    alone.mkdir()
    (alone / flow).write_text(code, encoding="utf-8")
    for python in (sys.executable, old_python()):
        workdir = tmp_path / f"runs-{Path(python).parent.parent.name}"
        assert_same(native, run_flow(alone / flow, python=python, workdir=workdir))
    return code


#: Edges of the post_step / skip_step protocol (Metaflow's `task.py`).
PROTOCOL = FIXTURES / "protocol"


@pytest.mark.differential
@pytest.mark.parametrize(
    ("flow", "fails"),
    [
        # a 2-tuple whose exception is falsy but not None: not raised, handed to the
        # post_step above as its exception (with and without a failure in the step)
        ("falsyflow.py", False),
        # skip_step set to a tuple: Metaflow's message fails to format (TypeError)
        ("badskipflow.py", True),
    ],
)
def test_protocol_edges_native_vs_compiled(flow: str, fails: bool, tmp_path: Path) -> None:
    _native_vs_compiled(PROTOCOL, flow, tmp_path, fails)


@pytest.mark.differential
def test_with_a_class_that_is_also_a_step_mutator(tmp_path: Path) -> None:
    """`--with mutdecos.Timed:label=w` on a flow with no mutator of its own: attached before
    mutate (natively and in the expansion), so its mutate adds @retry and @stamp to every
    step, and it wraps every step. Metaflow runs mutate before init for such a use: the
    expansion, running Metaflow's own code, sees the same (`@retry(times=3)`)."""
    spec = "mutdecos.Timed:label=w"
    native_dir = tmp_path / "native"
    shutil.copytree(MUTATING, native_dir, ignore=shutil.ignore_patterns("__pycache__"))
    flow = native_dir / "withflow.py"
    native = run_flow(
        flow, python=sys.executable, workdir=tmp_path / "runs", extra_args=("--with", spec)
    )
    assert native.succeeded, native.console[-3000:]
    code = compile_file(flow, CompileOptions(with_specs=(spec,), python=sys.executable))
    assert "start_timed = Timed(label=\"w\")" in code and "@retry(times=3)" in code
    assert "def mutate" not in code and "StepMutator)" not in code
    alone = tmp_path / "compiled"
    alone.mkdir()
    (alone / flow.name).write_text(code, encoding="utf-8")
    for python in (sys.executable, old_python()):
        workdir = tmp_path / f"runs-{Path(python).parent.parent.name}"
        assert_same(native, run_flow(alone / flow.name, python=python, workdir=workdir))


def test_explain_shows_a_class_config_argument_resolved(tmp_path: Path) -> None:
    """`decoflow explain` on a class whose arguments read a Config (config_expr, or the
    Config's attribute): the value as written, then as resolved."""
    text = explain_file(MUTATING / "mutatingflow.py")
    assert (
        "configs resolved: @Tagged(tag=config_expr('settings.tag')) -> @Tagged(tag='blue')"
        in text
    )
    assert "configs resolved: @Tagged(tag=settings.tag) -> @Tagged(tag='blue')" in text
    assert "DelayEvaluator" not in text and "(--with)" not in text
