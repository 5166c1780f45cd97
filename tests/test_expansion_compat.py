"""The one module touching Metaflow internals (transformer/expansion/mfcompat.py) against each
Metaflow version it claims: the private names it uses exist, and the version check refuses
what it does not support."""

from __future__ import annotations

import subprocess

import pytest
from expansion_support import mf216_python, ref_python
from harness import REPO_ROOT, old_python

MFCOMPAT = REPO_ROOT / "transformer" / "expansion"

PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import mfcompat
print(mfcompat.check())
from metaflow import FlowSpec, decorators
from metaflow.parameters import flow_context
from metaflow.user_configs.config_options import config_options_with_config_input
for name in ("_process_config_decorators", "_get_parameters", "_init_graph"):
    assert callable(getattr(FlowSpec, name)), name
for name in ("_attach_decorators", "_init_step_decorators"):
    assert callable(getattr(decorators, name)), name
import metaflow.flowspec as fs
assert hasattr(fs, "FlowStateItems") or (hasattr(fs, "_FlowState") and hasattr(decorators, "_init"))
# watch_mutators: which flow class and step a mutator's hook is given
from metaflow import FlowMutator, StepMutator
from metaflow.user_decorators.mutable_flow import MutableFlow
from metaflow.user_decorators.mutable_step import MutableStep

class F(FlowSpec):
    pass

def s(self):
    pass

step = MutableStep(F, s, inserted_by=["probe"])
assert mfcompat.mutable_target(step) == (F, s), mfcompat.mutable_target(step)
assert mfcompat.mutable_target(MutableFlow(F, inserted_by=["probe"])) == (F, None)
assert FlowMutator in mfcompat.mutator_classes() and StepMutator in mfcompat.mutator_classes()
print("ok")
"""


@pytest.mark.parametrize("python", [ref_python, mf216_python], ids=["2.19", "2.16"])
def test_internals_present(python) -> None:
    proc = subprocess.run(
        [python(), "-c", PROBE, str(MFCOMPAT)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    version, ok = proc.stdout.split()
    assert version in ("2.19.39", "2.16.0") and ok == "ok"


def test_older_metaflow_refused() -> None:
    proc = subprocess.run(
        [old_python(), "-c", PROBE, str(MFCOMPAT)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "Unsupported: metaflow 2.15.21" in proc.stderr and "older than 2.16" in proc.stderr


MUTATED_FLOW = """\
from metaflow import FlowMutator, FlowSpec, step


class add_retry(FlowMutator):
    def mutate(self, mutable_flow):
        for _, s in mutable_flow.steps:
            s.add_decorator("retry", deco_kwargs={"times": 1})


@add_retry
class MutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""


def test_python_of_a_virtual_environment_keeps_its_metaflow(tmp_path) -> None:
    """`--python VENV/bin/python` and `[tool.decoflow] python`: a venv's interpreter is a
    symlink to the base interpreter; following it would lose the venv's Metaflow (DF501)."""
    import os
    import sys
    from pathlib import Path

    python = Path(mf216_python())
    assert python.is_symlink() or python.resolve() != python  # what the bug needs
    (tmp_path / "flow.py").write_text(MUTATED_FLOW, encoding="utf-8")
    link = tmp_path / "py216"
    os.symlink(python.parent.parent, link)  # a relative path through a symlinked venv
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    decoflow = [sys.executable, "-m", "decoflow", "compile", "flow.py", "-o", "out.py"]
    for extra, pyproject in (
        (["--python", str(python)], None),
        (["--python", "py216/bin/python"], None),
        ([], '[tool.decoflow]\npython = "py216/bin/python"\n'),
    ):
        if pyproject:
            (tmp_path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
        proc = subprocess.run(
            [*decoflow, *extra], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
        )
        assert proc.returncode == 0, (extra, proc.stderr)
        out = (tmp_path / "out.py").read_text(encoding="utf-8")
        assert "evaluated with Metaflow 2.16.0" in out and "@retry(times=1)" in out
