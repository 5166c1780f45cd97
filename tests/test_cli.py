"""The `decoflow` command line: every flag and exit code, config builds, determinism.

Everything here is real: real flow files with a custom decorator in temporary folders,
compiled by the real compiler, through click's `CliRunner` (fast, in process) or through the
installed `decoflow` script in a subprocess (for working directories, hash seeds, processes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from decoflow.cli import guard_internal_errors, main
from projects import CONFIG, PLAIN, WAITER, make_project

# The installed script beside this interpreter, else the module (same code either way).
_SCRIPT = Path(sys.executable).with_name("decoflow")
DECOFLOW = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "decoflow"]


def break_flow(path: Path) -> None:
    """Make a flow fail to compile: its decorator cannot be resolved."""
    path.write_text(path.read_text().replace("from myprofiler import", "from nosuchmodule import"))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def run(*args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def run_script(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*DECOFLOW, *args], cwd=cwd, env=full_env, input=input, capture_output=True, timeout=300
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- one file -----------------------------------------------------------------------------


def test_one_file_prints_the_compiled_flow(project: Path) -> None:
    result = run("compile", "flows/waiterflow.py")
    assert result.exit_code == 0, result.output
    assert "class WaiterFlow(FlowSpec)" in result.stdout
    assert "    @my_profile\n" not in result.stdout
    assert "time.time() - start" in result.stdout  # the decorator's code is inlined
    assert result.stderr == ""
    assert not (project / "build").exists()


def test_output_file_is_written_once_and_reported(project: Path) -> None:
    result = run("compile", "flows/waiterflow.py", "-o", "out/waiter.py")
    assert result.exit_code == 0, result.output
    assert result.stderr == "wrote out/waiter.py\n"
    assert result.stdout == ""
    out = project / "out" / "waiter.py"
    assert out.read_text() == run("compile", "flows/waiterflow.py").stdout
    before = out.stat()

    again = run("compile", "flows/waiterflow.py", "-o", "out/waiter.py")
    assert again.exit_code == 0
    assert again.output == ""  # nothing changed: nothing said, nothing written
    after = out.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    verbose = run("compile", "-v", "flows/waiterflow.py", "-o", "out/waiter.py")
    assert verbose.exit_code == 0
    assert verbose.stderr == "unchanged out/waiter.py\n"


def test_dash_o_dash_is_stdout(project: Path) -> None:
    result = run("compile", "flows/waiterflow.py", "-o", "-")
    assert result.exit_code == 0
    assert result.stdout == run("compile", "flows/waiterflow.py").stdout


def test_quiet_prints_nothing_on_success(project: Path) -> None:
    result = run("compile", "-q", "flows/waiterflow.py", "-o", "out.py")
    assert result.exit_code == 0
    assert result.output == ""
    assert (project / "out.py").exists()


def test_new_output_gets_ordinary_permissions(project: Path) -> None:
    assert run("compile", "flows/waiterflow.py", "-o", "out.py").exit_code == 0
    mask = os.umask(0)
    os.umask(mask)
    assert (project / "out.py").stat().st_mode & 0o777 == 0o666 & ~mask
    assert not [p for p in project.iterdir() if "decoflow-tmp" in p.name]


def test_out_dir_mirrors_paths_below_the_common_folder(project: Path) -> None:
    result = run("compile", "flows/waiterflow.py", "flows/team/teamflow.py", "--out-dir", "dist")
    assert result.exit_code == 0, result.output
    assert result.stderr == "wrote dist/waiterflow.py\nwrote dist/team/teamflow.py\n"  # FILES order
    assert sorted(snapshot(project / "dist")) == ["team/teamflow.py", "waiterflow.py"]


def test_stdin_to_stdout(project: Path) -> None:
    source = (project / "flows" / "waiterflow.py").read_bytes()
    result = run("compile", "-", "--stdin-filename", "flows/waiterflow.py", input=source)
    assert result.exit_code == 0, result.output
    assert result.stdout == run("compile", "flows/waiterflow.py").stdout

    plain = run("compile", "-", input=PLAIN)  # nothing to inline: the flow is its own output
    assert plain.exit_code == 0, plain.output
    assert plain.stdout == PLAIN


def test_stdin_to_output_file(project: Path) -> None:
    source = (project / "flows" / "waiterflow.py").read_bytes()
    result = run(
        "compile", "-", "--stdin-filename", "flows/waiterflow.py", "-o", "o.py", input=source
    )
    assert result.exit_code == 0, result.output
    assert (project / "o.py").read_text() == run("compile", "flows/waiterflow.py").stdout


def test_stdin_diagnostics_name_stdin(project: Path) -> None:
    result = run("compile", "-", input=WAITER)  # myprofiler is not beside the working directory
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "<stdin>:" in result.stderr


MUTATED = """\
from metaflow import FlowMutator, FlowSpec, step


class add_retry(FlowMutator):
    def mutate(self, mutable_flow):
        for _, s in mutable_flow.steps:
            s.add_decorator("retry", deco_kwargs={"times": TIMES})


@add_retry
class MutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_stdin_with_a_mutator_evaluates_the_text_read(project: Path) -> None:
    """A flow read from stdin that needs Metaflow's evaluation: the child runs the text given
    (an editor's unsaved buffer), not the file named by --stdin-filename, nor fails without one
    (it used to import the file on disk: a silently stale output, or DF504)."""
    (project / "mutflow.py").write_text(MUTATED.replace("TIMES", "1"), encoding="utf-8")
    edited = MUTATED.replace("TIMES", "3")
    for args in (("--stdin-filename", "mutflow.py"), ()):
        result = run("compile", "-", *args, input=edited)
        assert result.exit_code == 0, result.output
        assert result.stdout.count("@retry(times=3)") == 2, result.stdout

    broken = edited.replace("for _, s", "raise ValueError('edited')\n        for _, s")
    result = run("compile", "-", "--stdin-filename", "mutflow.py", input=broken)
    assert result.exit_code == 1 and result.stdout == ""
    assert "mutflow.py:6:9: DF502" in result.stderr and "ValueError: edited" in result.stderr


CONFIGURED = """\
from metaflow import Config, FlowSpec, config_expr, retry, step


class CfgFlow(FlowSpec):
    cfg = Config("cfg", default_value={"n": 1})

    @retry(times=config_expr("cfg.n"))
    @step
    def start(self):
        print("n", self.cfg.n)
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_a_config_given_for_a_flow_without_mutators_is_applied(project: Path) -> None:
    """A Config only a built-in decorator and the steps read needs no expansion by itself; but
    a value given for it (`--config-value`, `--config`, or per flow in [tool.decoflow]) is what
    the flow must be built with, as `run --config-value` builds it (it used to be ignored, the
    output being the flow as written: a silently different deployment)."""
    (project / "cfgflow.py").write_text(CONFIGURED, encoding="utf-8")
    plain = run("compile", "cfgflow.py")
    assert plain.exit_code == 0 and plain.stdout == CONFIGURED  # nothing given: no process

    result = run("compile", "cfgflow.py", "--config-value", "cfg", '{"n": 5}')
    assert result.exit_code == 0, result.output
    assert "@retry(times=5)" in result.stdout, result.stdout
    assert 'default_value={"n": 5}' in result.stdout

    (project / "five.json").write_text('{"n": 4}', encoding="utf-8")
    result = run("compile", "cfgflow.py", "--config", "cfg", "five.json")
    assert result.exit_code == 0, result.output
    assert "@retry(times=4)" in result.stdout, result.stdout

    result = run("compile", "cfgflow.py", "--config-value", "nosuch", '{"n": 5}')
    assert result.exit_code == 1 and result.stdout == ""
    assert "DF505" in result.stderr and "nosuch" in result.stderr

    config = (project / "pyproject.toml").read_text()
    config = config.replace('flows = [', 'flows = ["cfgflow.py", ', 1)
    config += '\n[tool.decoflow.config-value."cfgflow.py"]\ncfg = { n = 3 }\n'
    (project / "pyproject.toml").write_text(config)
    result = run("compile")
    assert result.exit_code == 0, result.output
    assert "@retry(times=3)" in (project / "build" / "cfgflow.py").read_text()


# -- configured builds ----------------------------------------------------------------------


def test_config_build_compiles_every_configured_flow(project: Path) -> None:
    result = run("compile")
    assert result.exit_code == 0, result.output
    assert result.stderr == "wrote build/team/teamflow.py\nwrote build/waiterflow.py\n"
    assert result.stdout == ""
    built = snapshot(project / "build")
    assert sorted(built) == ["team/teamflow.py", "waiterflow.py"]
    assert built["waiterflow.py"].decode() == run("compile", "flows/waiterflow.py").stdout

    again = run("compile")  # the outputs are not flows (though `**/*flow.py` matches them)
    assert again.exit_code == 0
    assert again.output == ""
    assert not (project / "build" / "build").exists()


def test_config_found_from_a_subfolder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "flows" / "team")
    result = run("compile")
    assert result.exit_code == 0, result.output
    # Status lines name paths from the working directory when below it, else absolutely.
    assert f"wrote {project / 'build' / 'waiterflow.py'}" in result.stderr
    assert (project / "build" / "team" / "teamflow.py").exists()


def test_config_with_specs_are_passed_and_cli_specs_added(project: Path) -> None:
    plain = run("compile", "flows/waiterflow.py").stdout
    cli_only = run(
        "compile", "flows/waiterflow.py", "--with", "retry:times=2", "--with", "timeout:seconds=60"
    ).stdout
    assert cli_only != plain
    config = CONFIG + 'with = ["retry:times=2"]\n'
    (project / "pyproject.toml").write_text(config)
    assert run("compile", "flows/waiterflow.py", "--with", "timeout:seconds=60").stdout == cli_only
    assert run("compile", "--with", "timeout:seconds=60").exit_code == 0
    assert (project / "build" / "waiterflow.py").read_text() == cli_only


def test_cli_out_dir_overrides_config(project: Path) -> None:
    result = run("compile", "--out-dir", "elsewhere")
    assert result.exit_code == 0, result.output
    assert sorted(snapshot(project / "elsewhere")) == ["team/teamflow.py", "waiterflow.py"]
    assert not (project / "build").exists()


def test_exclude_globs_keep_files_from_the_flows(project: Path) -> None:
    """`exclude` (as ruff's): files it matches are not flows, even when `flows` matches them."""
    (project / "pyproject.toml").write_text(
        '[tool.decoflow]\nflows = ["flows/**/*.py"]\nexclude = ["flows/**/myprofiler.py"]\n'
        'out-dir = "build"\n'
    )
    result = run("compile")
    assert result.exit_code == 0, result.output
    assert sorted(snapshot(project / "build")) == ["team/teamflow.py", "waiterflow.py"]
    (project / "pyproject.toml").write_text(
        '[tool.decoflow]\nflows = ["flows/*flow.py"]\nexclude = ["flows/*.py"]\n'
        'out-dir = "build"\n'
    )
    result = run("compile")
    assert result.exit_code == 2, result.output
    assert "flows pattern 'flows/*flow.py' matched no files" in result.stderr
    (project / "pyproject.toml").write_text(
        '[tool.decoflow]\nflows = ["flows/*flow.py"]\nexclude = [3]\nout-dir = "b"\n'
    )
    result = run("compile")
    assert result.exit_code == 2
    assert "exclude" in result.stderr


def test_config_problems_are_usage_errors(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.decoflow]\nflows = ["flows/*flow.py"]\n')
    result = run("compile")
    assert result.exit_code == 2
    assert "out-dir" in result.stderr

    (project / "pyproject.toml").write_text(
        '[tool.decoflow]\nflows = ["flows/*flow.py"]\nout_dir = "b"\n'
    )
    result = run("compile")
    assert result.exit_code == 2
    assert "unknown key(s) in [tool.decoflow]: out_dir" in result.stderr

    (project / "pyproject.toml").write_text("[tool.decoflow\n")
    result = run("compile")
    assert result.exit_code == 2
    assert "invalid TOML" in result.stderr

    (project / "pyproject.toml").write_text(
        '[tool.decoflow]\nflows = ["nothing/*.py"]\nout-dir = "b"\n'
    )
    result = run("compile")
    assert result.exit_code == 2
    assert "matched no files" in result.stderr

    (project / "pyproject.toml").write_text(
        '[tool.decoflow]\nflows = "flows/*flow.py"\nout-dir = 3\n'
    )
    result = run("compile")
    assert result.exit_code == 2
    assert "`out-dir` must be a non-empty string" in result.stderr

    # a per-flow table whose path names no file (a typo) would silently go unused
    (project / "pyproject.toml").write_text(
        '[tool.decoflow]\nflows = ["flows/*flow.py"]\nout-dir = "b"\n'
        '[tool.decoflow.config-value."flows/waiterflw.py"]\ncfg = "{}"\n'
    )
    result = run("compile")
    assert result.exit_code == 2
    assert "'flows/waiterflw.py' names no file" in result.stderr


def test_no_files_and_no_config_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.chdir(tmp_path)
    result = run("compile")
    assert result.exit_code == 2
    assert "no FILES given and no flows configured" in result.stderr


# -- --check, --diff, --exit-nonzero-on-change ----------------------------------------------


def test_check_up_to_date_and_stale(project: Path) -> None:
    missing = run("compile", "--check")
    assert missing.exit_code == 1
    assert (
        missing.stderr
        == "would rewrite build/team/teamflow.py\nwould rewrite build/waiterflow.py\n"
    )
    assert not (project / "build").exists()  # --check writes nothing

    assert run("compile").exit_code == 0
    up_to_date = run("compile", "--check")
    assert up_to_date.exit_code == 0
    assert up_to_date.output == ""

    # A decorator module changed: the flow that uses it is stale; nothing is written.
    profiler = project / "flows" / "myprofiler.py"
    profiler.write_text(profiler.read_text().replace("completed in", "finished in"))
    before = snapshot(project / "build")
    stale = run("compile", "--check")
    assert stale.exit_code == 1
    assert stale.stderr == "would rewrite build/waiterflow.py\n"
    assert snapshot(project / "build") == before

    assert run("compile", "--check", "-q").output == ""
    assert run("compile", "--check", "-q").exit_code == 1


def test_check_with_explicit_output(project: Path) -> None:
    assert run("compile", "flows/waiterflow.py", "-o", "w.py", "--check").exit_code == 1
    assert not (project / "w.py").exists()
    assert run("compile", "flows/waiterflow.py", "-o", "w.py").exit_code == 0
    assert run("compile", "flows/waiterflow.py", "-o", "w.py", "--check").exit_code == 0


def test_diff_shows_the_change_and_writes_nothing(project: Path) -> None:
    new = run("compile", "--diff")
    assert new.exit_code == 0
    assert "--- /dev/null\n+++ b/build/waiterflow.py\n" in new.stdout
    assert not (project / "build").exists()

    assert run("compile").exit_code == 0
    assert run("compile", "--diff").stdout == ""
    profiler = project / "flows" / "myprofiler.py"
    profiler.write_text(profiler.read_text().replace("completed in", "finished in"))
    before = snapshot(project / "build")
    result = run("compile", "--diff")
    assert result.exit_code == 0
    assert result.stdout.startswith("--- a/build/waiterflow.py\n+++ b/build/waiterflow.py\n@@ ")
    changed = [
        line
        for line in result.stdout.splitlines()
        if line[:1] in "+-" and line[1:3] not in ("--", "++")
    ]
    assert any(line.startswith("-") and "completed in" in line for line in changed)
    assert any(line.startswith("+") and "finished in" in line for line in changed)
    assert snapshot(project / "build") == before

    both = run("compile", "--diff", "--check")
    assert both.exit_code == 1
    assert both.stdout == result.stdout


def test_exit_nonzero_on_change(project: Path) -> None:
    first = run("compile", "--exit-nonzero-on-change")
    assert first.exit_code == 1
    assert first.stderr == "wrote build/team/teamflow.py\nwrote build/waiterflow.py\n"
    assert (project / "build" / "waiterflow.py").exists()
    second = run("compile", "--exit-nonzero-on-change")
    assert second.exit_code == 0
    assert second.output == ""


# -- errors -------------------------------------------------------------------------------


def test_diagnostics_exit_1(project: Path) -> None:
    break_flow(project / "flows" / "waiterflow.py")
    result = run("compile", "flows/waiterflow.py")
    assert result.exit_code == 1
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith("flows/waiterflow.py:")
    assert " DF" in first


@pytest.mark.parametrize(
    "command", [DECOFLOW, [sys.executable, "-m", "decoflow"]], ids=["script", "module"]
)
def test_the_process_entry_point_keeps_streams_and_exit_codes(
    project: Path, command: list[str]
) -> None:
    """`decoflow` / `python -m decoflow` end the process without the usual teardown: what
    they print is all there and the exit code is the command's."""

    def script(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*command, *args], cwd=project, capture_output=True, timeout=300)

    printed = script("compile", "flows/waiterflow.py")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.decode() == run("compile", "flows/waiterflow.py").stdout
    assert script("compile", "--no-such-option").returncode == 2
    break_flow(project / "flows" / "waiterflow.py")
    broken = script("compile", "flows/waiterflow.py")
    assert broken.returncode == 1 and b" DF" in broken.stderr and broken.stdout == b""


def test_failing_file_keeps_its_old_output_while_others_are_written(project: Path) -> None:
    assert run("compile").exit_code == 0
    old_waiter = (project / "build" / "waiterflow.py").read_bytes()
    team = project / "flows" / "team" / "teamflow.py"
    team.write_text(team.read_text().replace("self.members = 3", "self.members = 4"))
    break_flow(project / "flows" / "waiterflow.py")

    result = run("compile")
    assert result.exit_code == 1
    assert "flows/waiterflow.py:" in result.stderr
    assert "wrote build/team/teamflow.py" in result.stderr
    assert "build/waiterflow.py" not in result.stderr
    assert (project / "build" / "waiterflow.py").read_bytes() == old_waiter
    assert "self.members = 4" in (project / "build" / "team" / "teamflow.py").read_text()


@pytest.mark.parametrize(
    "args",
    [
        ["compile", "flows/waiterflow.py", "-o", "a.py", "--out-dir", "d"],
        ["compile", "flows/waiterflow.py", "flows/team/teamflow.py", "-o", "a.py"],
        ["compile", "flows/waiterflow.py", "flows/team/teamflow.py"],
        ["compile", "flows/nosuchflow.py"],
        ["compile", "flows/waiterflow.py", "--check"],
        ["compile", "flows/waiterflow.py", "--diff"],
        ["compile", "-", "flows/waiterflow.py"],
        ["compile", "-", "--out-dir", "d"],
        ["compile", "flows/waiterflow.py", "--stdin-filename", "x.py"],
        ["compile", "-o", "a.py"],
        ["compile", "--no-such-option"],
        ["compile", "flows/waiterflow.py", "flows/waiterflow.py", "--out-dir", "d"],
        ["explain"],
    ],
)
def test_usage_errors_exit_2(project: Path, args: list[str]) -> None:
    result = run(*args, input="")
    assert result.exit_code == 2, result.output
    assert "Error:" in result.stderr
    assert not (project / "a.py").exists() and not (project / "d").exists()


def test_never_overwrites_an_input(project: Path) -> None:
    flow = project / "flows" / "waiterflow.py"
    before = flow.read_bytes()
    result = run("compile", "flows/waiterflow.py", "-o", "flows/waiterflow.py")
    assert result.exit_code == 2
    assert "refusing to overwrite the input file flows/waiterflow.py" in result.stderr
    # Another spelling of the same file, and an --out-dir that maps the inputs onto themselves.
    assert run("compile", "flows/waiterflow.py", "-o", str(flow)).exit_code == 2
    assert (
        run("compile", "flows/waiterflow.py", "-o", "flows/../flows/waiterflow.py").exit_code == 2
    )
    assert (
        run(
            "compile", "flows/waiterflow.py", "flows/team/teamflow.py", "--out-dir", "flows"
        ).exit_code
        == 2
    )
    assert run("compile", "--out-dir", "flows").exit_code == 2
    assert flow.read_bytes() == before


def test_internal_error_is_one_line_and_exit_123() -> None:
    @click.command()
    @guard_internal_errors
    def boom() -> None:
        raise ValueError("no such\n  thing")

    result = CliRunner().invoke(boom, [])
    assert result.exit_code == 123
    assert result.stderr == (
        "error: internal error: ValueError: no such thing "
        "(please report this at the decoflow issue tracker)\n"
    )


def test_a_compiler_crash_is_never_a_traceback(tmp_path: Path) -> None:
    """A decorator deep enough to exhaust the compiler's recursion: exit 123, one line.

    (If the compiler learns to report this as a diagnostic, exit 1 is right too.)
    """
    (tmp_path / "deep.py").write_text(
        "from metaflow import FlowSpec, step, user_step_decorator\n"
        "@user_step_decorator\n"
        "def deep(step_name, flow, inputs=None, attributes=None):\n"
        f"    x = {'-' * 3000}1\n"
        "    yield\n"
        "class DeepFlow(FlowSpec):\n"
        "    @deep\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
    )
    result = run_script("compile", "deep.py", cwd=tmp_path)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    assert result.returncode in (1, 123), stderr
    if result.returncode == 123:
        assert stderr.startswith("error: internal error: ")
        assert stderr.endswith("(please report this at the decoflow issue tracker)\n")
        assert stderr.count("\n") == 1


# -- processes and determinism ------------------------------------------------------------


def many_flows(root: Path, count: int) -> None:
    for index in range(count):
        (root / "flows" / f"w{index:02d}flow.py").write_text(
            WAITER.replace("WaiterFlow", f"Waiter{index}Flow")
        )


def test_many_files_in_parallel_processes_report_in_order(project: Path) -> None:
    many_flows(project, 12)
    result = run_script("compile", "-j", "4", cwd=project)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    expected = [
        "wrote build/team/teamflow.py",
        *(f"wrote build/w{i:02d}flow.py" for i in range(12)),
        "wrote build/waiterflow.py",
    ]
    assert lines == expected
    parallel = snapshot(project / "build")
    serial = run_script("compile", "-j", "1", "--out-dir", "serial", cwd=project)
    assert serial.returncode == 0
    assert snapshot(project / "serial") == parallel


def test_output_does_not_depend_on_cwd_path_form_or_hash_seed(
    project: Path, tmp_path: Path
) -> None:
    flow = project / "flows" / "waiterflow.py"
    runs = [
        run_script("compile", "flows/waiterflow.py", cwd=project, env={"PYTHONHASHSEED": "0"}),
        run_script("compile", str(flow), cwd=Path("/"), env={"PYTHONHASHSEED": "1"}),
        run_script(
            "compile",
            "../waiterflow.py",
            cwd=project / "flows" / "team",
            env={"PYTHONHASHSEED": "12345"},
        ),
        run_script("compile", str(flow), cwd=tmp_path, env={"PYTHONHASHSEED": "random"}),
    ]
    for result in runs:
        assert result.returncode == 0, result.stderr
    outputs = {result.stdout for result in runs}
    assert len(outputs) == 1
    text = outputs.pop().decode()
    assert str(project) not in text and str(tmp_path) not in text
    assert "flows/waiterflow.py" in text  # named relative to the project root

    # Configured builds from two folders (and a copy of the project elsewhere) agree too.
    assert run_script("compile", cwd=project, env={"PYTHONHASHSEED": "3"}).returncode == 0
    first = snapshot(project / "build")
    copy = make_project(tmp_path / "elsewhere" / "copy")
    assert run_script("compile", cwd=copy / "flows", env={"PYTHONHASHSEED": "4"}).returncode == 0
    assert snapshot(copy / "build") == first
    assert not any(str(tmp_path).encode() in data for data in first.values())


def test_python_dash_m_decoflow(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "decoflow", "compile", "flows/waiterflow.py"],
        cwd=project,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == run("compile", "flows/waiterflow.py").stdout


# -- explain ------------------------------------------------------------------------------


def test_explain_runs(project: Path) -> None:
    result = run("explain", "flows/waiterflow.py")
    assert result.exit_code == 0, result.output
    assert "my_profile" in result.stdout
    assert "wait" in result.stdout


def test_explain_one_step(project: Path) -> None:
    result = run("explain", "flows/waiterflow.py", "--step", "wait")
    assert result.exit_code == 0, result.output
    assert "wait" in result.stdout


def test_explain_unknown_step_is_a_usage_error(project: Path) -> None:
    result = run("explain", "flows/waiterflow.py", "--step", "nosuch")
    assert result.exit_code == 2
    assert "nosuch" in result.stderr


def test_explain_reports_diagnostics(project: Path) -> None:
    break_flow(project / "flows" / "waiterflow.py")
    result = run("explain", "flows/waiterflow.py")
    assert result.exit_code == 1
    assert result.stderr.startswith("flows/waiterflow.py:")
