"""Static safety: compiling never imports or runs the flow or any module it reads.

Every module of the project below would, if imported, leave a marker file and end the
process (`sys.exit(3)`, `os._exit(3)` or `raise SystemExit(3)`): the flow itself, the two
decorator modules, the helper module a decorator calls into and the package `__init__.py` a
decorator module lives under. Compiling it through the command line (one flow, several flows
in parallel processes, `--with`, `explain`) and through the API must succeed with the expected
output and leave no marker. The compiler process must not import Metaflow either.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# The installed script beside this interpreter, else the module (same code either way).
_SCRIPT = Path(sys.executable).with_name("decoflow")
DECOFLOW = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "decoflow"]

# Modules of the project below: importing any of them would be a failure.
USER_MODULES = ("flow", "otherflow", "danger", "helper", "pkg", "pkg.pkgdecos")


def _trap(marker_dir: Path, name: str, exit_with: str) -> str:
    """Module-level code that leaves `marker_dir/name` and ends the process."""
    return textwrap.dedent(
        f"""\
        import os as _os
        import sys as _sys

        open(_os.path.join({str(marker_dir)!r}, {name!r}), "w").close()
        {exit_with}
        """
    )


FLOW_BODY = '''
from metaflow import FlowSpec, step

import pkg.pkgdecos
from danger import shout


class SafeFlow(FlowSpec):
    """Decorated by two modules that must never be imported by the compiler."""

    @pkg.pkgdecos.tagged(label="x")
    @shout
    @step
    def start(self):
        self.value = 1
        self.next(self.end)

    @step
    def end(self):
        print(self.value)


if __name__ == "__main__":
    SafeFlow()
'''

OTHER_FLOW_BODY = """
from metaflow import FlowSpec, step

from danger import shout


class OtherFlow(FlowSpec):

    @step
    def start(self):
        self.next(self.end)

    @shout
    @step
    def end(self):
        pass
"""

PLAIN_FLOW_BODY = """
from metaflow import FlowSpec, step


class PlainFlow(FlowSpec):

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""

DANGER_BODY = """
from helper import loud
from metaflow import user_step_decorator


@user_step_decorator
def shout(step_name, flow, inputs):
    print(loud("before " + step_name))
    yield
    print(loud("after " + step_name))
"""

HELPER_BODY = """

def loud(text):
    return text.upper()
"""

PKGDECOS_BODY = """
from metaflow import user_step_decorator


@user_step_decorator
def tagged(step_name, flow, inputs, attributes):
    print("tag", attributes["label"])
    yield
"""


def make_project(root: Path) -> Path:
    """Write the booby-trapped project below `root`; returns the marker folder (empty)."""
    markers = root / "markers"
    markers.mkdir()
    files = {
        "flow.py": _trap(markers, "flow", "_sys.exit(3)") + FLOW_BODY,
        "otherflow.py": _trap(markers, "otherflow", "_os._exit(3)") + OTHER_FLOW_BODY,
        "plainflow.py": _trap(markers, "plainflow", "_os._exit(3)") + PLAIN_FLOW_BODY,
        "danger.py": _trap(markers, "danger", "_os._exit(3)") + DANGER_BODY,
        "helper.py": _trap(markers, "helper", "_os._exit(3)") + HELPER_BODY,
        "pkg/__init__.py": _trap(markers, "pkg", "_sys.exit(3)"),
        "pkg/pkgdecos.py": _trap(markers, "pkgdecos", "raise SystemExit(3)") + PKGDECOS_BODY,
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "pyproject.toml").write_text("[project]\nname = 'trap'\n", encoding="utf-8")
    return markers


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The booby-trapped project (its root)."""
    make_project(tmp_path)
    return tmp_path


def clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH, and without anything that would make Python
    import extra code at start-up."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    return env


def run(
    root: Path, *args: str, python_flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the decoflow command line in `root` (via `python -m` when flags are given)."""
    command = [sys.executable, *python_flags, "-m", "decoflow"] if python_flags else DECOFLOW
    return subprocess.run(
        [*command, *args], cwd=root, capture_output=True, text=True, timeout=300, env=clean_env()
    )


def assert_nothing_ran(root: Path, proc: subprocess.CompletedProcess[str] | None = None) -> None:
    """No marker was left, and the process did not end with the traps' status 3."""
    markers = sorted(p.name for p in (root / "markers").iterdir())
    detail = f"\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}" if proc else ""
    assert markers == [], f"user code ran at compile time: {markers}{detail}"
    if proc is not None:
        assert proc.returncode != 3, f"the compiler exited as a trap does{detail}"
        assert "Traceback" not in proc.stdout + proc.stderr, detail


def check_safe_flow_output(code: str) -> None:
    """The compiled `SafeFlow`: both decorators inlined in order, the helper carried as a
    definition, the flow's own top-level code kept, no import of a decorator module."""
    ast.parse(code)  # valid Python (parsed only)
    assert "Inlined: @pkg.pkgdecos.tagged (pkg/pkgdecos.py:" in code
    assert "@shout (danger.py:" in code
    assert "def loud(text):" in code, "the helper the decorator calls is carried"
    order = [
        'attributes = {"label": "x"}',
        'print("tag", attributes["label"])',
        'print(loud("before " + step_name))',
        "self.value = 1",
        'print(loud("after " + step_name))',
        "self.next(self.end)",
    ]
    positions = [code.find(fragment) for fragment in order]
    assert all(p >= 0 for p in positions), list(zip(order, positions))
    assert positions == sorted(positions), "the decorators' code is not in step order"
    # The flow's own module-level code stays (it is the flow's, and runs when *it* runs)...
    assert "open(_os.path.join(" in code and "'flow')" in code
    # ...but nothing in the output imports the decorator modules, the helper or the package.
    tree = ast.parse(code)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported.isdisjoint({"danger", "helper", "pkg"}), imported
    decorators = [line.strip() for line in code.splitlines() if line.strip().startswith("@")]
    assert decorators == ["@step", "@step"], decorators


# --- the command line ----------------------------------------------------------------------


def test_cli_compile_runs_no_user_code(project: Path) -> None:
    """`decoflow compile flow.py -o out.py` reads every trapped module, runs none."""
    proc = run(project, "compile", "flow.py", "-o", "out.py")
    assert_nothing_ran(project, proc)
    assert proc.returncode == 0, proc.stderr
    check_safe_flow_output((project / "out.py").read_text(encoding="utf-8"))


def test_cli_compile_to_stdout_runs_no_user_code(project: Path) -> None:
    """The same, printing the compiled flow."""
    proc = run(project, "compile", "flow.py")
    assert_nothing_ran(project, proc)
    assert proc.returncode == 0, proc.stderr
    check_safe_flow_output(proc.stdout)


def test_cli_parallel_compile_runs_no_user_code(project: Path) -> None:
    """Several flows, compiled in worker processes (`-j 2`, `--out-dir`)."""
    proc = run(
        project,
        "compile",
        "flow.py",
        "otherflow.py",
        "plainflow.py",
        "--out-dir",
        "build",
        "-j",
        "2",
    )
    assert_nothing_ran(project, proc)
    assert proc.returncode == 0, proc.stderr
    check_safe_flow_output((project / "build" / "flow.py").read_text(encoding="utf-8"))
    other = (project / "build" / "otherflow.py").read_text(encoding="utf-8")
    assert 'print(loud("after " + step_name))' in other and "def loud(text):" in other
    plain = (project / "build" / "plainflow.py").read_text(encoding="utf-8")
    assert plain == (project / "plainflow.py").read_text(encoding="utf-8")


def test_cli_with_spec_runs_no_user_code(project: Path) -> None:
    """`--with danger.shout` on a flow without decorators: the module is read, not run."""
    proc = run(project, "compile", "plainflow.py", "-o", "out.py", "--with", "danger.shout")
    assert_nothing_ran(project, proc)
    assert proc.returncode == 0, proc.stderr
    code = (project / "out.py").read_text(encoding="utf-8")
    ast.parse(code)
    assert code.count('print(loud("before " + step_name))') == 2  # start and end


def test_cli_explain_runs_no_user_code(project: Path) -> None:
    """`decoflow explain` reads the same modules."""
    proc = run(project, "explain", "flow.py")
    assert_nothing_ran(project, proc)
    assert proc.returncode == 0, proc.stderr
    assert "shout" in proc.stdout and "tagged" in proc.stdout


def test_failed_compile_runs_no_user_code(project: Path) -> None:
    """A compile that fails (a diagnostic in a trapped module) runs nothing either."""
    danger = project / "danger.py"
    danger.write_text(
        danger.read_text(encoding="utf-8").replace("    yield\n", "    yield from ()\n")
    )
    proc = run(project, "compile", "flow.py", "-o", "out.py")
    assert_nothing_ran(project, proc)
    assert proc.returncode == 1 and " DF303 " in proc.stderr, proc.stderr
    assert not (project / "out.py").exists()


def test_cli_imports_no_metaflow_and_no_user_module(project: Path) -> None:
    """`python -X importtime -m decoflow compile ...`: neither Metaflow nor any module of
    the project is imported."""
    proc = run(project, "compile", "flow.py", "-o", "out.py", python_flags=("-X", "importtime"))
    assert_nothing_ran(project, proc)
    assert proc.returncode == 0, proc.stderr
    imported = [
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    assert "decoflow.transformer.pipeline" in imported, "importtime output not understood"
    metaflow = [m for m in imported if m == "metaflow" or m.startswith("metaflow.")]
    assert metaflow == [], f"the compiler imported Metaflow: {metaflow}"
    assert set(imported).isdisjoint(USER_MODULES)


# --- the API -------------------------------------------------------------------------------

API_SCRIPT = """
import json, sys
from pathlib import Path
from decoflow.transformer import CompileOptions, compile_file, compile_source

root = Path(sys.argv[1])
flow = root / "flow.py"
by_file = compile_file(flow)
by_source = compile_source(flow.read_text(encoding="utf-8"), flow, CompileOptions())
with_spec = compile_file(root / "plainflow.py", CompileOptions(with_specs=("danger.shout",)))
watched = {watched}
print(json.dumps({{
    "by_file": by_file,
    "by_source": by_source,
    "with_spec": with_spec,
    "modules": sorted(m for m in sys.modules
                      if m in watched or m == "metaflow" or m.startswith("metaflow.")),
}}))
"""


def test_api_compile_runs_no_user_code_and_imports_no_metaflow(project: Path) -> None:
    """`compile_file` / `compile_source` in a fresh interpreter: expected output, no marker,
    and afterwards `sys.modules` holds neither Metaflow nor any module of the project."""
    script = API_SCRIPT.format(watched=repr(set(USER_MODULES)))
    proc = subprocess.run(
        [sys.executable, "-c", script, str(project)],
        cwd=project.parent,  # not the project: nothing of it is importable by accident
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert_nothing_ran(project, proc)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["modules"] == [], f"imported during compile: {result['modules']}"
    check_safe_flow_output(result["by_file"])
    assert result["by_source"] == result["by_file"]
    assert result["with_spec"].count('print(loud("after " + step_name))') == 2


# --- issue 12: a flow without mutators starts no process; one with them is found statically ---

NO_PROCESS_SCRIPT = """
import json, os, subprocess, sys
from pathlib import Path

def refuse(*args, **kwargs):
    raise AssertionError("a process was started")

subprocess.Popen.__init__ = refuse
os.fork = refuse
os.posix_spawn = refuse
from decoflow.transformer import CompileOptions, compile_file

root = Path(sys.argv[1])
out = [compile_file(root / "flow.py"), compile_file(root / "plainflow.py",
       CompileOptions(with_specs=("danger.shout",)))]
print(json.dumps(out))
"""

MUTATED_FLOW_BODY = '''
from metaflow import FlowSpec, step

from mutdecos import everywhere


@everywhere
class MutatedFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''

MUTDECOS_BODY = '''
from metaflow import FlowMutator


class everywhere(FlowMutator):
    def mutate(self, mutable_flow):
        pass
'''


def test_flow_without_mutators_starts_no_process(project: Path) -> None:
    """A flow with no mutator and no config-fed custom decorator compiles exactly as before
    (same output) without starting any process (no Metaflow child)."""
    proc = subprocess.run(
        [sys.executable, "-c", NO_PROCESS_SCRIPT, str(project)],
        cwd=project.parent,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert_nothing_ran(project, proc)
    assert proc.returncode == 0, proc.stderr
    by_file, with_spec = json.loads(proc.stdout)
    check_safe_flow_output(by_file)
    assert with_spec.count('print(loud("after " + step_name))') == 2


def test_mutators_are_detected_without_importing(project: Path) -> None:
    """A mutator imported from a module is found by reading files: with no usable Metaflow
    the compile stops with DF501 naming it, and neither the flow nor the module of the
    mutator was imported by decoflow."""
    markers = project / "markers"
    (project / "mutatedflow.py").write_text(
        _trap(markers, "mutatedflow", "_os._exit(3)") + MUTATED_FLOW_BODY
    )
    (project / "mutdecos.py").write_text(_trap(markers, "mutdecos", "_os._exit(3)") + MUTDECOS_BODY)
    proc = subprocess.run(
        [*DECOFLOW, "compile", "mutatedflow.py", "--python", "/usr/bin/python3"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert proc.returncode == 1, proc.stderr
    assert " DF501 @everywhere needs Metaflow >= 2.16" in proc.stderr
    assert sorted(p.name for p in markers.iterdir()) == []
