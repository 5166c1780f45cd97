"""Expansion latency (issue 16): the parent does not wait for the child to wind down after
its last answer, and a batch that looks like it needs expansion starts the Metaflow child
before compiling (a textual pre-check), never for a plain flow."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from decoflow import project
from decoflow.project import Task, compile_tasks, may_need_expansion
from decoflow.transformer import CompileOptions
from decoflow.transformer.expansion import (
    ExpansionOptions,
    FlowRequest,
    expand,
    interpreter,
    runner,
)
from expansion_support import MUTATOR_FLOWS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# A stand-in for child.py: answers its one flow at once, then lingers a long time.
LINGERING_CHILD = """
import json, os, sys, time
fd = int(sys.argv[1])
channel = os.fdopen(fd, "w")
with open(os.path.join({pid_dir!r}, "pid"), "w") as handle:
    handle.write(str(os.getpid()))
json.loads(sys.stdin.readline())
for event in ({{"event": "ready", "metaflow_version": "2.19.39"}},
              {{"event": "start", "index": 0}},
              {{"event": "done", "index": 0, "ok": False, "phase": "mutate",
                "type": "ValueError", "message": "ValueError: boom", "timeout": False,
                "frames": []}}):
    channel.write(json.dumps(event) + "\\n")
    channel.flush()
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    """Whether `pid` no longer exists (ended AND reaped: a zombie still exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_last_answer_ends_the_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that sends its last answer and then sleeps 120 s does not hold the compile: the
    answer is reported (DF50x), and the child is ended and reaped (no zombie, no orphan)."""
    child = tmp_path / "child.py"
    child.write_text(LINGERING_CHILD.format(pid_dir=str(tmp_path)))
    monkeypatch.setattr(runner, "CHILD", child)
    flow = tmp_path / "someflow.py"
    flow.write_text("")
    began = time.monotonic()
    [outcome] = expand([FlowRequest(flow)], ExpansionOptions(python=sys.executable))
    took = time.monotonic() - began
    [diagnostic] = outcome.diagnostics
    assert diagnostic.code.startswith("DF50") and "boom" in diagnostic.message
    assert took < 90, took  # far below the child's 120 s; loose for a loaded machine
    assert _gone(int((tmp_path / "pid").read_text()))


PLAIN_FLOW = '''
from metaflow import FlowSpec, step

from helpers import shout


class PlainFlow(FlowSpec):
    """Configured by nothing, mutated by nothing."""

    @shout
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''

HELPERS = '''
import functools


def shout(f):
    @functools.wraps(f)
    def wrapper(self):
        return f(self)
    return wrapper
'''


def test_a_plain_flow_starts_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flow (and the module beside it that it imports) mentioning no mutator or config
    word: the pre-check says no, and compiling it through the batch path starts no process."""
    (tmp_path / "plainflow.py").write_text(PLAIN_FLOW)
    (tmp_path / "helpers.py").write_text(HELPERS)
    assert not may_need_expansion(tmp_path / "plainflow.py")

    def refuse(*args, **kwargs):
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    [outcome] = compile_tasks([Task(tmp_path / "plainflow.py", CompileOptions())], jobs=1)
    assert outcome.ok, outcome.diagnostics or outcome.internal_error
    assert runner._SPARE == {}


def test_plain_fixture_flows_do_not_look_expandable() -> None:
    """The pre-check is precise enough for the fixtures: only the mutator ones trigger it;
    and it misses none of the flows the static detection sends to Metaflow (the flows of
    tests/mutator_flows/flowdecos, say, only flatten a base statically)."""
    from decoflow.transformer.pipeline import Compilation
    from decoflow.transformer.support.source import read_source

    hits = {p.name for p in FIXTURES.rglob("*.py") if may_need_expansion(p)}
    assert hits <= {"inflowflow.py", "mutdecos.py", "mutatingflow.py"}, hits
    expanded = 0
    for flow in MUTATOR_FLOWS.rglob("*flow.py"):
        compilation = Compilation(read_source(flow, flow.name), CompileOptions())
        if compilation.expansion_trigger() is not None:
            expanded += 1
            assert may_need_expansion(flow), flow
    assert expanded >= 10


def test_the_child_starts_before_the_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mutator flow: its one child is started before the flow is compiled at all (it imports
    Metaflow meanwhile) and serves the expansion."""
    events: list[str] = []
    real_init = runner._Child.__init__
    real_compile = project.compile_task

    def spawning(self, *args, **kwargs):
        events.append("spawn")
        real_init(self, *args, **kwargs)

    def compiling(task):
        events.append("compile")
        return real_compile(task)

    monkeypatch.setattr(runner._Child, "__init__", spawning)
    monkeypatch.setattr(project, "compile_task", compiling)
    flow = MUTATOR_FLOWS / "robust" / "robustflow.py"
    [outcome] = compile_tasks([Task(flow, CompileOptions())], jobs=1)
    assert outcome.ok, outcome.diagnostics or outcome.internal_error
    assert "evaluated with Metaflow" in outcome.code
    assert events[0] == "spawn" and events.count("spawn") == 1, events
    assert runner._SPARE == {}


def test_a_child_started_for_nothing_is_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A false positive of the pre-check (the word Config in a comment): the child started
    ahead is ended and reaped, and the flow compiles as a plain one."""
    (tmp_path / "plainflow.py").write_text("# no Config here\n" + PLAIN_FLOW)
    (tmp_path / "helpers.py").write_text(HELPERS)
    assert may_need_expansion(tmp_path / "plainflow.py")
    procs: list[subprocess.Popen] = []
    real_init = runner._Child.__init__

    def spawning(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        procs.append(self.proc)

    monkeypatch.setattr(runner._Child, "__init__", spawning)
    [outcome] = compile_tasks([Task(tmp_path / "plainflow.py", CompileOptions())], jobs=1)
    assert outcome.ok, outcome.diagnostics or outcome.internal_error
    assert "evaluated with Metaflow" not in outcome.code
    assert len(procs) == 1 and procs[0].returncode is not None
    assert _gone(procs[0].pid)
    assert runner._SPARE == {}


def test_pre_check_reads_local_imports(tmp_path: Path) -> None:
    """A mutator imported from a module beside the flow (plain or relative import) counts."""
    (tmp_path / "mutdecos.py").write_text(
        textwrap.dedent(
            """\
            from metaflow import FlowMutator

            class everywhere(FlowMutator):
                pass
            """
        )
    )
    (tmp_path / "aflow.py").write_text("from mutdecos import everywhere\n")
    (tmp_path / "bflow.py").write_text("import mutdecos\n")
    (tmp_path / "cflow.py").write_text("from metaflow import FlowSpec\n")
    assert may_need_expansion(tmp_path / "aflow.py")
    assert may_need_expansion(tmp_path / "bflow.py")
    assert not may_need_expansion(tmp_path / "cflow.py")


def test_a_batch_reaps_its_child_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`expand(reap_later=True)` (what a batch asks) kills the child once every answer is in
    but does not wait for it: `reap_ended` (the end of the batch) reaps it and removes its
    folder; a later `expand` would too."""
    child = tmp_path / "child.py"
    child.write_text(LINGERING_CHILD.format(pid_dir=str(tmp_path)))
    monkeypatch.setattr(runner, "CHILD", child)
    flow = tmp_path / "someflow.py"
    flow.write_text("")
    [outcome] = expand(
        [FlowRequest(flow)], ExpansionOptions(python=sys.executable), reap_later=True
    )
    assert "boom" in outcome.diagnostics[0].message
    [(ended, folder, owner)] = runner._ENDING
    assert owner == os.getpid() and Path(folder).is_dir()
    assert ended.proc.returncode is None  # killed, not waited for
    runner.reap_ended()
    assert runner._ENDING == [] and not Path(folder).exists()
    assert ended.proc.returncode is not None
    assert _gone(int((tmp_path / "pid").read_text()))


def test_a_mutator_batch_leaves_no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through `compile_tasks`: once it returns, the child that evaluated the flow is reaped
    and its folder gone."""
    procs: list[tuple[subprocess.Popen, str]] = []
    real_init = runner._Child.__init__

    def spawning(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        procs.append((self.proc, self.tmp))

    monkeypatch.setattr(runner._Child, "__init__", spawning)
    flow = MUTATOR_FLOWS / "robust" / "robustflow.py"
    [outcome] = compile_tasks([Task(flow, CompileOptions())], jobs=1)
    assert outcome.ok, outcome.diagnostics or outcome.internal_error
    [(proc, folder)] = procs
    assert proc.returncode is not None and _gone(proc.pid)
    assert not Path(folder).exists()
    assert runner._ENDING == [] and runner._SPARE == {}


def _dist(folder: Path, name: str, version: str | None) -> None:
    (folder / name).mkdir(parents=True)
    if version is not None:
        header = f"Metadata-Version: 2.1\nName: metaflow\nVersion: {version}\n\nVersion: 9\n"
        (folder / name / "METADATA").write_text(header)


def test_scan_dist_info_reads_as_importlib_metadata(tmp_path: Path) -> None:
    """The Metaflow version read without importing importlib.metadata: the first folder of
    the path with a `metaflow-*.dist-info`, its METADATA's Version; UNSURE for the layouts it
    leaves to importlib.metadata."""
    scan = interpreter.scan_dist_info
    first, second, empty = tmp_path / "first", tmp_path / "second", tmp_path / "empty"
    empty.mkdir()
    _dist(first, "metaflow_stubs-2.0.dist-info", "2.0")  # another distribution
    _dist(second, "metaflow-2.16.0.dist-info", "2.16.0")
    paths = [str(empty), str(tmp_path / "missing"), str(first), str(second)]
    assert scan("metaflow", paths) == "2.16.0"
    _dist(first, "Metaflow-2.19.1.dist-info", "2.19.1")  # case: found first on the path
    assert scan("metaflow", paths) == "2.19.1"
    assert scan("metaflow", [str(empty)]) is None
    assert scan("metaflow", []) is None

    egg = tmp_path / "egg"
    _dist(egg, "metaflow.egg-info", None)
    assert scan("metaflow", [str(egg), str(second)]) is interpreter.UNSURE
    assert scan("metaflow", [str(second), str(egg)]) == "2.16.0"
    two = tmp_path / "two"
    _dist(two, "metaflow-2.16.0.dist-info", "2.16.0")
    _dist(two, "metaflow-2.17.0.dist-info", "2.17.0")
    assert scan("metaflow", [str(two)]) is interpreter.UNSURE
    bare = tmp_path / "bare"
    _dist(bare, "metaflow-2.16.0.dist-info", None)  # no METADATA
    assert scan("metaflow", [str(bare)]) is interpreter.UNSURE
    archive = tmp_path / "site.zip"
    archive.write_bytes(b"PK")
    assert scan("metaflow", [str(archive), str(second)]) is interpreter.UNSURE


def test_running_metaflow_agrees_with_importlib_metadata() -> None:
    """On this interpreter's own path, both readings give the same version."""
    from importlib.metadata import version

    assert interpreter.scan_dist_info("metaflow", sys.path) == version("metaflow")
    assert interpreter.running_metaflow() == version("metaflow")


def test_make_tmp_without_tempfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child's folder, made without importing tempfile: private, in $TMPDIR; a $TMPDIR
    that cannot hold it leaves the choice to tempfile (which falls back as it always does)."""
    monkeypatch.delitem(sys.modules, "tempfile")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    folder = Path(runner._make_tmp())
    assert folder.parent == tmp_path and folder.name.startswith("decoflow-expand-")
    assert folder.stat().st_mode & 0o777 == 0o700
    assert "tempfile" not in sys.modules
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    other = Path(runner._make_tmp())
    assert other.is_dir() and other.parent != tmp_path / "missing"
    other.rmdir()


def test_a_trigger_is_located_only_when_read() -> None:
    """Detection names the use that needs Metaflow without computing positions (a
    PositionProvider pass costs ~10x a parse); the location resolves on first read, and a
    request pickles (to or from a batch worker) with it as a plain Location."""
    import pickle

    from decoflow.transformer.pipeline import Compilation
    from decoflow.transformer.support.diagnostics import Location
    from decoflow.transformer.support.locate import LazyLocation
    from decoflow.transformer.support.source import read_source

    flow = MUTATOR_FLOWS / "robust" / "robustflow.py"
    compilation = Compilation(read_source(flow, "robustflow.py"), CompileOptions())
    trigger = compilation.expansion_trigger()
    assert trigger is not None and isinstance(trigger.location, LazyLocation)
    assert compilation.locator._positions == {}
    request = FlowRequest(flow, blame=trigger.location, blame_name=trigger.name)
    copy = pickle.loads(pickle.dumps(request))
    assert type(copy.blame) is Location
    where = str(trigger.location)
    assert where == str(copy.blame) and where.startswith("robustflow.py:")
    text = flow.read_text().splitlines()[trigger.location.line - 1]
    assert trigger.name.split("(")[0].lstrip("@") in text
