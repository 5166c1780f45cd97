"""Expansion (issue 12, stage A): configs and mutators evaluated by Metaflow in a child process.

Each mutator-built flow is expanded on Metaflow 2.19.39 and on 2.16.0 (the lowest claimed)
and checked against Metaflow's own `python flow.py output-raw --json`; failures give located
diagnostics; what mutators print never reaches the protocol.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from decoflow.transformer.expansion import ExpansionOptions, FlowRequest, expand, runner
from expansion_support import (
    MUTATOR_FLOWS,
    expansion_view,
    mf216_python,
    output_raw,
    ref_python,
)
from harness import old_python

FLOWS = {
    "robust": "robustflow.py",
    "linter": "hungryflow.py",
    "dupes": "dupeflow.py",
    "chain": "chainflow.py",
    "base": "teamflow.py",
    "cfgdeco": "cfgdecoflow.py",
}
PYTHONS = {"2.19": ref_python, "2.16": mf216_python}

#: Steps whose output-raw is stale on Metaflow 2.16: an OVERRIDE rebinds the step's
#: `decorators` / `wrappers` list while the graph (what output-raw prints) keeps the old one,
#: and 2.16 does not rebuild the graph after mutate (2.19 does). Tasks run the step's own
#: lists, which is what expansion reports; for these steps 2.19's output-raw is the reference.
STALE_ON_216 = {("robust", "end"), ("linter", "start"), ("linter", "end"), ("dupes", "middle")}


def _expand(requests, python, **options):
    printed = []
    outcomes = expand(
        requests,
        ExpansionOptions(python=python, **options),
        display=lambda p: p.name,
        show=lambda request, text: printed.append(text),
    )
    return outcomes, printed


@pytest.mark.parametrize("version", sorted(PYTHONS))
def test_batch_matches_output_raw(version: str, tmp_path: Path) -> None:
    """Every fixture, expanded in ONE child, gives Metaflow's own per-step view."""
    python = PYTHONS[version]()
    requests = [FlowRequest(MUTATOR_FLOWS / folder / name) for folder, name in FLOWS.items()]
    starts = []
    real = runner._Child.__init__

    def counting(self, *args, **kwargs):
        starts.append(1)
        real(self, *args, **kwargs)

    runner._Child.__init__ = counting
    try:
        outcomes, _ = _expand(requests, python)
    finally:
        runner._Child.__init__ = real
    assert len(starts) == 1
    for outcome in outcomes:
        assert not outcome.diagnostics, [d.format() for d in outcome.diagnostics]
        expansion = outcome.expansion
        assert expansion.metaflow_version.startswith(version)
        native = output_raw(python, outcome.request.path, tmp_path)
        folder = outcome.request.path.parent.name
        if version == "2.16":
            reference = output_raw(ref_python(), outcome.request.path, tmp_path)
            stale = {step for step in native if native[step] != reference[step]}
            assert stale == {s for f, s in STALE_ON_216 if f == folder}
            native = reference
        assert expansion_view(expansion) == native, outcome.request.path


def test_config_value_and_with(tmp_path: Path) -> None:
    """--config-value and --with reach Metaflow as on the command line (--with before mutate:
    the mutator's IGNORE keeps the attached @retry)."""
    flow = MUTATOR_FLOWS / "robust" / "robustflow.py"
    value = json.dumps({"project": "other", "label": "second"})
    request = FlowRequest(flow, config_values=(("cfg", value),), with_specs=("retry:times=4",))
    (outcome,), _ = _expand([request], ref_python())
    expansion = outcome.expansion
    assert expansion.configs["cfg"].value.src == "{'project': 'other', 'label': 'second'}"
    assert expansion.configs["cfg"].source == {"kind": "config-value", "text": value}
    project = expansion.flow_decorators[0]
    assert project.name == "project" and dict(project.given())["name"].src == "'other'"
    retry = [d for d in expansion.steps["start"].decorators if d.name == "retry"]
    assert dict(retry[0].given())["times"].src == "4"
    native = output_raw(
        ref_python(), flow, tmp_path, ["--config-value", "cfg", value, "--with", "retry:times=4"]
    )
    assert expansion_view(expansion) == native


def test_parameters_and_configs_reported() -> None:
    (outcome,), printed = _expand([FlowRequest(MUTATOR_FLOWS / "robust/robustflow.py")], None)
    expansion = outcome.expansion
    added = expansion.added_parameters
    assert [(p.var, p.name, p.class_name) for p in added] == [("alpha", "alpha", "Parameter")]
    assert dict(added[0].kwargs)["default"].src == "3"
    assert expansion.configs["cfg"].source["kind"] == "default-file"
    assert [m.qualname for m in expansion.flow_mutators] == ["everywhere"]
    assert printed == ["everywhere: mutating\n"]
    assert expansion.changes("end") == [
        "added @retry(times=3) by decos.everywhere",
        "added @announce(tag='end') by decos.everywhere",
        "changed @announce(tag='end') -> @announce(label='first') by decos.tagged",
    ]


# --- faults ---------------------------------------------------------------------------------

MUTATORS = '''\
import sys
import time

from metaflow import FlowMutator


class boom(FlowMutator):
    def mutate(self, mutable_flow):
        print("boom is about to fail")
        raise ValueError("no limits configured")


class leave(FlowMutator):
    def mutate(self, mutable_flow):
        sys.exit(3)


class hang(FlowMutator):
    def mutate(self, mutable_flow):
        while True:
            time.sleep(0.05)


class chatty(FlowMutator):
    def mutate(self, mutable_flow):
        print('{"event": "done", "index": 0, "ok": true}')
        sys.stderr.write("chatty on stderr\\n")
'''

FLOW = '''\
from metaflow import FlowSpec, step

from muts import {name}


@{name}
class Flow{name}(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def _bad_flows(tmp_path: Path, *names: str) -> list[FlowRequest]:
    (tmp_path / "muts.py").write_text(MUTATORS)
    requests = []
    for name in names:
        (tmp_path / f"{name}flow.py").write_text(FLOW.format(name=name))
        requests.append(FlowRequest(tmp_path / f"{name}flow.py"))
    return requests


def test_faults_are_located_and_do_not_stop_the_batch(tmp_path: Path) -> None:
    requests = _bad_flows(tmp_path, "boom", "leave", "hang", "chatty")
    requests.append(FlowRequest(MUTATOR_FLOWS / "chain/chainflow.py"))
    outcomes, printed = _expand(requests, ref_python(), timeout=3)
    boom, leave, hang, chatty, chain = outcomes
    [d] = boom.diagnostics
    assert d.format().splitlines()[0] == (
        "muts.py:10:9: DF502 ValueError: no limits configured "
        "(in boom.mutate, while Metaflow was running mutate)"
    )
    assert boom.printed == "boom is about to fail\n"
    assert [str(where) for where, _ in d.notes] == ["boomflow.py:6:1"]
    [d] = leave.diagnostics
    assert str(d.location) == "muts.py:15:9" and "called sys.exit(3)" in d.message
    [d] = hang.diagnostics
    assert d.code == "DF503" and d.location.path == "muts.py" and d.location.line in (20, 21)
    assert not chatty.diagnostics and chatty.expansion.flow_name == "Flowchatty"
    assert '{"event": "done"' in chatty.printed and "chatty on stderr" in chatty.printed
    assert chain.expansion is not None and chain.expansion.flow_name == "ChainFlow"


def test_no_suitable_metaflow_names_the_mutator(tmp_path: Path) -> None:
    (request,) = _bad_flows(tmp_path, "boom")
    from decoflow.transformer.support.diagnostics import Location

    request = FlowRequest(request.path, blame=Location("boomflow.py", 6, 1), blame_name="@boom")
    for python, found in ((old_python(), "2.15.21"), ("/usr/bin/python3", "not installed")):
        (outcome,), _ = _expand([request], python)
        [d] = outcome.diagnostics
        assert d.code == "DF501" and str(d.location) == "boomflow.py:6:1"
        assert d.message.startswith("@boom needs Metaflow >= 2.16")
        assert found in d.message and "--python" in d.message and "install metaflow" in d.message


def test_bad_config_value(tmp_path: Path) -> None:
    request = FlowRequest(
        MUTATOR_FLOWS / "robust/robustflow.py", config_values=(("cfg", "{not json"),)
    )
    (outcome,), _ = _expand([request], ref_python())
    [d] = outcome.diagnostics
    assert d.code == "DF505" and "not valid JSON" in d.message


def test_a_batch_compile_starts_one_child() -> None:
    """`decoflow compile` of several flows (in worker processes): the flows that need
    expansion are set aside, expanded together in ONE child, then compiled."""
    from decoflow.project import Task, compile_tasks
    from decoflow.transformer import CompileOptions

    flows = [MUTATOR_FLOWS / folder / name for folder, name in FLOWS.items()]
    flows.append(Path(__file__).resolve().parent.parent / "fixtures/seed_waiter/waiterflow.py")
    starts = []
    real = runner._Child.__init__

    def counting(self, *args, **kwargs):
        starts.append(1)
        real(self, *args, **kwargs)

    runner._Child.__init__ = counting
    try:
        outcomes = compile_tasks([Task(f, CompileOptions()) for f in flows], jobs=2)
    finally:
        runner._Child.__init__ = real
    assert len(starts) == 1
    assert all(o.ok for o in outcomes), [o.diagnostics or o.internal_error for o in outcomes]
    for outcome in outcomes[:-1]:
        assert "evaluated with Metaflow 2.19.39" in outcome.code
    assert "evaluated with Metaflow" not in outcomes[-1].code


def test_flow_modules_named_like_the_childs_own(tmp_path: Path) -> None:
    """The child's own modules (`mfcompat`, `describe`) stay out of the flow's way: a flow
    importing modules of its own with those names gets them, on each supported version."""
    (tmp_path / "describe.py").write_text("WHO = 'the flow describe'\n")
    (tmp_path / "mfcompat.py").write_text("WHO = 'the flow mfcompat'\n")
    (tmp_path / "ownflow.py").write_text(
        "from metaflow import FlowMutator, FlowSpec, step\n"
        "import describe\n"
        "import mfcompat\n\n\n"
        "class tag(FlowMutator):\n"
        "    def pre_mutate(self, mutable_flow):\n"
        "        for _, s in mutable_flow.steps:\n"
        "            s.add_decorator('retry', deco_kwargs={'times': len(describe.WHO)})\n"
        "        print(describe.WHO, '|', mfcompat.WHO)\n\n\n"
        "@tag\n"
        "class OwnFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.next(self.end)\n\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
    )
    for python in PYTHONS.values():
        (outcome,), _ = _expand([FlowRequest(tmp_path / "ownflow.py")], python())
        assert not outcome.diagnostics, [d.format() for d in outcome.diagnostics]
        assert outcome.printed == "the flow describe | the flow mfcompat\n"
        [retry] = outcome.expansion.steps["start"].decorators
        assert dict(retry.given())["times"].src == str(len("the flow describe"))


@pytest.mark.parametrize("version", sorted(PYTHONS))
def test_changes_show_config_values_resolved(version: str) -> None:
    """A custom decorator written on a step with a Config value in its arguments: what
    mutators and configs changed reads as that value resolved, not as a removed decorator
    (showing Metaflow's DelayEvaluator object) and one added "(--with)"."""
    request = FlowRequest(MUTATOR_FLOWS / "cfgdeco/cfgdecoflow.py")
    (outcome,), _ = _expand([request], PYTHONS[version]())
    assert outcome.expansion.changes("start") == [
        "configs resolved: @tag_with(value=config_expr('settings.tag')) "
        "-> @tag_with(value='blue')"
    ]


def test_config_files_named_as_the_flow_names_them_and_parser_imports_dropped() -> None:
    """The header names a config file by its path from the flow's folder (not its bare name);
    a parser only the Config's declaration read is not imported by the compiled flow, which
    declares the parsed value."""
    from decoflow.transformer import CompileOptions, compile_file

    flow = MUTATOR_FLOWS / "cfgparser" / "parserflow.py"
    code = compile_file(flow, CompileOptions(python=sys.executable))
    header = " ".join(line[2:].strip() for line in code.splitlines() if line.startswith("# "))
    assert "run_cfg from settings/run.kv = {'owner': 'pricing', 'batch': 3}" in header
    assert "named from settings/run.kv" in header
    assert "kvparse" not in code and "parser=" not in code
    assert 'Config("run_cfg", default_value={"owner": "pricing", "batch": 3})' in code
