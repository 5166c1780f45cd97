"""Decorators found the way Python would find them, and `--with` baked in (issue 4).

Native runs import the decorator packages (PYTHONPATH, or installed with pip); the compiled
flows run alone in an empty folder, on Metaflow 2.19 and 2.15.21.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from decoflow.transformer import CompileOptions, compile_file
from harness import assert_same, old_python, run_flow

PACKAGES = Path(__file__).resolve().parent.parent / "fixtures" / "packages"
WITH_SPEC = 'obs.core.traced:level=3,cfg={"k": [1, 2]}'


def _compile_alone(flow: Path, out_dir: Path, **options) -> Path:
    out_dir.mkdir()
    out = out_dir / flow.name
    out.write_text(compile_file(flow, CompileOptions(**options)))
    return out


def _check_everywhere(native, compiled: Path, tmp_path: Path) -> None:
    for label, python in (("2.19", sys.executable), ("2.15.21", old_python())):
        assert_same(native, run_flow(compiled, python=python, workdir=tmp_path / f"run-{label}"))


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(PACKAGES, tmp_path / "src")
    return tmp_path / "src" / "flows" / "pkgflow.py", tmp_path / "src" / "libs"


def test_package_decorators_on_pythonpath(tmp_path: Path) -> None:
    flow, libs = _copy(tmp_path)
    native = run_flow(flow, python=sys.executable, workdir=tmp_path / "native", pythonpath=[libs])
    assert native.succeeded, native.describe()
    compiled = _compile_alone(flow, tmp_path / "alone", search_path=(libs,))
    text = compiled.read_text()
    assert not re.search(r"^\s*(import|from)\s+(obs|nsdeco)\b", text, flags=re.MULTILINE)
    _check_everywhere(native, compiled, tmp_path)


def test_with_spec_next_to_static_use_with_other_attributes(tmp_path: Path) -> None:
    flow, libs = _copy(tmp_path)
    native = run_flow(
        flow,
        python=sys.executable,
        workdir=tmp_path / "native",
        pythonpath=[libs],
        extra_args=("--with", WITH_SPEC),
    )
    assert native.succeeded, native.describe()
    # the static @oc.traced(level=2) on start keeps its own attributes; every other step gets
    # the --with one (fan already has it through the `observed` alias: same decorator)
    assert "[obs] start [('level', 2)]" in native.task("start").stdout
    assert "[obs] join [('cfg', {'k': [1, 2]}), ('level', 3)]" in native.task("join").stdout
    compiled = _compile_alone(
        flow, tmp_path / "alone", search_path=(libs,), with_specs=(WITH_SPEC,)
    )
    _check_everywhere(native, compiled, tmp_path)


@pytest.fixture
def installed_package():
    """The demo decorator package, installed with pip into the running environment."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "--no-deps", str(PACKAGES / "pipdeco")], check=True)
    yield "decoflow_demo_obs"
    subprocess.run([*pip, "uninstall", "--yes", "decoflow-demo-obs"], check=True)


def test_with_decorator_from_a_pip_installed_package(
    tmp_path: Path, installed_package: str
) -> None:
    flow, _ = _copy(tmp_path)
    plain = flow.with_name("plainflow.py")
    plain.write_text(
        "from metaflow import FlowSpec, step\n\n\nclass PlainFlow(FlowSpec):\n"
        "    @step\n    def start(self):\n        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n\n\n"
        "if __name__ == '__main__':\n    PlainFlow()\n"
    )
    spec = f"{installed_package}.core.audited:who=ci"
    native = run_flow(
        plain, python=sys.executable, workdir=tmp_path / "native", extra_args=("--with", spec)
    )
    assert native.succeeded, native.describe()
    assert native.task("end").artifacts["audited"] == "audit:end:[('who', 'ci')]"
    compiled = _compile_alone(plain, tmp_path / "alone", with_specs=(spec,))
    assert not re.search(
        rf"^\s*(import|from)\s+{installed_package}\b", compiled.read_text(), flags=re.MULTILINE
    )
    _check_everywhere(native, compiled, tmp_path)
