"""Differential tests: every fixture flow, run natively and compiled, must behave the same.

For each flow of `fixtures/<case>/`:

1. the fixture folder is copied to a temporary folder and the flow is run natively on the
   current interpreter (Metaflow 2.19, custom decorators as runtime wrappers);
2. the flow is compiled with `decoflow.transformer.compile_file`, the result is written
   ALONE into an empty folder (no decorator modules next to it) and run there with the
   current interpreter;
3. the same compiled file is run alone with the old Metaflow (2.15.21, no custom decorator
   support at all);

and the runs are compared with `harness.assert_same`. Per-flow line normalizers and
volatile artifacts (timings) are in `CASES` below. `test_native_fixture` checks each
fixture's native behaviour on its own (a broken fixture would make a comparison vacuous).
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from decoflow.transformer import CompileError, compile_file
from harness import (
    REPO_ROOT,
    RunOutcome,
    assert_same,
    metaflow_version,
    old_python,
    run_flow,
    task_label,
)

FIXTURES = REPO_ROOT / "fixtures"
#: The modules of fixtures/inherited that the compiled flows must not import.
BASE_MODULES = ("basesteps", "midsteps", "decos")

pytestmark = pytest.mark.differential


# --------------------------------------------------------------------------------------
# Normalizers


def _pathspec_and_ms(line: str) -> str:
    """`⏰ Task [WaiterFlow/17/wait/3] completed in 10.3ms` -> run/task ids and time hidden."""
    line = re.sub(r"\b(\w+)/\d+/(\w+)/\d+\b", r"\1/<run>/\2/<task>", line)
    return re.sub(r"\d+(\.\d+)?ms\b", "<ms>", line)


def _trace_totals(line: str) -> str:
    """`Trace: database access - Total: 102ms` -> the duration hidden."""
    return re.sub(r"Total: \d+ms", "Total: <ms>", line)


_STATS_ROW = re.compile(r"^(\w+)\s+\d+\s+\d+\s+\d+\s*$")


def _stats_table(line: str) -> str:
    """A row of stats_profile's table (`wait   10   20   40`) -> the numbers hidden."""
    match = _STATS_ROW.match(line)
    return f"{match.group(1)} <p10> <median> <p90>" if match else line.rstrip()


def _catch_traceback(line: str) -> str | None:
    """Drop the traceback frames @catch prints (`>    File ...`); keep its last line.

    The frames differ by construction: natively they pass through Metaflow's wrapper
    machinery and the decorator module's file, compiled they do not.
    """
    if line.startswith(">"):
        body = line[1:].lstrip(" ")
        indent = len(line) - 1 - len(body)
        if (
            indent > 2
            or not body
            or body.startswith(("Traceback", "During handling", "The above exception"))
        ):
            return None
    return line


# --------------------------------------------------------------------------------------
# The cases


@dataclass(frozen=True)
class Case:
    """One fixture flow and how to compare its runs.

    failing_steps: the steps whose tasks fail natively (Client `successful` is False);
        the native run must fail iff `run_fails`.
    old_metaflow: also run the compiled flow on Metaflow 2.15.21 (False only where the
        original flow uses graph syntax that 2.15.21 rejects; see `old_reason`).
    source_contains / source_lacks: strings the compiled source must / must not contain.
    """

    folder: str
    flow: str
    normalize: Callable[[str], str | None] | None = None
    volatile: tuple[str, ...] = ()
    failing_steps: frozenset[str] = frozenset()
    run_fails: bool = False
    old_metaflow: bool = True
    old_reason: str = ""
    source_contains: tuple[str, ...] = ()
    source_lacks: tuple[str, ...] = ()
    #: Modules of the fixture the flow imports itself (not decorator modules): the compiled
    #: flow imports them too, so its runs get the fixture folder on PYTHONPATH.
    own_imports: bool = False

    @property
    def id(self) -> str:
        return f"{self.folder}/{self.flow}"


CASES: list[Case] = [
    Case("seed_waiter", "waiterflow.py", normalize=_pathspec_and_ms),
    Case("seed_tracing", "tracingflow.py", normalize=_trace_totals, volatile=("timings",)),
    Case("seed_stats", "waiterflow.py", normalize=_stats_table, volatile=("timings",)),
    Case("import_forms", "importformsflow.py"),
    Case(
        "import_forms",
        "calledformflow.py",
        source_contains=("def shouting(", "from metaflow import FlowSpec, step\n"),
        source_lacks=("loud = ", "import applied", "user_step_decorator(", "counted_call ="),
    ),
    Case("params_attrs", "paramsflow.py"),
    Case("failures", "swallowflow.py"),
    Case("failures", "reraiseflow.py", failing_steps=frozenset({"lookup"}), run_fails=True),
    Case("failures", "raisefromflow.py", failing_steps=frozenset({"divide"}), run_fails=True),
    Case("failures", "tracebackflow.py"),
    Case("failures", "afterraiseflow.py", failing_steps=frozenset({"end"}), run_fails=True),
    Case(
        "failures",
        "yieldcountflow.py",
        normalize=_catch_traceback,
        volatile=("caught_silent", "caught_twice"),  # stacktraces differ; `end` prints the rest
        failing_steps=frozenset({"silent", "twice"}),  # @catch: the tasks count as failed
    ),
    Case("failures", "yieldtwiceflow.py", failing_steps=frozenset({"twice"}), run_fails=True),
    Case(
        "stacking",
        "stackflow.py",
        normalize=_catch_traceback,
        volatile=("caught",),  # its stacktrace differs by construction; `end` prints the rest
        failing_steps=frozenset({"caught_step"}),  # @catch: the task counts as failed
    ),
    Case("stacking", "routingflow.py"),
    Case("stacking", "twiceflow.py"),
    Case("match_yields", "matchflow.py"),
    Case("match_yields", "scopesflow.py", source_lacks=("weird_yielded", "StopIteration")),
    Case(
        "shared_state",
        "sharedflow.py",
        own_imports=True,
        source_contains=("import registry\n",),
        source_lacks=("CALLS = []", "user_step_decorator", "from notingdecos"),
    ),
    Case("stacking", "beforeraiseflow.py", failing_steps=frozenset({"guarded"}), run_fails=True),
    Case("artifacts", "artifactsflow.py"),
    Case("hygiene", "hygieneflow.py"),
    Case(
        "fidelity",
        "stepnameflow.py",
        source_contains=("timed_start = time.time()", "LIMIT = 5\n"),
    ),
    Case(
        "fidelity",
        "helpersflow.py",
        source_contains=("def fmt(value):", "COUNT = helperdecos_COUNT\n", "helperdecos = types."),
        source_lacks=("\nimport helperdecos", "\nfrom helperdecos", "user_step_decorator"),
    ),
    Case(
        "fidelity",
        "sourceflow.py",
        source_contains=("START_SOURCE = (\n",),
        source_lacks=("import inspect", "getsource(", "source_of("),
    ),
    Case(
        "fidelity",
        "replacereturnflow.py",
        source_lacks=("from replacedecos", "user_step_decorator"),
    ),
    Case(
        "fidelity",
        "replacetupleflow.py",
        failing_steps=frozenset({"start"}),
        run_fails=True,
    ),
    Case(
        "helpers",
        "helpersflow.py",
        source_lacks=("unused_helper_do_not_carry",),
    ),
    Case("helpers", "crossmoduleflow.py"),
    Case("graphs", "linearflow.py"),
    Case("graphs", "branchflow.py"),
    Case("graphs", "foreachflow.py"),
    Case(
        "graphs",
        "switchflow.py",
        old_metaflow=False,
        old_reason="Metaflow 2.15.21 rejects switch transitions even in a plain flow",
    ),
    Case("early_return", "earlyreturnflow.py"),
    Case("early_return", "earlyreturn2flow.py"),
    Case(
        "preserved",
        "preservedflow.py",
        normalize=_catch_traceback,
        volatile=("risky_error",),
        failing_steps=frozenset({"risky"}),  # @catch: the task counts as failed
        source_contains=(
            "KEEP-MODULE-DOCSTRING",
            "KEEP-CLASS-DOCSTRING",
            "KEEP-STEP-DOCSTRING: the start step.",
            "KEEP-STEP-DOCSTRING: the end step.",
            "# KEEP-COMMENT: a comment at the top of the module.",
            "# KEEP-COMMENT: trailing comment on a global",
            "# KEEP-COMMENT: inside a decorated step body.",
            "# KEEP-COMMENT: deliberate",
            "# KEEP-COMMENT: in the main block.",
            'Parameter("alpha", help="A number to scale by", default=3)',
            "@retry(times=1, minutes_between_retries=0)",
            "@resources(cpu=1, memory=512)",
            '@catch(var="risky_error")',
            "@card",
            'if __name__ == "__main__":',
        ),
    ),
    # Beyond the basic list: yields that skip or replace the step.
    Case("yield_forms", "skipflow.py"),
    Case("yield_forms", "replaceflow.py"),
    # Class-based decorators (UserStepDecorator subclasses), alone and stacked with generators.
    Case(
        "classdeco",
        "basicflow.py",
        source_lacks=("UserStepDecorator, step", "(UserStepDecorator)", "import classdecos"),
    ),
    Case("classdeco", "skipflow.py"),
    Case("classdeco", "replaceflow.py"),
    Case("classdeco", "postformsflow.py"),
    Case("classdeco", "pastflow.py", failing_steps=frozenset({"failing"}), run_fails=True),
    Case("classdeco", "badvalueflow.py", failing_steps=frozenset({"failing"}), run_fails=True),
    Case("classdeco", "prefailflow.py", failing_steps=frozenset({"failing"}), run_fails=True),
    Case("classdeco", "rethrowflow.py", failing_steps=frozenset({"failing"}), run_fails=True),
    # The default post_step's (None, None) erases a skip: the step has no transition and
    # Metaflow fails the run after the task (which succeeded); so does the compiled flow.
    Case("classdeco", "eraseflow.py", run_fails=True),
    Case("classdeco", "erasegenflow.py", run_fails=True),
    # Base classes in other modules with custom decorators on their steps (issue 12, item 3):
    # flattened statically into the flow class; the compiled flow imports none of them.
    *(
        Case(
            "inherited",
            flow,
            source_lacks=(
                *(f"from {module} import" for module in BASE_MODULES),
                *(f"import {module}" for module in BASE_MODULES),
                "user_step_decorator",
            ),
        )
        for flow in ("overrideflow.py", "chainflow.py")
    ),
]

CASE_PARAMS = [pytest.param(case, id=case.id) for case in CASES]


# --------------------------------------------------------------------------------------
# Helpers


def _copy_fixture(case: Case, dest: Path) -> Path:
    """Copy the whole fixture folder (flow and decorator modules); return the flow's path."""
    target = dest / case.folder
    shutil.copytree(
        FIXTURES / case.folder, target, ignore=shutil.ignore_patterns("__pycache__", ".metaflow")
    )
    return target / case.flow


def _compile_alone(flow_file: Path, dest: Path) -> Path:
    """Compile `flow_file` and write the result alone into the empty folder `dest`."""
    try:
        source = compile_file(flow_file)
    except CompileError as err:
        pytest.fail(f"compile_file({flow_file.name}) raised CompileError:\n{err}")
    dest.mkdir(parents=True)
    out = dest / flow_file.name
    out.write_text(source, encoding="utf-8")
    assert sorted(p.name for p in dest.iterdir()) == [flow_file.name]
    return out


def _check_native_expectations(case: Case, native: RunOutcome) -> None:
    """Fail when the fixture itself does not behave as documented (not a compiler bug)."""
    where = f"fixture {case.id} (native run)"
    assert native.run_found and native.tasks, (
        f"{where}: no run was recorded; the fixture is broken:\n{native.console[-4000:]}"
    )
    failed = {key[0] for key, task in native.tasks.items() if not task.successful}
    assert failed == set(case.failing_steps), (
        f"{where}: failing steps {sorted(failed)}, expected {sorted(case.failing_steps)}:\n"
        f"{native.console[-4000:]}"
    )
    assert native.succeeded != case.run_fails, (
        f"{where}: run {'succeeded' if native.succeeded else 'failed'}, expected "
        f"{'failure' if case.run_fails else 'success'}:\n{native.console[-4000:]}"
    )
    assert "end" in {key[0] for key in native.tasks} or case.run_fails, (
        f"{where}: the end step did not run: "
        + ", ".join(task_label(k) for k in sorted(native.tasks))
    )


def _require_custom_decorator_metaflow() -> None:
    version = metaflow_version(sys.executable)
    major, minor = (int(part) for part in version.split(".")[:2])
    assert (major, minor) >= (2, 16), (
        f"native runs need Metaflow >= 2.16 (custom decorators) in {sys.executable}, "
        f"found {version}"
    )


# --------------------------------------------------------------------------------------
# Tests


def test_every_fixture_flow_has_a_case() -> None:
    """No flow of a case folder is forgotten, and no case points at a missing file.

    Only the folders named in CASES are checked: other fixture folders belong to other
    tests (e.g. `yield_matrix` is a template filled in by tests/test_yields.py).
    """
    folders = {case.folder for case in CASES}
    on_disk = {
        f"{folder}/{path.name}"
        for folder in folders
        for path in (FIXTURES / folder).glob("*flow.py")
    }
    listed = {case.id for case in CASES}
    assert on_disk == listed, (
        f"not in CASES: {sorted(on_disk - listed)}; missing on disk: {sorted(listed - on_disk)}"
    )


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_native_fixture(case: Case, tmp_path: Path) -> None:
    """The fixture runs natively on Metaflow 2.19 and fails exactly where it should."""
    _require_custom_decorator_metaflow()
    flow = _copy_fixture(case, tmp_path / "native")
    native = run_flow(flow, python=sys.executable, workdir=tmp_path / "runs")
    _check_native_expectations(case, native)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_differential(case: Case, tmp_path: Path) -> None:
    """Native run == compiled run (Metaflow 2.19) == compiled run (Metaflow 2.15.21)."""
    _require_custom_decorator_metaflow()
    old = old_python() if case.old_metaflow else None  # fails (never skips) if missing

    flow = _copy_fixture(case, tmp_path / "native")
    native = run_flow(flow, python=sys.executable, workdir=tmp_path / "runs")
    _check_native_expectations(case, native)

    compiled_file = _compile_alone(flow, tmp_path / "compiled")
    own = (flow.parent,) if case.own_imports else ()
    compiled = run_flow(
        compiled_file, python=sys.executable, workdir=tmp_path / "runs", pythonpath=own
    )
    assert_same(native, compiled, normalize_line=case.normalize, volatile_artifacts=case.volatile)

    if old is not None:
        old_run = run_flow(compiled_file, python=old, workdir=tmp_path / "runs-old", pythonpath=own)
        try:
            assert_same(
                native, old_run, normalize_line=case.normalize, volatile_artifacts=case.volatile
            )
        except AssertionError as err:
            raise AssertionError(f"compiled flow on the OLD Metaflow ({old}):\n{err}") from None


@pytest.mark.parametrize(
    "case", [p for p in CASE_PARAMS if p.values[0].source_contains or p.values[0].source_lacks]
)
def test_compiled_source(case: Case, tmp_path: Path) -> None:
    """What must survive in (or stay out of) the compiled source."""
    flow = _copy_fixture(case, tmp_path / "src")
    source = compile_file(flow)
    missing = [s for s in case.source_contains if s not in source]
    present = [s for s in case.source_lacks if s in source]
    assert not missing and not present, (
        f"compiled {case.id}: missing {missing}, unexpectedly present {present}\n"
        f"--- compiled source ---\n{source}"
    )
