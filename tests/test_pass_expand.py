"""Pass 1, expand, for flows that need no Metaflow: base classes in other modules.

A base class whose steps use custom decorators (or whose module imports what only Metaflow
2.16+ has) is flattened into the flow class by reading files only: no child process, no
import of Metaflow or of the user's modules. A base written with Metaflow alone stays
imported. (Flows built by mutators and configs: tests/test_expansion*.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from decoflow.transformer import CompileError, CompileOptions, compile_file

BASE = '''
import sys

from metaflow import FlowSpec, Parameter, project, step

from decos import tagged

sys.exit("basesteps was imported")

PREFIX = "hello"


def greet(name):
    return f"{PREFIX}, {name}"


@project(name="demo")
class BaseFlow(FlowSpec):
    who = Parameter("who", default="world")

    @tagged
    @step
    def start(self):
        self.greeting = greet(self.who)
        self.next(self.end)

    @step
    def end(self):
        print(self.greeting)
'''

DECOS = '''
import sys

from metaflow import user_step_decorator

sys.exit("decos was imported")


@user_step_decorator
def tagged(step_name, flow, inputs=None, attributes=None):
    print("tagged", step_name)
    yield
'''

FLOW = '''
from metaflow import step

from basesteps import BaseFlow


class F(BaseFlow):
    @step
    def end(self):
        print("own end", self.greeting)


if __name__ == "__main__":
    F()
'''


def _project(tmp_path: Path, flow: str = FLOW, base: str = BASE) -> Path:
    (tmp_path / "basesteps.py").write_text(textwrap.dedent(base))
    (tmp_path / "decos.py").write_text(textwrap.dedent(DECOS))
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(flow))
    return path


def test_a_base_with_custom_decorators_is_flattened_without_process_or_import(
    tmp_path: Path,
) -> None:
    """Compiled in a fresh interpreter: neither Metaflow, nor the expansion's child-process
    support, nor the user's modules (which would exit) are imported."""
    flow = _project(tmp_path)
    script = textwrap.dedent(
        f"""
        import json, sys
        from decoflow.transformer import CompileOptions, compile_file
        code = compile_file({str(flow)!r}, CompileOptions())
        loaded = sorted(
            m for m in sys.modules
            if m.split(".")[0] in ("metaflow", "basesteps", "decos")
            or m.startswith("decoflow.transformer.expansion")
        )
        print(json.dumps({{"code": code, "loaded": loaded}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    result = json.loads(done.stdout)
    assert result["loaded"] == []
    code = result["code"]
    for banned in ("basesteps import", "import basesteps", "decos import", "user_step_decorator"):
        assert banned not in code
    assert "class F(FlowSpec):" in code
    assert '@project(name="demo")\nclass F(FlowSpec):' in code  # inherited natively too
    assert 'who = Parameter("who", default="world")' in code
    assert 'print("tagged", step_name)' in code  # the inherited step's decorator, inlined
    assert 'print("own end", self.greeting)' in code and "print(self.greeting)\n" not in code
    assert 'PREFIX = "hello"' in code and "def greet(name):" in code
    assert "sys.exit" not in code


def test_a_plain_metaflow_base_stays_imported(tmp_path: Path) -> None:
    base = """
    from metaflow import FlowSpec, step


    class BaseFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
    """
    flow = _project(tmp_path, FLOW, base)
    assert compile_file(flow, CompileOptions()) == flow.read_text()


def test_a_name_the_flow_binds_differently_is_renamed(tmp_path: Path) -> None:
    """The flow module binds `greet` and `PREFIX` to its own: the base module's are carried
    as `basesteps_greet` / `basesteps_PREFIX` (where the carried members and helpers read
    the module's binding; a local of the same name stays), and the flow's own are kept."""
    own = 'PREFIX = "mine"\n\n\ndef greet():\n    return 0\n\n\nclass F(BaseFlow):'
    flow = _project(tmp_path, FLOW.replace("class F(BaseFlow):", own))
    code = compile_file(flow, CompileOptions())
    assert 'basesteps_PREFIX = "hello"' in code and "def basesteps_greet(name):" in code
    assert 'return f"{basesteps_PREFIX}, {name}"' in code
    assert "self.greeting = basesteps_greet(self.who)" in code
    assert 'PREFIX = "mine"' in code and "def greet():\n    return 0" in code


def test_a_decorator_name_the_flow_binds_differently_is_a_located_error(
    tmp_path: Path,
) -> None:
    """A name a carried step is decorated with is not renamed (the passes that inline it read
    it by its module's name): DF507."""
    own = "def tagged():\n    return 0\n\n\nclass F(BaseFlow):"
    flow = _project(tmp_path, FLOW.replace("class F(BaseFlow):", own))
    with pytest.raises(CompileError) as err:
        compile_file(flow, CompileOptions())
    [diag] = err.value.diagnostics
    assert diag.code == "DF507"
    assert diag.format().startswith("flow.py:11:1: DF507 tagged, which the carried members")


def test_a_new_name_never_shadows_a_carried_members_local(tmp_path: Path) -> None:
    """The new name is free in the base module too: a step's local `basesteps_greet` stays
    the step's, and the module's `greet` becomes `basesteps_greet_2`."""
    base = BASE.replace(
        "        self.greeting = greet(self.who)",
        '        basesteps_greet = "local"\n'
        "        self.greeting = greet(self.who) + basesteps_greet",
    )
    own = "def greet():\n    return 0\n\n\nclass F(BaseFlow):"
    flow = _project(tmp_path, FLOW.replace("class F(BaseFlow):", own), base)
    code = compile_file(flow, CompileOptions())
    assert "self.greeting = basesteps_greet_2(self.who) + basesteps_greet" in code
    assert "def basesteps_greet_2(name):" in code
