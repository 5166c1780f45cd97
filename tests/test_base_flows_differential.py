"""Differential tests for flows whose base class lives in another module (issue 12, item 3):
flow decorators on the base and on the flow, and a base declaring Configs.

As in test_mutators_differential: the flow is run natively (Metaflow 2.19), then compiled and
run ALONE in an empty folder (plus the files the compiled flow still needs) on Metaflow
2.19.39 and on 2.15.21, and the runs are compared task by task.

Measured on 2.16.0 and 2.19.39 (`FlowSpecMeta._init_attrs`, `_base_flow_decorator`): a flow
inherits each kind of flow decorator its bases write; the same kind written on the flow and
on a base makes Metaflow refuse the flow as it is imported (DuplicateFlowDecoratorException)
unless the kind allows several (`@exit_hook`), where 2.19 keeps the flow's own only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from decoflow.transformer import CompileError, CompileOptions, compile_file
from expansion_support import MUTATOR_FLOWS, metaflow_env
from harness import assert_same, old_python, run_flow

pytestmark = pytest.mark.differential

FLOWDECOS = MUTATOR_FLOWS / "flowdecos"


def _native(folder: Path, flow: str, tmp_path: Path):
    native_dir = tmp_path / "native" / folder.name
    shutil.copytree(folder, native_dir, ignore=shutil.ignore_patterns("__pycache__"))
    return native_dir / flow


def _compile_alone(source: Path, dest: Path, needs: tuple[str, ...] = ()) -> tuple[Path, str]:
    code = compile_file(source, CompileOptions(python=sys.executable))
    dest.mkdir(parents=True)
    out = dest / source.name
    out.write_text(code, encoding="utf-8")
    for name in needs:
        shutil.copy(source.parent / name, dest / name)
    return out, code


def _differential(source: Path, tmp_path: Path, needs: tuple[str, ...] = ()) -> str:
    native = run_flow(source, python=sys.executable, workdir=tmp_path / "runs")
    assert native.succeeded, native.console[-3000:]
    compiled, code = _compile_alone(source, tmp_path / "compiled", needs)
    for python in (sys.executable, old_python()):
        outcome = run_flow(compiled, python=python, workdir=tmp_path / "runs")
        assert_same(native, outcome)
    return code


def test_flow_decorators_of_two_kinds_are_both_kept(tmp_path: Path) -> None:
    """@project on the base, @schedule on the flow: both on the compiled class (the project
    name is what every task sees through `current`)."""
    code = _differential(_native(FLOWDECOS, "scheduledflow.py", tmp_path), tmp_path)
    decorators = '@schedule(daily=True)\n@project(name="baseproj")\n'
    assert decorators + "class ScheduledFlow(FlowSpec):" in code
    assert "from projbase" not in code


def test_same_flow_decorator_on_base_and_flow_is_refused(tmp_path: Path) -> None:
    """@project on the flow and on its base: Metaflow refuses the flow as it is imported;
    decoflow refuses it with the same message (DF504, as when it expands a flow), located at
    the flow's decorator with a note at the base's."""
    source = _native(FLOWDECOS, "twiceflow.py", tmp_path)
    proc = subprocess.run(
        [sys.executable, source.name, "--no-pylint", "run"],
        cwd=source.parent,
        env=metaflow_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    message = (
        "Flow already has a decorator 'project'. You can specify each decorator only once."
    )
    assert message in proc.stderr
    with pytest.raises(CompileError) as caught:
        compile_file(source, CompileOptions(python=sys.executable))
    [diagnostic] = caught.value.diagnostics
    lines = diagnostic.format().splitlines()
    assert lines == [
        "twiceflow.py:8:2: DF504 the flow cannot be imported: DuplicateFlowDecoratorException: "
        f"Duplicate decorators: {message}",
        "projbase.py:14:2: note: @project on ProjBase, which TwiceFlow inherits",
    ]


def test_exit_hook_on_base_and_flow_keeps_the_flows_own(tmp_path: Path) -> None:
    """@exit_hook allows several: on 2.19 the flow's own list replaces the inherited one, so
    only the flow's hook runs, natively and compiled (on 2.19 and 2.15)."""
    source = _native(FLOWDECOS, "hookflow.py", tmp_path)
    native = run_flow(source, python=sys.executable, workdir=tmp_path / "runs")
    assert native.succeeded, native.console[-3000:]
    compiled, code = _compile_alone(source, tmp_path / "compiled")
    assert "@exit_hook(on_success=[flow_hook])\nclass HookFlow(FlowSpec):" in code
    for outcome in [native] + [
        run_flow(compiled, python=python, workdir=tmp_path / "runs")
        for python in (sys.executable, old_python())
    ]:
        assert "flow hook ran" in outcome.console and "base hook ran" not in outcome.console
        if outcome is not native:
            assert_same(native, outcome)


def test_base_declaring_configs_read_in_steps(tmp_path: Path) -> None:
    """A base class in another module declaring Configs (a default file, a default value)
    that only steps and the flow's custom decorator read (through `flow`). The base is plain
    Metaflow, so it stays imported: the compiled flow needs it and its config file."""
    source = _native(MUTATOR_FLOWS / "cfgbase", "settingsflow.py", tmp_path)
    code = _differential(source, tmp_path, needs=("settingsbase.py", "settings.json"))
    assert "from settingsbase import SettingsBase" in code and "import timed" not in code


def test_flattened_base_declaring_configs_read_in_steps(tmp_path: Path) -> None:
    """The same with a custom decorator on the base's step too: the base is flattened, its
    Configs carried onto the flow class (the default file is still read where the flow
    runs, as natively)."""
    source = _native(MUTATOR_FLOWS / "cfgbase", "loudsettingsflow.py", tmp_path)
    code = _differential(source, tmp_path, needs=("settings.json",))
    assert "from loudsettingsbase" not in code and 'Config("settings"' in code


COLLIDE = MUTATOR_FLOWS / "collide"


def test_base_module_names_the_flow_module_binds_are_renamed(tmp_path: Path) -> None:
    """A chain of two base modules, flattened statically, whose steps and helpers read
    `fmt`, `PREFIX`, `json` and Metaflow's `current`, which the flow module (and the other
    base module) bind to their own: each base module's are carried under a new name
    (`midbase_fmt`, `metaflow_current`, ...), a step's local `fmt` stays, and every task
    sees what it sees natively (before: DF507, or a silent clash of the two bases' `fmt`)."""
    code = _differential(_native(COLLIDE, "collideflow.py", tmp_path), tmp_path)
    assert "def midbase_fmt(value):" in code and "import json as midbase_json" in code
    assert "self.flow_seen = metaflow_current.flow_name" in code
    assert 'def fmt(value):  # a local of the same name: not the module\'s' in code


def test_base_module_names_renamed_after_an_expansion(tmp_path: Path) -> None:
    """The same where a base class has a flow mutator (the flow expanded by Metaflow, its
    bases flattened by the writer)."""
    code = _differential(_native(COLLIDE, "mutcollideflow.py", tmp_path), tmp_path)
    assert "self.mid = mutmid_fmt(" in code and 'PREFIX = "flow"' in code


@pytest.mark.parametrize("flow", ["recflow.py", "importflow.py", "mutflow.py"])
def test_state_shared_by_a_base_decorator_and_the_steps(flow: str, tmp_path: Path) -> None:
    """A module-level list that a custom decorator appends to and the inherited steps read:
    natively one object. The decorator's module defines the base (recflow), or the base
    imports both from it (importflow, the flow module binding a `SEEN` of its own), or a
    mutator on the base adds the decorator (mutflow, expanded). The compiled flow carries the
    list once (before: the flattened steps read a second copy, and saw it empty)."""
    code = _differential(_native(MUTATOR_FLOWS / "sharedbase", flow, tmp_path), tmp_path)
    assert code.count("SEEN = []") == 1
