"""`decoflow explain` on mutator-built flows (issue 12): per step, what each mutator added,
removed or changed, named by the mutator that did it, in the order Metaflow ran them.

The child observes every mutator's `pre_mutate` and `mutate` as Metaflow calls them and
compares the stacks before and after each call; checked on Metaflow 2.19.39 and on 2.16.0.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from decoflow.explain import explain_file
from decoflow.transformer.expansion import ExpansionOptions, FlowRequest, expand
from decoflow.transformer.options import CompileOptions
from expansion_support import MUTATOR_FLOWS, mf216_python, ref_python

PYTHONS = {"2.19": ref_python, "2.16": mf216_python}


def _mutator_lines(text: str) -> list[str]:
    """The explain report without the yields of the inlined decorators."""
    return [line for line in text.splitlines() if "yield at line" not in line]


@pytest.mark.parametrize("version", sorted(PYTHONS))
def test_explain_names_the_mutator_of_each_change(version: str) -> None:
    """Added (by a flow mutator, by a step mutator on the step, by a step mutator another
    mutator added by name), removed (by a flow mutator) and changed (an OVERRIDE replacing
    @resources: its other attributes go too, as Metaflow does), each with its mutator."""
    options = CompileOptions(python=PYTHONS[version]())
    text = explain_file(MUTATOR_FLOWS / "explain/explainflow.py", options)
    assert _mutator_lines(text) == [
        f"mutators and configs evaluated with Metaflow {text.split()[6]}",
        "  flow mutator @tidy (explainmods.tidy)",
        "step start: no custom decorators",
        "  mutators: added @retry(times=2) by explainmods.tidy",
        "  mutators: removed @shout by explainmods.tidy",
        "step train",
        "  mutators: added @retry(times=2) by explainmods.tidy",
        "  mutators: changed @resources(cpu=8, memory=2000) -> @resources(cpu=2)"
        " by explainmods.tune",
        "  mutators: added @note(text='tuned') by explainmods.tune",
        "  1. @note (explainmods.py:8)",
        "step end",
        "  mutators: added step mutator @stamp_end by explainmods.tidy in pre_mutate",
        "  mutators: added @retry(times=2) by explainmods.tidy",
        "  mutators: added @note(text='end') by explainmods.stamp_end (added by explainmods.tidy)",
        "  1. @note (explainmods.py:8)",
    ]
    assert text.split()[6].startswith(version)


@pytest.mark.parametrize("version", sorted(PYTHONS))
def test_changes_follow_metaflow_order(version: str) -> None:
    """A decorator one mutator added and a later one replaced reads as both steps (not as
    one addition by the last); a step mutator that kept the step as it was says so."""
    requests = [
        FlowRequest(MUTATOR_FLOWS / "robust/robustflow.py"),
        FlowRequest(MUTATOR_FLOWS / "dupes/dupeflow.py"),
    ]
    robust, dupes = expand(
        requests,
        ExpansionOptions(python=PYTHONS[version]()),
        display=lambda p: p.name,
        show=lambda request, text: None,
    )
    assert robust.expansion.changes("end") == [
        "added @retry(times=3) by decos.everywhere",
        "added @announce(tag='end') by decos.everywhere",
        "changed @announce(tag='end') -> @announce(label='first') by decos.tagged",
    ]
    assert dupes.expansion.changes("start") == ["dupemods.retry_ignore changed nothing"]
    assert dupes.expansion.changes("middle") == [
        "changed @retry(times=1) -> @retry(times=4) by dupemods.retry_override"
    ]


FLOW_LEVEL_MODS = """\
from metaflow import FlowMutator


class inner(FlowMutator):
    def mutate(self, mutable_flow):
        for name, step in mutable_flow.steps:
            step.add_decorator("retry", deco_kwargs={"times": 1})


class outer(FlowMutator):
    def pre_mutate(self, mutable_flow):
        mutable_flow.add_decorator("levelmods.inner")
        mutable_flow.add_decorator("project", deco_kwargs={"name": "lvl"})
"""

FLOW_LEVEL_FLOW = """\
from levelmods import outer
from metaflow import FlowSpec, step


@outer
class LevelFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_flow_level_changes_name_their_mutator(tmp_path: Path) -> None:
    """A flow mutator adding another flow mutator by name and a flow decorator (Metaflow
    2.17+: 2.16's MutableFlow has no add_decorator): the header says who added each, and the
    step lines name the added mutator and who added it."""
    (tmp_path / "levelmods.py").write_text(FLOW_LEVEL_MODS)
    (tmp_path / "levelflow.py").write_text(FLOW_LEVEL_FLOW)
    text = explain_file(tmp_path / "levelflow.py", CompileOptions(project_root=tmp_path))
    lines = _mutator_lines(text)
    assert "  flow mutators: added flow mutator @inner by levelmods.outer in pre_mutate" in lines
    assert (
        "  flow mutators: added flow decorator @project(name='lvl') by levelmods.outer"
        " in pre_mutate" in lines
    )
    at = lines.index("step start: no custom decorators")
    assert lines[at + 1] == (
        "  mutators: added @retry(times=1) by levelmods.inner (added by levelmods.outer)"
    )


def test_with_reads_where_metaflow_attaches_it() -> None:
    """`--with` is attached after pre_mutate and before mutate: its line comes before what
    the flow mutator's mutate did (which then IGNOREs its own @retry: no line for it)."""
    request = FlowRequest(MUTATOR_FLOWS / "robust/robustflow.py", with_specs=("retry:times=4",))
    (outcome,) = expand(
        [request],
        ExpansionOptions(python=ref_python()),
        display=lambda p: p.name,
        show=lambda request, text: None,
    )
    assert outcome.expansion.changes("start") == [
        "added @retry(times=4) (--with)",
        "added @announce(tag='start') by decos.everywhere",
    ]
