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
from decoflow.transformer.expansion import ExpansionOptions, FlowRequest, expand, runner
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
    """The pre-check is precise enough for the fixtures: only the mutator ones trigger it."""
    hits = {p.name for p in FIXTURES.rglob("*.py") if may_need_expansion(p)}
    assert hits <= {"inflowflow.py", "mutdecos.py", "mutatingflow.py"}, hits
    for flow in MUTATOR_FLOWS.rglob("*flow.py"):
        assert may_need_expansion(flow), flow


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
