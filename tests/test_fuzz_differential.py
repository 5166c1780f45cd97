"""Differential fuzzing: random flows with random custom decorators, native vs compiled.

Property: a flow drawn by `strategies.fuzz_cases`, compiled by decoflow and run ALONE in
an empty folder on real Metaflow, gives the same run outcome, tasks, task outcomes,
printed lines, failures and artifacts as the original flow run natively (custom
decorators as runtime wrappers). Both runs use `--max-workers 1`: with one worker the
tasks run one after the other, so which tasks ran before a failure stopped the run does
not depend on timing.

Profiles (environment variable `DECOFLOW_FUZZ_PROFILE`):

* unset / `ci`: `CI_EXAMPLES_PER_SHAPE` examples for each graph shape, derandomized (the
  same examples on every run), no shrinking, no example database: a few minutes on 2 cores;
* `long` (`make fuzz`): `LONG_EXAMPLES_PER_SHAPE` examples per shape (>= 500 in all), random,
  shrinking on, failures kept in Hypothesis' example database.

`DECOFLOW_FUZZ_EXAMPLES=N` overrides the number of examples per shape in either profile.
Every compiled flow without a switch step also runs on the old Metaflow (2.15.21, no custom
decorator support) and is compared with the native run; `DECOFLOW_FUZZ_OLD=0` leaves that
third run out (a quicker local loop).

Every failing example is written to `build/fuzz-failures/<id>/` (flow, decorator module,
compiled flow and the report) so that it can be turned into a regression fixture:
`fixtures/regressions/<name>/` holds a flow (`*flow.py`), its decorator modules and
optionally `case.json` (`{"exact_errors": false, "with": ["mod.deco:k=1"]}`); `test_regression`
runs each of them differentially. Compiler bugs that are not fixed yet are listed in
`KNOWN_COMPILER_BUGS` (strict expected failures: remove the entry when the bug is fixed).

Divergences that SEMANTICS.md allows and that are therefore treated explicitly:

* a replacement returning None without calling `self.next` (Metaflow fails, decoflow may
  succeed): never generated;
* a skipped, replaced or failure-swallowing *switch* step: Metaflow 2.19 fakes
  `self.next(<all switch targets>)` and the runtime fails the whole run ("Switch step ...
  should transition to exactly one step at runtime"), while decoflow transitions as the
  step's own `self.next` says. When the native run failed that way, the compiled run only
  has to agree on every task the native run had (it may go on to run more).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from decoflow.transformer import CompileError, CompileOptions, compile_file
from harness import (
    REPO_ROOT,
    RunOutcome,
    assert_same,
    old_python,
    run_flow,
    source_line_map,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from strategies import FLOW_FILE, SHAPES, FuzzCase, fuzz_cases

pytestmark = pytest.mark.differential

REGRESSIONS = REPO_ROOT / "fixtures" / "regressions"
FAILURES_DIR = REPO_ROOT / "build" / "fuzz-failures"

CI_EXAMPLES_PER_SHAPE = 4  # 10 shape tests x 4 examples: ~6 of the suite's CPU minutes
LONG_EXAMPLES_PER_SHAPE = 100
#: Also run compiled flows on the old Metaflow (a third run per example; it found a compiled
#: flow importing USER_SKIP_STEP, which 2.15 lacks, that the two other runs cannot see).
ON_OLD_METAFLOW = os.environ.get("DECOFLOW_FUZZ_OLD", "1") != "0"
#: Both runs of a flow use one worker so that failures stop the run deterministically.
MAX_WORKERS = 1
#: The native runtime's message when a switch step was skipped, replaced or its failure
#: swallowed (Metaflow fakes `self.next` with every switch target).
SWITCH_FAKE_NEXT = re.compile(r"Switch step (\w+) should transition to exactly one step at runtime")

#: Regression fixtures (folder names under fixtures/regressions) that still fail because
#: of a compiler bug: name -> what differs. Remove an entry when the bug is fixed (the
#: expected failure is strict, so a fixed bug makes its test fail until it is removed).
KNOWN_COMPILER_BUGS: dict[str, str] = {
    "class_instance_artifact": (
        "an artifact holding an instance of a class from the decorator module is pickled as "
        "`__main__.Record` once the class is carried into the flow: unreadable through the "
        "Client API (natively `recdecos.Record`)"
    ),
}


# --------------------------------------------------------------------------------------
# Profiles


def _profile() -> str:
    profile = os.environ.get("DECOFLOW_FUZZ_PROFILE", "ci") or "ci"
    if profile not in ("ci", "long"):
        raise pytest.UsageError(f"DECOFLOW_FUZZ_PROFILE={profile!r}: expected 'ci' or 'long'")
    return profile


def _examples_per_shape(profile: str) -> int:
    override = os.environ.get("DECOFLOW_FUZZ_EXAMPLES")
    if override:
        return int(override)
    return LONG_EXAMPLES_PER_SHAPE if profile == "long" else CI_EXAMPLES_PER_SHAPE


PROFILE = _profile()
_SLOW_OK = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.function_scoped_fixture,
    HealthCheck.large_base_example,
]
if PROFILE == "long":
    FUZZ_SETTINGS = settings(
        max_examples=_examples_per_shape(PROFILE),
        deadline=None,
        suppress_health_check=_SLOW_OK,
        print_blob=True,
    )
else:
    FUZZ_SETTINGS = settings(
        max_examples=_examples_per_shape(PROFILE),
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=_SLOW_OK,
        print_blob=True,
    )


# --------------------------------------------------------------------------------------
# Running one case


def compile_alone(
    flow_file: Path, dest: Path, with_specs: tuple[str, ...] = ()
) -> tuple[Path, str]:
    """Compile `flow_file` (with `--with` specs); write the result alone into the new empty
    folder `dest`.

    Fails the test when the compiler rejects or crashes on the (valid) input, or when its
    output is not valid Python.
    """
    try:
        source = compile_file(flow_file, CompileOptions(with_specs=with_specs))
    except CompileError as err:
        raise AssertionError(f"decoflow rejected a valid flow:\n{err}") from None
    try:
        compile(source, str(flow_file), "exec", dont_inherit=True)
    except SyntaxError as err:
        raise AssertionError(
            f"decoflow produced invalid Python: {err}\n--- compiled ---\n{source}"
        ) from None
    dest.mkdir(parents=True)
    out = dest / flow_file.name
    out.write_text(source, encoding="utf-8")
    assert sorted(p.name for p in dest.iterdir()) == [flow_file.name]
    return out, source


def native_switch_divergence(native: RunOutcome) -> str | None:
    """The switch step whose faked `self.next` failed the native run, if that happened."""
    if native.succeeded:
        return None
    match = SWITCH_FAKE_NEXT.search(native.console)
    return match.group(1) if match else None


def compare_runs(
    native: RunOutcome,
    compiled: RunOutcome,
    *,
    exact_errors: bool,
    compiled_lines: Mapping[int, int],
) -> None:
    """assert_same, with the one switch divergence explained in the module docstring.

    The source lines Metaflow names in the compiled run's messages are read through
    `compiled_lines` (`harness.source_line_map`: compiled line -> original line).

    When Metaflow failed the native run after a skipped, replaced or failure-swallowing
    switch step, the compiled run is compared on the native run's tasks only, and the
    switch step's task on its printed lines and artifacts only: compiled, it transitions
    as its own `self.next` says, which may succeed or fail (e.g. when the skipped body
    would have set the condition), and a failed one may be retried where the native one,
    which succeeded, was not: then its lines are not compared.
    """
    switch_step = native_switch_divergence(native)
    if switch_step is not None:
        retried = "Task is starting (retry)" in compiled.console
        tasks = {}
        for key, task in compiled.tasks.items():
            if key not in native.tasks:
                continue
            if key[0] == switch_step:
                mine = native.tasks[key]
                if not task.successful and retried:
                    # Metaflow retried the failed compiled task (`--with retry`): the lines
                    # read are its last attempt's, which differ (`current.retry_count`).
                    task = dataclasses.replace(task, stdout=mine.stdout)
                task = dataclasses.replace(task, successful=mine.successful, error=mine.error)
            tasks[key] = task
        compiled = dataclasses.replace(compiled, returncode=native.returncode, tasks=tasks)
    assert_same(native, compiled, compare_errors=exact_errors, compiled_lines=compiled_lines)


def run_differential(
    flow_file: Path,
    workdir: Path,
    *,
    exact_errors: bool = True,
    with_specs: tuple[str, ...] = (),
) -> tuple[RunOutcome, RunOutcome]:
    """Run `flow_file` natively and compiled (alone, in `workdir/compiled`); compare.

    `with_specs` are given to the native run as `run --with SPEC` and to the compiler.

    Unless `DECOFLOW_FUZZ_OLD=0`, the compiled flow is also run on the old Metaflow (2.15.21,
    see `harness.old_python`) unless it has a switch step, and compared the same way.
    """
    compiled_file, source = compile_alone(flow_file, workdir / "compiled", with_specs)
    with_args = tuple(arg for spec in with_specs for arg in ("--with", spec))
    native = run_flow(
        flow_file,
        python=sys.executable,
        workdir=workdir / "runs",
        extra_args=with_args,
        max_workers=MAX_WORKERS,
    )
    assert native.run_found and native.tasks, (
        "the native run recorded nothing: the generated flow itself is broken "
        f"(a bug in tests/strategies.py):\n{native.console[-4000:]}"
    )
    compiled = run_flow(
        compiled_file, python=sys.executable, workdir=workdir / "runs", max_workers=MAX_WORKERS
    )
    originals = sorted(flow_file.parent.rglob("*.py"))
    lines = source_line_map(compiled_file, originals)
    compare_runs(native, compiled, exact_errors=exact_errors, compiled_lines=lines)
    if ON_OLD_METAFLOW and 'condition="' not in source:
        # Metaflow 2.15.21 has no switch steps: only flows without one are run there.
        old = run_flow(
            compiled_file,
            python=old_python(),
            workdir=workdir / "runs-old",
            max_workers=MAX_WORKERS,
        )
        try:
            compare_runs(native, old, exact_errors=exact_errors, compiled_lines=lines)
        except AssertionError as err:
            raise AssertionError(f"compiled flow on the OLD Metaflow:\n{err}") from None
    return native, compiled


def _keep_failure(case: FuzzCase, workdir: Path, report: str) -> Path:
    """Copy a failing example to build/fuzz-failures/<id>/ (flow, modules, compiled, report)."""
    digest = hashlib.sha1(case.describe().encode("utf-8")).hexdigest()[:10]
    dest = FAILURES_DIR / f"{case.shape}-{digest}"
    if dest.exists():
        shutil.rmtree(dest)
    case.write(dest / "case")
    compiled = workdir / "compiled" / FLOW_FILE
    if compiled.exists():
        shutil.copy(compiled, dest / "compiled_fuzzflow.py")
    (dest / "case" / "case.json").write_text(
        json.dumps(
            {
                "exact_errors": case.exact_errors,
                "with": list(case.with_specs),
                "features": list(case.features),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    (dest / "report.txt").write_text(report, encoding="utf-8")
    return dest


def check_case(case: FuzzCase, parent: Path) -> None:
    """The property, for one generated case."""
    workdir = Path(tempfile.mkdtemp(prefix="case-", dir=parent))
    flow = case.write(workdir / "native")
    try:
        run_differential(flow, workdir, exact_errors=case.exact_errors, with_specs=case.with_specs)
    except AssertionError as err:
        kept = _keep_failure(case, workdir, str(err))
        raise AssertionError(
            f"{err}\n\nfeatures: {', '.join(case.features)}\n"
            f"example kept in {kept} (copy its case/ folder to fixtures/regressions/<name>/)"
        ) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("shape", SHAPES)
@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_differential(shape: str, data: st.DataObject, tmp_path: Path) -> None:
    """Compiled == native for random flows of each graph shape."""
    case = data.draw(fuzz_cases(shape), label="case")
    check_case(case, tmp_path)


@pytest.mark.parametrize("shape", SHAPES)
@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_differential_classes(shape: str, data: st.DataObject, tmp_path: Path) -> None:
    """Compiled == native for random flows whose decorators are also class-based
    (UserStepDecorator subclasses), stacked with generator ones."""
    case = data.draw(fuzz_cases(shape, classes=True), label="case")
    check_case(case, tmp_path)


def _regression_folders() -> list[Path]:
    if not REGRESSIONS.is_dir():
        return []
    return sorted(p for p in REGRESSIONS.iterdir() if p.is_dir() and not p.name.startswith("."))


def _regression_params() -> list[Any]:
    params = []
    for folder in _regression_folders():
        marks = []
        if folder.name in KNOWN_COMPILER_BUGS:
            marks.append(pytest.mark.xfail(reason=KNOWN_COMPILER_BUGS[folder.name], strict=True))
        params.append(pytest.param(folder, id=folder.name, marks=marks))
    return params


def _flow_of(folder: Path) -> Path:
    flows = sorted(folder.glob("*flow.py"))
    assert len(flows) == 1, f"{folder}: expected exactly one *flow.py, found {flows}"
    return flows[0]


def test_known_bugs_have_fixtures() -> None:
    """Every KNOWN_COMPILER_BUGS entry names an existing regression fixture."""
    names = {p.name for p in _regression_folders()}
    missing = sorted(set(KNOWN_COMPILER_BUGS) - names)
    assert not missing, f"KNOWN_COMPILER_BUGS names missing fixtures: {missing}"


@pytest.mark.parametrize("folder", _regression_params())
def test_regression(folder: Path, tmp_path: Path) -> None:
    """A kept fuzzing example (fixtures/regressions/<name>/): compiled == native."""
    meta_file = folder / "case.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
    work = tmp_path / "native"
    shutil.copytree(folder, work, ignore=shutil.ignore_patterns("__pycache__", ".metaflow"))
    run_differential(
        _flow_of(work),
        tmp_path,
        exact_errors=meta.get("exact_errors", True),
        with_specs=tuple(meta.get("with", ())),
    )
