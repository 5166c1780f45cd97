"""The cache of compiled flows (`decoflow.cache`, `.decoflow_cache/`).

What a hit depends on (exactly the flows whose inputs changed recompile), that a hit is the
compiled output byte for byte without importing libcst, and that the cache is never
trusted when it is damaged and never in the way when it cannot be written.

Which flows a run compiled is seen by counting `project.compile_task` calls in process
(`-j 1`: no worker processes).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from decoflow import cache as cache_module
from decoflow import project as project_module
from decoflow.cli import main
from projects import PROFILER, WAITER, make_project

_SCRIPT = Path(sys.executable).with_name("decoflow")
DECOFLOW = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "decoflow"]
REPO_ROOT = Path(__file__).resolve().parent.parent

DECO = textwrap.dedent(
    """\
    from metaflow import user_step_decorator

    @user_step_decorator
    def {name}(step_name, flow, inputs=None, attributes=None):
        print("{name} before")
        yield
        print("{name} after")
    """
)

FLOW = textwrap.dedent(
    """\
    from metaflow import FlowSpec, step

    from {module} import {name}

    class Flow{index}(FlowSpec):

        @{name}
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
    """
)

CONFIG = textwrap.dedent(
    """\
    [tool.decoflow]
    flows = ["flows/*flow.py"]
    out-dir = "build"
    """
)


@pytest.fixture(autouse=True)
def _no_cache_dir_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cache_module.ENV_VAR, raising=False)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    cache_module.environment.cache_clear()


@pytest.fixture
def two_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Six flows: three use `decos_a.alpha`, three `decos_b.beta`; plus a module no flow reads."""
    root = tmp_path / "repo"
    flows = root / "flows"
    flows.mkdir(parents=True)
    (root / "pyproject.toml").write_text(CONFIG)
    (flows / "decos_a.py").write_text(DECO.format(name="alpha"))
    (flows / "decos_b.py").write_text(DECO.format(name="beta"))
    (flows / "unused.py").write_text("X = 1\n")
    for i in range(6):
        module, name = ("decos_a", "alpha") if i % 2 == 0 else ("decos_b", "beta")
        (flows / f"f{i}flow.py").write_text(FLOW.format(module=module, name=name, index=i))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the flows each run compiles (the run must use `-j 1`)."""
    names: list[str] = []
    real = project_module.compile_task

    def counting(task: project_module.Task) -> project_module.Outcome:
        names.append(task.path.name)
        return real(task)

    monkeypatch.setattr(project_module, "compile_task", counting)
    return names


def run(*args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(
        main, ["compile", "-j", "1", *args], input=input, catch_exceptions=False
    )


def outputs(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "build").glob("*.py"))}


def entries(root: Path) -> list[Path]:
    return sorted(
        p
        for p in (root / ".decoflow_cache").rglob("*")
        if p.is_file() and p.parent.name != ".decoflow_cache"
    )


ALPHA = ["f0flow.py", "f2flow.py", "f4flow.py"]
ALL = [f"f{i}flow.py" for i in range(6)]


def test_a_warm_run_compiles_nothing_and_writes_the_same_bytes(
    two_modules: Path, compiled: list[str]
) -> None:
    assert run().exit_code == 0
    assert compiled == ALL
    first = outputs(two_modules)
    compiled.clear()
    shutil_rmtree(two_modules / "build")
    result = run()
    assert result.exit_code == 0, result.output
    assert compiled == []
    assert outputs(two_modules) == first
    assert run("--check").exit_code == 0
    assert compiled == []


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def test_editing_a_decorator_module_recompiles_exactly_the_flows_that_read_it(
    two_modules: Path, compiled: list[str]
) -> None:
    assert run().exit_code == 0
    compiled.clear()
    deco = two_modules / "flows" / "decos_a.py"
    deco.write_text(deco.read_text().replace("alpha after", "alpha done"))
    result = run("--check")
    assert result.exit_code == 1
    assert compiled == ALPHA
    assert result.stderr.splitlines() == [f"would rewrite build/{name}" for name in ALPHA]
    compiled.clear()
    assert run().exit_code == 0
    assert compiled == []  # --check kept what it compiled
    assert b"alpha done" in (two_modules / "build" / "f0flow.py").read_bytes()
    assert run("--check").exit_code == 0
    assert compiled == []


def test_editing_a_module_no_flow_reads_recompiles_nothing(
    two_modules: Path, compiled: list[str]
) -> None:
    assert run().exit_code == 0
    compiled.clear()
    (two_modules / "flows" / "unused.py").write_text("X = 2\n")
    (two_modules / "flows" / "other.py").write_text("Y = 1\n")
    assert run("--check").exit_code == 0
    assert compiled == []


def test_editing_a_flow_recompiles_that_flow(two_modules: Path, compiled: list[str]) -> None:
    assert run().exit_code == 0
    compiled.clear()
    flow = two_modules / "flows" / "f3flow.py"
    flow.write_text(flow.read_text().replace("pass", "print('end')"))
    assert run().exit_code == 0
    assert compiled == ["f3flow.py"]


def test_a_module_appearing_earlier_on_the_search_path_recompiles(
    two_modules: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup's misses are dependencies: `decos_c` is found on PYTHONPATH, after the flow's
    own folder; a `decos_c.py` beside the flows then shadows it."""
    lib = two_modules / "lib"
    lib.mkdir()
    (lib / "decos_c.py").write_text(DECO.format(name="gamma"))
    (two_modules / "flows" / "f9flow.py").write_text(
        FLOW.format(module="decos_c", name="gamma", index=9)
    )
    monkeypatch.setenv("PYTHONPATH", str(lib))
    assert run().exit_code == 0
    compiled.clear()
    (two_modules / "flows" / "decos_c.py").write_text(
        DECO.format(name="gamma").replace("before", "first")
    )
    assert run().exit_code == 0
    assert compiled == ["f9flow.py"]
    assert b"gamma first" in (two_modules / "build" / "f9flow.py").read_bytes()


def test_a_new_package_init_recompiles_the_flows_that_looked_for_it(
    two_modules: Path, compiled: list[str]
) -> None:
    """`decos_a.py` would be shadowed by a package `decos_a/` with an `__init__.py`."""
    assert run().exit_code == 0
    compiled.clear()
    package = two_modules / "flows" / "decos_a"
    package.mkdir()
    assert run("--check").exit_code == 0  # a namespace folder does not shadow a module
    assert compiled == []
    (package / "__init__.py").write_text(DECO.format(name="alpha").replace("before", "pkg"))
    assert run().exit_code == 0
    assert compiled == ALPHA
    assert b"alpha pkg" in (two_modules / "build" / "f0flow.py").read_bytes()


def test_options_are_part_of_the_key(two_modules: Path, compiled: list[str]) -> None:
    assert run().exit_code == 0
    compiled.clear()
    assert run("--with", "retry:times=2", "--check").exit_code == 1
    assert compiled == ALL
    compiled.clear()
    assert run("--check").exit_code == 0
    assert compiled == []


def test_a_new_decoflow_version_invalidates_every_entry(
    two_modules: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run().exit_code == 0
    compiled.clear()
    monkeypatch.setattr(cache_module, "__version__", "99.0")
    cache_module.environment.cache_clear()
    assert run().exit_code == 0
    assert compiled == ALL
    assert (two_modules / ".decoflow_cache" / "99.0").is_dir()


def test_an_edit_of_decoflow_sources_invalidates_every_entry(
    two_modules: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run().exit_code == 0
    compiled.clear()
    monkeypatch.setattr(cache_module, "source_digest", lambda: "edited")
    cache_module.environment.cache_clear()
    assert run().exit_code == 0
    assert compiled == ALL


def test_the_source_digest_covers_every_shipped_package() -> None:
    """Every package pyproject.toml ships is hashed (an edit of any of it invalidates)."""
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    folders = set(config["tool"]["setuptools"]["package-dir"].values()) - {"."}
    covered = {folder.split("/")[0] for folder in folders}
    assert covered <= set(cache_module.PACKAGE_FOLDERS), covered


def reencoded(blob: bytes, change) -> bytes:
    """The entry with its metadata fields changed and a checksum that matches them."""
    decoded = cache_module._decode(blob)
    assert decoded is not None
    return cache_module._encode(change(decoded[0]), decoded[1])


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[: len(blob) // 2],  # truncated
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),  # a flipped bit in the output
        lambda blob: blob.replace(b"\0", b"\0x", 1),  # metadata changed, checksum not
        lambda blob: reencoded(blob, lambda meta: [meta[0], "0" * 40, *meta[2:]]),  # another flow
        lambda blob: reencoded(blob, lambda meta: [*meta[:2], "many", *meta[3:]]),  # bad shape
        lambda blob: reencoded(blob, lambda meta: meta[:-1]),  # a field missing
        lambda blob: b"",
        lambda blob: b"\x80\x04garbage",  # foreign
        lambda blob: cache_module.MAGIC + b"0" * 40 + b"\n2\nab\nprint()\n",  # a bad checksum
    ],
    ids=[
        "truncated",
        "bit-flip",
        "meta",
        "other-flow",
        "shape",
        "field",
        "empty",
        "foreign",
        "checksum",
    ],
)
def test_a_damaged_entry_is_ignored_and_rebuilt(
    two_modules: Path, compiled: list[str], damage
) -> None:
    assert run().exit_code == 0
    good = outputs(two_modules)
    for entry in entries(two_modules):
        entry.write_bytes(damage(entry.read_bytes()))
    compiled.clear()
    shutil_rmtree(two_modules / "build")
    assert run().exit_code == 0
    assert compiled == ALL
    assert outputs(two_modules) == good
    compiled.clear()
    assert run("--check").exit_code == 0
    assert compiled == []


def test_a_well_formed_entry_for_another_flow_is_not_trusted(
    two_modules: Path, compiled: list[str]
) -> None:
    assert run().exit_code == 0
    found = entries(two_modules)
    swapped = found[0].read_bytes()
    found[1].write_bytes(swapped)  # a whole, valid entry under the wrong name
    compiled.clear()
    assert run("--check").exit_code == 0
    assert len(compiled) == 1


def test_no_cache_neither_reads_nor_writes(two_modules: Path, compiled: list[str]) -> None:
    assert run("--no-cache").exit_code == 0
    assert not (two_modules / ".decoflow_cache").exists()
    assert run().exit_code == 0
    compiled.clear()
    assert run("--no-cache", "--check").exit_code == 0
    assert compiled == ALL


def test_the_cache_folder_ignores_itself_and_is_tagged(two_modules: Path) -> None:
    assert run().exit_code == 0
    folder = two_modules / ".decoflow_cache"
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (
        (folder / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    subprocess.run(["git", "init", "-q"], cwd=two_modules, check=True)
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=two_modules,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ".decoflow_cache" not in status.stdout


def test_decoflow_cache_dir(
    two_modules: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiled: list[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv(cache_module.ENV_VAR, str(elsewhere))
    assert run().exit_code == 0
    assert not (two_modules / ".decoflow_cache").exists()
    assert (elsewhere / "CACHEDIR.TAG").is_file()
    compiled.clear()
    assert run("--check").exit_code == 0
    assert compiled == []


def test_an_unwritable_cache_only_loses_the_speed_up(
    two_modules: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiled: list[str]
) -> None:
    """A cache folder that cannot be created (below a regular file: fails even as root)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(cache_module.ENV_VAR, str(blocker / "cache"))
    result = run()
    assert result.exit_code == 0
    assert result.stderr == "".join(f"wrote build/{name}\n" for name in ALL)
    compiled.clear()
    quiet = run("--check")
    assert (quiet.exit_code, quiet.stderr) == (0, "")
    assert compiled == ALL
    verbose = run("--check", "-v")
    notes = [line for line in verbose.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "cache could not be written" in notes[0]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT])
def test_a_full_or_read_only_cache_only_loses_the_speed_up(
    two_modules: Path, monkeypatch: pytest.MonkeyPatch, compiled: list[str], code: int
) -> None:
    """Writing the cache fails (a full disk, a read-only file system or folder, a quota);
    simulated, as root writes anywhere."""

    def failing(path: Path, data: bytes) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(cache_module, "write_atomic", failing)
    result = run()
    assert result.exit_code == 0
    assert len(outputs(two_modules)) == 6
    assert "note" not in result.stderr
    assert compiled == ALL  # one failure stops the writes of the run, not the compiles
    verbose = run("-v", "--check")
    assert (verbose.exit_code, verbose.stderr.count("note: the cache could not be written")) == (
        0,
        1,
    )
    assert os.strerror(code) in verbose.stderr


def unprivileged(check: Callable[[], None], folder: Path) -> None:
    """Run `check` where folder permissions hold: here, or (as root, who writes anywhere) in
    a forked child that has become `nobody`, with the folders above `folder` made passable.
    A failed assertion in the child fails the test with the child's traceback."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        check()
        return
    passable = {p: p.stat().st_mode for p in folder.parents if not p.stat().st_mode & 0o001}
    for path in passable:
        path.chmod(path.stat().st_mode | 0o001)
    read, write = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # the child: report, then leave without running pytest's teardown
            os.close(read)
            status = 1
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                check()
                status = 0
            except BaseException:  # noqa: BLE001 - reported to the parent
                os.write(write, traceback.format_exc().encode())
            finally:
                os._exit(status)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            report = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
    finally:
        for path, mode in passable.items():
            path.chmod(mode)
    assert os.waitstatus_to_exitcode(status) == 0, report


def test_a_read_only_cache_folder_is_still_read(two_modules: Path, compiled: list[str]) -> None:
    """Checked with real permissions: as a user who may read the cache but not write it."""
    assert run().exit_code == 0
    for path in [two_modules, *two_modules.rglob("*")]:  # the project stays the user's
        path.chmod(path.stat().st_mode | (0o777 if path.is_dir() else 0o666))
    folder = two_modules / ".decoflow_cache"
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)

    def check() -> None:
        with pytest.raises(PermissionError):  # the folder really is read-only here
            (folder / "probe").write_bytes(b"")
        compiled.clear()
        assert run("--check").exit_code == 0
        assert compiled == []
        (two_modules / "flows" / "f0flow.py").write_text(
            FLOW.format(module="decos_b", name="beta", index=0)
        )
        assert run().exit_code == 0
        assert compiled == ["f0flow.py"]

    try:
        unprivileged(check, two_modules)
    finally:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_file_changed_while_it_was_compiled_is_not_cached(tmp_path: Path) -> None:
    from decoflow.transformer import Reads

    module = tmp_path / "m.py"
    module.write_text("X = 1\n")
    st = module.stat()
    cache = cache_module.Cache(tmp_path / "cache")
    flow = tmp_path / "flow.py"
    flow.write_text("print()\n")
    found = cache.lookup(flow, "options")
    assert found is not None and found.output is None
    stale = Reads(files={module: (st.st_size, st.st_mtime_ns - 1)})
    cache.store(found, b"out", stale)
    assert cache.lookup(flow, "options").output is None
    fresh = Reads(files={module: (st.st_size, st.st_mtime_ns)})
    cache.store(found, b"out", fresh)
    assert cache_module.Cache(tmp_path / "cache").lookup(flow, "options").output == b"out"


def test_failures_and_stdin_are_not_cached(two_modules: Path, compiled: list[str]) -> None:
    broken = two_modules / "flows" / "f1flow.py"
    broken.write_text(broken.read_text().replace("from decos_b", "from nosuchmodule"))
    assert run().exit_code == 1
    compiled.clear()
    assert run().exit_code == 1
    assert compiled == ["f1flow.py"]
    source = (two_modules / "flows" / "f0flow.py").read_bytes()
    compiled.clear()
    for _ in range(2):
        result = run("-", "--stdin-filename", "flows/f0flow.py", input=source)
        assert result.exit_code == 0
    assert compiled == ["f0flow.py", "f0flow.py"]


def test_one_file_to_stdout_is_served_from_the_cache(
    two_modules: Path, compiled: list[str]
) -> None:
    first = run("flows/f0flow.py")
    second = run("flows/f0flow.py")
    assert compiled == ["f0flow.py"]
    assert first.stdout_bytes == second.stdout_bytes
    assert b"alpha before" in second.stdout_bytes


def test_concurrent_writers_leave_a_valid_cache(two_modules: Path) -> None:
    """Four processes compile the same flows into the same cache at once."""
    for i in range(6, 30):
        (two_modules / "flows" / f"f{i}flow.py").write_text(
            FLOW.format(module="decos_a", name="alpha", index=i)
        )
    env = {k: v for k, v in os.environ.items() if k != cache_module.ENV_VAR}
    procs = [
        subprocess.Popen(
            [*DECOFLOW, "compile", "--out-dir", f"out{n}", "-q", "-j", "2"],
            cwd=two_modules,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    reference = {p.name: p.read_bytes() for p in (two_modules / "out0").glob("*.py")}
    assert len(reference) == 30
    for n in range(1, 4):
        assert {p.name: p.read_bytes() for p in (two_modules / f"out{n}").glob("*.py")} == reference
    found = entries(two_modules)
    assert len(found) == 30
    assert all(cache_module._decode(p.read_bytes()) is not None for p in found)
    assert not [p for p in (two_modules / ".decoflow_cache").rglob("*.tmp")]
    check = subprocess.run(
        [*DECOFLOW, "compile", "--out-dir", "out0", "--check"],
        cwd=two_modules,
        env=env,
        capture_output=True,
    )
    assert check.returncode == 0, check.stderr


def warm_check_imports(root: Path) -> set[str]:
    """The modules a `decoflow compile --check` imports after a `decoflow compile`."""
    env = {k: v for k, v in os.environ.items() if k != cache_module.ENV_VAR}
    assert subprocess.run([*DECOFLOW, "compile", "-q"], cwd=root, env=env).returncode == 0
    warm = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "decoflow", "compile", "--check"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert warm.returncode == 0, warm.stderr
    return {
        line.split("|")[-1].strip()
        for line in warm.stderr.splitlines()
        if line.startswith("import time:")
    }


def test_a_warm_check_does_not_import_libcst(two_modules: Path) -> None:
    imported = warm_check_imports(two_modules)
    assert "decoflow.cache" in imported
    assert not [name for name in imported if name.split(".")[0] in ("libcst", "metaflow")]
    compiler = {name for name in imported if name.startswith("decoflow.transformer.")}
    assert compiler <= {
        "decoflow.transformer.options",
        "decoflow.transformer.support",
        "decoflow.transformer.support.diagnostics",
        "decoflow.transformer.support.paths",
        "decoflow.transformer.support.reads",
        "decoflow.transformer.support.records",  # `@frozen`, for the records it shares
    }, compiler


def test_clean_removes_the_cache(
    two_modules: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run().exit_code == 0
    assert (two_modules / ".decoflow_cache").is_dir()
    (two_modules / "flows").joinpath("sub").mkdir()
    monkeypatch.chdir(two_modules / "flows" / "sub")  # anywhere in the project
    result = CliRunner().invoke(main, ["clean"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "removed" in result.stderr
    assert not (two_modules / ".decoflow_cache").exists()
    again = CliRunner().invoke(main, ["clean"], catch_exceptions=False)
    assert (again.exit_code, again.output) == (0, "")
    compiled.clear()
    monkeypatch.chdir(two_modules)
    assert run().exit_code == 0
    assert compiled == ALL


def test_clean_refuses_a_folder_that_is_not_a_cache(
    two_modules: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("keep me")
    monkeypatch.setenv(cache_module.ENV_VAR, str(precious))
    result = CliRunner().invoke(main, ["clean"], catch_exceptions=False)
    assert result.exit_code == 2
    assert (precious / "data.txt").read_text() == "keep me"


def test_the_pre_commit_project_layout_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repository of the CLI tests: hook-style runs write, then pass, then see an edit
    of the decorator module (the pre-commit hook runs exactly this command)."""
    root = make_project(tmp_path / "repo")
    monkeypatch.chdir(root)
    hook = ["--exit-nonzero-on-change"]
    assert run(*hook).exit_code == 1
    assert run(*hook).exit_code == 0
    profiler = root / "flows" / "myprofiler.py"
    profiler.write_text(PROFILER.replace("completed in", "took"))
    result = run(*hook)
    assert (result.exit_code, result.stderr) == (1, "wrote build/waiterflow.py\n")
    assert "took" in (root / "build" / "waiterflow.py").read_text()
    assert WAITER  # the flow itself is unchanged


def test_warnings_are_printed_again_on_a_hit(two_modules: Path, compiled: list[str]) -> None:
    """A flow that compiles with a warning (DF601) prints it on every run, hit or not."""
    deco = two_modules / "flows" / "decos_a.py"
    deco.write_text(
        deco.read_text()
        .replace("from metaflow", "import inspect\nfrom metaflow")
        .replace(
            "    yield\n",
            "    flow.where = inspect.getsourcelines(getattr(flow, step_name))[1]\n    yield\n",
        )
    )
    first = run("--check")
    assert first.exit_code == 1
    warnings = [line for line in first.stderr.splitlines() if not line.startswith("would rewrite")]
    assert any("DF601" in line for line in warnings), first.stderr
    assert compiled == ALL
    compiled.clear()
    second = run("--check")
    assert compiled == []
    assert second.stderr == first.stderr


# -- expanded flows: the Metaflow install and the config files are part of the key -----------

MUTATORS = textwrap.dedent(
    """\
    from metaflow import FlowMutator, user_step_decorator

    @user_step_decorator
    def stamp(step_name, flow, inputs=None, attributes=None):
        yield
        flow.stamped = attributes.get("label")

    class hardened(FlowMutator):
        def mutate(self, mutable_flow):
            for name, step in mutable_flow.steps:
                step.add_decorator("retry", deco_kwargs={"times": 2})
                step.add_decorator(stamp, deco_kwargs={"label": name})
    """
)

MUTATED = textwrap.dedent(
    """\
    from metaflow import Config, FlowSpec, step

    from mutators import hardened

    @hardened
    class MutatedFlow(FlowSpec):
        cfg = Config("cfg", default="cfg.json")

        @step
        def start(self):
            print(self.cfg.label)
            self.next(self.end)

        @step
        def end(self):
            pass
    """
)


@pytest.fixture
def mixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A plain flow (f0flow.py) and one whose decorators come from a flow mutator and that
    reads a config file (mutflow.py); and a fake Metaflow install, `site/`, that the
    interpreter's search path is made to start with (Metaflow itself is the real one)."""
    root = tmp_path / "repo"
    flows = root / "flows"
    flows.mkdir(parents=True)
    (root / "pyproject.toml").write_text(CONFIG)
    (flows / "decos_a.py").write_text(DECO.format(name="alpha"))
    (flows / "f0flow.py").write_text(FLOW.format(module="decos_a", name="alpha", index=0))
    (flows / "mutators.py").write_text(MUTATORS)
    (flows / "mutflow.py").write_text(MUTATED)
    (flows / "cfg.json").write_text('{"label": "one"}')
    site = tmp_path / "site"
    install_fake_metaflow(site, "2.19.39")
    monkeypatch.setattr(
        cache_module, "interpreter_path", lambda python: (str(site),), raising=False
    )
    monkeypatch.chdir(root)
    return root


def install_fake_metaflow(site: Path, version: str) -> None:
    """What `record_metaflow` looks at: `metaflow/version.py` and the dist-info's RECORD."""
    for old in site.glob("metaflow-*.dist-info"):
        shutil_rmtree(old)
    (site / "metaflow").mkdir(parents=True, exist_ok=True)
    (site / "metaflow" / "version.py").write_text(f'metaflow_version = "{version}"\n')
    info = site / f"metaflow-{version}.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(f"metaflow/version.py,sha256={version},40\n")


def test_a_new_metaflow_install_recompiles_the_expanded_flows_only(
    mixed: Path, compiled: list[str]
) -> None:
    result = run()
    assert result.exit_code == 0, result.output
    assert set(compiled) == {"f0flow.py", "mutflow.py"}
    compiled.clear()
    assert run("--check").exit_code == 0
    assert compiled == []
    install_fake_metaflow(mixed.parent / "site", "2.19.40")  # an upgrade
    assert run("--check").exit_code == 0
    assert set(compiled) == {"mutflow.py"}
    compiled.clear()
    assert run("--check").exit_code == 0
    assert compiled == []
    record = mixed.parent / "site" / "metaflow-2.19.40.dist-info" / "RECORD"
    record.write_text(record.read_text() + "metaflow/new.py,sha256=x,1\n")  # same version
    assert run("--check").exit_code == 0
    assert set(compiled) == {"mutflow.py"}


def test_a_metaflow_appearing_earlier_on_the_path_recompiles_the_expanded_flows(
    mixed: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = mixed.parent / "user-site"
    earlier.mkdir()
    site = mixed.parent / "site"
    monkeypatch.setattr(
        cache_module, "interpreter_path", lambda python: (str(earlier), str(site)), raising=False
    )
    assert run().exit_code == 0
    compiled.clear()
    install_fake_metaflow(earlier, "2.19.39")
    assert run("--check").exit_code == 0
    assert set(compiled) == {"mutflow.py"}


def test_an_editable_metaflow_is_not_trusted_by_the_cache(
    mixed: Path, compiled: list[str]
) -> None:
    """`pip install -e` Metaflow: its files change without a reinstall, so an expanded flow's
    entry is not stored (a static flow's still is)."""
    info = next((mixed.parent / "site").glob("metaflow-*.dist-info"))
    (info / "direct_url.json").write_text(
        '{"url": "file:///src/metaflow", "dir_info": {"editable": true}}'
    )
    assert run().exit_code == 0
    compiled.clear()
    assert run("--check").exit_code == 0
    assert set(compiled) == {"mutflow.py"}


def test_metaflow_extensions_are_part_of_an_expanded_flows_entry(
    mixed: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extension package installed, edited or removed recompiles the expanded flows."""
    site = mixed.parent / "site"
    extra = mixed.parent / "extra"
    extra.mkdir()
    monkeypatch.setattr(
        cache_module, "interpreter_path", lambda python: (str(extra), str(site)), raising=False
    )
    assert run().exit_code == 0
    compiled.clear()
    plugin = extra / "metaflow_extensions" / "org" / "plugins" / "__init__.py"
    plugin.parent.mkdir(parents=True)
    plugin.write_text("STEP_DECORATORS_DESC = []\n")  # installed
    assert run("--check").exit_code == 0
    assert set(compiled) == {"mutflow.py"}
    compiled.clear()
    assert run("--check").exit_code == 0
    assert compiled == []
    plugin.write_text("STEP_DECORATORS_DESC = [('x', '.x.X')]\n")  # edited
    assert run("--check").exit_code == 0
    assert set(compiled) == {"mutflow.py"}
    compiled.clear()
    shutil_rmtree(extra / "metaflow_extensions")  # removed
    assert run("--check").exit_code == 0
    assert set(compiled) == {"mutflow.py"}


def test_editing_a_config_file_an_expanded_flow_read_recompiles_it(
    mixed: Path, compiled: list[str]
) -> None:
    assert run().exit_code == 0
    compiled.clear()
    (mixed / "flows" / "cfg.json").write_text('{"label": "two"}')
    result = run("--check")
    assert result.exit_code == 1
    assert set(compiled) == {"mutflow.py"}
    assert result.stderr.splitlines() == ["would rewrite build/mutflow.py"]
    compiled.clear()
    assert run().exit_code == 0
    assert b"two" in (mixed / "build" / "mutflow.py").read_bytes()


def test_a_warm_check_of_an_expanded_flow_imports_neither_libcst_nor_metaflow(
    mixed: Path,
) -> None:
    imported = warm_check_imports(mixed)  # another process: the real interpreter_path
    assert "decoflow.cache" in imported
    assert not [name for name in imported if name.split(".")[0] in ("libcst", "metaflow")]
    assert not [name for name in imported if name.startswith("decoflow.transformer.expansion")]


def test_an_expanded_flow_hits_without_a_process_for_the_interpreter_given(
    mixed: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `--python`, the interpreter's search path is asked once, when the entry is
    stored; a hit starts no process at all (nor imports Metaflow) and the entry names the
    real Metaflow install."""
    monkeypatch.undo()  # the real interpreter_path
    monkeypatch.chdir(mixed)
    getattr(cache_module, "_INTERPRETER_PATHS", {}).clear()
    # a name looked up on PATH (a path to a venv's python is resolved to the interpreter it
    # links to, outside the venv: a cli/project issue, reported)
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.prefix, "bin")), os.environ["PATH"]]))
    python = "python"
    result = run("--python", python)
    assert result.exit_code == 0, result.output
    [entry] = [p for p in entries(mixed) if b"mutflow.py" in p.read_bytes()]
    fields = cache_module._decode(entry.read_bytes())[0]
    assert any(f.endswith(".dist-info/RECORD") and "/metaflow-" in f for f in fields)
    compiled.clear()
    getattr(cache_module, "_INTERPRETER_PATHS", {}).clear()

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert run("--python", python, "--check").exit_code == 0
    assert compiled == []


# -- pruning -----------------------------------------------------------------------------

DAY = 86400.0


def age(path: Path, days: float) -> None:
    """Make `path` look last used `days` ago."""
    when = os.stat(path).st_mtime - days * DAY
    os.utime(path, (when, when))


def unused_entry(root: Path, days: float) -> Path:
    """An entry no flow looks up any more (say, from before an edit of decoflow's sources),
    last used `days` ago."""
    some = entries(root)[0]
    path = some.with_name("0" * 40)
    path.write_bytes(some.read_bytes())
    age(path, days)
    return path


def add_flow(root: Path, index: int) -> None:
    flow = FLOW.format(module="decos_a", name="alpha", index=index)
    (root / "flows" / f"f{index}flow.py").write_text(flow)


def test_entries_unused_for_long_are_pruned_by_a_run_that_writes(
    two_modules: Path, compiled: list[str]
) -> None:
    assert run().exit_code == 0
    cache = two_modules / ".decoflow_cache"
    used = entries(two_modules)
    for entry in used:
        age(entry, 40)  # used by this run again: marked used, kept
    stale = unused_entry(two_modules, 31)
    recent = unused_entry(two_modules, 29)
    recent = recent.rename(recent.with_name("1" * 40))
    other = cache / "0.0.1"  # an older decoflow's entries
    other.mkdir()
    (other / "old-entry").write_bytes(b"x")
    age(other / "old-entry", 40)
    version = stale.parent
    (version / ".a.1.x.decoflow-tmp").write_bytes(b"x")  # left by a killed process
    age(version / ".a.1.x.decoflow-tmp", 0.1)
    (version / ".b.2.y.decoflow-tmp").write_bytes(b"x")  # being written right now
    age(cache / "last-pruned", 2)
    compiled.clear()
    add_flow(two_modules, 9)
    assert run().exit_code == 0
    assert compiled == ["f9flow.py"]
    left = entries(two_modules)
    assert stale not in left
    assert set(used) | {recent} <= set(left)
    assert len(left) == len(used) + 3  # f9flow's entry, and the fresh temporary file
    assert not other.exists()
    assert not (version / ".a.1.x.decoflow-tmp").exists()
    assert (version / ".b.2.y.decoflow-tmp").exists()


def test_pruning_runs_at_most_once_a_day(two_modules: Path, compiled: list[str]) -> None:
    assert run().exit_code == 0
    stale = unused_entry(two_modules, 31)
    add_flow(two_modules, 9)
    assert run().exit_code == 0
    assert stale.exists()  # pruned when the cache was made, less than a day ago
    age(two_modules / ".decoflow_cache" / "last-pruned", 1.1)
    assert run().exit_code == 0
    assert stale.exists()  # a run that writes nothing does not prune
    add_flow(two_modules, 8)
    assert run().exit_code == 0
    assert not stale.exists()


def test_a_hit_marks_its_entry_used(two_modules: Path, compiled: list[str]) -> None:
    """A hit on an entry last marked more than a day ago marks it again (so that it is not
    pruned while in use); within the day it writes nothing."""
    assert run().exit_code == 0
    compiled.clear()
    old, recent, *_ = entries(two_modules)
    age(old, 25)
    age(recent, 0.5)
    before = os.stat(recent).st_mtime
    assert run("--check").exit_code == 0
    assert compiled == []
    assert os.stat(old).st_mtime > before
    assert os.stat(recent).st_mtime == before


def test_the_least_recently_used_entries_go_beyond_the_size_cap(
    two_modules: Path, compiled: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run().exit_code == 0
    found = entries(two_modules)
    for n, entry in enumerate(found):
        age(entry, 10 - n)  # found[0] is the least recently used
    size = sum(p.stat().st_size for p in found)
    monkeypatch.setattr(cache_module, "MAX_BYTES", size - 1)
    assert cache_module.prune(two_modules / ".decoflow_cache") == 1
    assert entries(two_modules) == found[1:]
    compiled.clear()
    assert run("--check").exit_code == 0
    assert len(compiled) == 1


def test_pruning_a_missing_cache_is_not_an_error(tmp_path: Path) -> None:
    assert cache_module.prune(tmp_path / "absent") == 0
    cache_module.prune_if_due(tmp_path / "absent" / "deeper")


def test_editing_a_config_file_given_in_pyproject_recompiles_its_flow(
    mixed: Path, compiled: list[str]
) -> None:
    """`[tool.decoflow.config."flows/mutflow.py"] cfg = "conf/other.json"` (as `--config`)."""
    (mixed / "conf").mkdir()
    (mixed / "conf" / "other.json").write_text('{"label": "given"}')
    (mixed / "pyproject.toml").write_text(
        CONFIG + '\n[tool.decoflow.config."flows/mutflow.py"]\ncfg = "conf/other.json"\n'
    )
    assert run().exit_code == 0
    assert b"given" in (mixed / "build" / "mutflow.py").read_bytes()
    compiled.clear()
    assert run("--check").exit_code == 0
    assert compiled == []
    (mixed / "conf" / "other.json").write_text('{"label": "edited"}')
    assert run().exit_code == 0
    assert set(compiled) == {"mutflow.py"}
    assert b"edited" in (mixed / "build" / "mutflow.py").read_bytes()
