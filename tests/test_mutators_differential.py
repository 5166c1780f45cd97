"""Differential tests for flows built by mutators and configs (issue 12, item 9).

Each pattern: the flow is run natively (its folder copied, Metaflow 2.19 evaluating its
mutators and configs, with the same --config-value / --with), then compiled with decoflow and
run ALONE in an empty folder (plus any config file the compiled flow still declares) on
Metaflow 2.19.39 and on 2.15.21, which has no mutators at all. Runs are compared task by task.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from decoflow.transformer import CompileError, CompileOptions, compile_file
from expansion_support import MUTATOR_FLOWS
from harness import assert_same, old_python, run_flow

pytestmark = pytest.mark.differential


@dataclass(frozen=True)
class Pattern:
    id: str
    folder: str
    flow: str
    config_values: tuple[tuple[str, str], ...] = ()
    with_specs: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # files the compiled flow needs beside it

    def top_args(self) -> list[str]:
        pairs = self.config_values
        return [arg for name, value in pairs for arg in ("--config-value", name, value)]

    def run_args(self) -> list[str]:
        return [arg for spec in self.with_specs for arg in ("--with", spec)]


PATTERNS = [
    # a flow mutator adding built-in and custom decorators to every step; a step mutator
    # adding a custom decorator with config-derived attributes; pre_mutate adding a parameter
    Pattern("flow-and-step-mutators", "robust", "robustflow.py"),
    # a mutator reading a Config and overriding a built-in's attributes
    Pattern("config-overrides-builtin", "linter", "hungryflow.py"),
    # IGNORE, OVERRIDE and ERROR (without a conflict) duplicates
    Pattern("duplicates", "dupes", "dupeflow.py"),
    # a mutator added by another mutator, and one added by its name
    Pattern("mutator-added-by-mutator", "chain", "chainflow.py"),
    # mutators and configs on a base class in another module
    Pattern("base-class", "base", "teamflow.py"),
    # config_expr in a custom decorator's attributes
    Pattern("config-expr-in-custom", "cfgdeco", "cfgdecoflow.py"),
    # --config-value
    Pattern(
        "config-value",
        "robust",
        "robustflow.py",
        config_values=(("cfg", json.dumps({"project": "other", "label": "second"})),),
    ),
    # --with together with a mutator (attached before mutate: IGNORE keeps it)
    Pattern("with-and-mutator", "robust", "robustflow.py", with_specs=("retry:times=4",)),
    # a flow mutator on a flow whose base class (another module) has custom decorators on
    # its steps: the base flattened, the mutator's @retry on the inherited steps too
    Pattern("mutator-over-custom-base", "mixedbase", "mixedflow.py"),
    # pre_mutate removing a declared parameter and overwriting another
    Pattern("remove-and-overwrite-parameter", "params", "paramflow.py"),
    # a Config only a mutator reads is still an artifact of every task
    Pattern("config-read-by-mutator-only", "mutatoronly", "scaleflow.py"),
    # a base flow in a package: its helper from a sibling module carried, config_expr kept
    Pattern("base-in-package", "pkgbase", "pkgflow.py"),
    # a Config's sub-dict kept as an artifact, a Config named with a "-" (2.15 too)
    Pattern("config-values-kept", "cfgvalues", "valuesflow.py"),
    # the same without a mutator: the flow, otherwise its own output, gets the shim too
    Pattern("plain-config-value-kept", "plaincfg", "plaincfgflow.py"),
    # a function as a custom decorator's attribute, given by a mutator
    Pattern("function-attribute", "callattr", "callattrflow.py"),
    # config_expr giving a custom decorator a Config's dict, read by attribute
    Pattern("config-dict-attribute", "cfgattrs", "hpflow.py"),
    # a flow mutator over the steps a plain-Metaflow base (another module) defines
    Pattern("mutator-over-plain-base", "plainbase", "leafflow.py"),
    # Configs from a file in a subfolder through parser functions (one imported, one named
    # as a string), fed to a built-in and a custom decorator: the values are written out, the
    # parser's import goes (nothing reads it), the header names settings/run.kv
    Pattern("config-parser-subfolder", "cfgparser", "parserflow.py"),
    # a mutator removing an imported custom decorator from every step: the import goes too
    Pattern("custom-decorator-removed-everywhere", "removed", "quietflow.py"),
    # ... and when the config keeps it, it is inlined as usual
    Pattern(
        "custom-decorator-kept",
        "removed",
        "quietflow.py",
        config_values=(("opts", json.dumps({"quiet": False})),),
    ),
]


def _compile_alone(pattern: Pattern, source: Path, dest: Path) -> Path:
    options = CompileOptions(
        config_values=pattern.config_values, with_specs=pattern.with_specs, python=sys.executable
    )
    try:
        code = compile_file(source, options)
    except CompileError as err:
        pytest.fail(f"compile_file({source.name}) raised CompileError:\n{err}")
    dest.mkdir(parents=True)
    out = dest / source.name
    out.write_text(code, encoding="utf-8")
    for name in pattern.needs:
        shutil.copy(source.parent / name, dest / name)
    for banned in ("FlowMutator", "StepMutator", "user_step_decorator", "UserStepDecorator"):
        assert banned not in code
    return out


@pytest.mark.parametrize("pattern", [pytest.param(p, id=p.id) for p in PATTERNS])
def test_native_vs_compiled(pattern: Pattern, tmp_path: Path) -> None:
    native_dir = tmp_path / "native" / pattern.folder
    shutil.copytree(
        MUTATOR_FLOWS / pattern.folder, native_dir, ignore=shutil.ignore_patterns("__pycache__")
    )
    native = run_flow(
        native_dir / pattern.flow,
        python=sys.executable,
        workdir=tmp_path / "runs",
        top_args=pattern.top_args(),
        extra_args=pattern.run_args(),
    )
    assert native.succeeded, native.console[-3000:]
    compiled = _compile_alone(pattern, native_dir / pattern.flow, tmp_path / "compiled")
    for python in (sys.executable, old_python()):
        outcome = run_flow(compiled, python=python, workdir=tmp_path / "runs")
        assert_same(native, outcome)
