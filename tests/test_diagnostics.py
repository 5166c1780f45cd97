"""The catalogue of diagnostics: one test per DF code, through the real command line.

Each test writes a small project (a flow and, usually, a decorator module) into a temporary
folder, runs `decoflow compile flow.py -o out.py` there in a subprocess and checks what a user
sees: exit status 1, the exact `path:line:col: DFxxx` of the offending place on stderr, the
`note:` lines naming the use site and the decorator's definition where both exist, no Python
traceback anywhere, nothing on stdout, and no output file.

Expected places are computed from the input text (`where(...)` finds a snippet in it), so
each test says *what* it expects to be pointed at: the `@deco` use, the `def`, the `yield`.

The held-out bad inputs of issue 6 are here too (a yield inside a loop, `yield from`, two
yields on one path, a decorator that never yields, one with two parameters, a syntax error in
a decorator module, a missing module, an async generator, a malformed `--with` target), as
are positional arguments, arguments to a 3-parameter decorator, a class-based
`UserStepDecorator`, a decorator built at run time, a star import hiding the decorator and a
non-literal attribute value.

Tests marked `xfail(strict=True)` pin down known compiler problems (wrong or missing
locations, wrong diagnostics); each says what is expected. When the compiler is fixed they
XPASS, which fails the run as a reminder to drop the mark.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest
from decoflow.transformer.support import diagnostics
from decoflow.transformer.support.diagnostics import CODES

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs" / "diagnostics.md"

# The installed script beside this interpreter, else the module (same code either way).
_SCRIPT = Path(sys.executable).with_name("decoflow")
DECOFLOW = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "decoflow"]

DIAGNOSTIC_LINE = re.compile(r"^(?P<where>[^\s:][^:]*:\d+:\d+): (?P<code>DF\d{3}) \S")
NOTE_LINE = re.compile(r"^[^\s:][^:]*:\d+:\d+: note: \S")


# --- helpers -------------------------------------------------------------------------------


def dedent(text: str) -> str:
    """`textwrap.dedent` without the leading newline of a triple-quoted literal."""
    return textwrap.dedent(text).lstrip("\n")


def make_flow(imports: str = "", decorators: Sequence[str] = ()) -> str:
    """A two-step flow; `decorators` (one per line) go above `@step` of `start`.

    The first decorator is always on line 7, column 5 (when `imports` is one line).
    """
    lines = ["from metaflow import FlowSpec, step", *([imports] if imports else []), "", ""]
    lines += ["class MyFlow(FlowSpec):", ""]
    lines += [f"    {decorator}" for decorator in decorators]
    lines += [
        "    @step",
        "    def start(self):",
        "        self.x = 1",
        "        self.next(self.end)",
        "",
        "    @step",
        "    def end(self):",
        "        pass",
        "",
        "",
        'if __name__ == "__main__":',
        "    MyFlow()",
        "",
    ]
    return "\n".join(lines)


def decorator_module(body: str, params: str = "step_name, flow, inputs", head: str = "def") -> str:
    """`decos.py` defining `@user_step_decorator` `deco` (its `def` on line 5) with `body`."""
    indented = textwrap.indent(dedent(body), "    ")
    return (
        "from metaflow import user_step_decorator\n\n\n"
        f"@user_step_decorator\n{head} deco({params}):\n{indented}"
    )


GOOD_3 = decorator_module("yield\n")
GOOD_4 = decorator_module("print(attributes)\nyield\n", "step_name, flow, inputs, attributes")


def at(name: str, text: str, index: int) -> str:
    """`name:line:col` of character `index` of `text`, 1-based like diagnostics."""
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{name}:{line}:{column}"


def where(name: str, text: str, snippet: str, occurrence: int = 1) -> str:
    """`name:line:col` of the `occurrence`-th `snippet` in `text`."""
    index = -1
    for _ in range(occurrence):
        index = text.find(snippet, index + 1)
        assert index >= 0, f"{snippet!r} (occurrence {occurrence}) is not in the input"
    return at(name, text, index)


def write_project(root: Path, flow: str, modules: dict[str, str | bytes] | None = None) -> Path:
    """Write `flow.py` and the given modules (relative paths) below `root`; return `root`."""
    (root / "flow.py").write_text(flow, encoding="utf-8")
    for relative, text in (modules or {}).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return root


def compile_cli(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run `decoflow compile flow.py -o out.py [extra]` in `root`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [*DECOFLOW, "compile", "flow.py", "-o", "out.py", *extra],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def assert_rejected(proc: subprocess.CompletedProcess[str], root: Path) -> list[str]:
    """Exit 1, no traceback or internal error, nothing on stdout, no output file; every
    stderr line a diagnostic or a note. Returns the stderr lines."""
    report = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 1, report
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback" not in stream, report
        assert "internal error" not in stream, report
    assert proc.stdout == "", report
    assert not (root / "out.py").exists(), "a rejected flow must not write its output"
    lines = proc.stderr.splitlines()
    assert lines, report
    assert DIAGNOSTIC_LINE.match(lines[0]), report
    for line in lines:
        assert DIAGNOSTIC_LINE.match(line) or NOTE_LINE.match(line), f"not a diagnostic: {line!r}"
    return lines


def expect(lines: list[str], head: str, notes: Sequence[str] = ()) -> str:
    """The diagnostic line starting with `head` (`path:line:col: DFxxx`), followed by its
    `notes` (each `path:line:col: note: text`, in any order); returns the diagnostic line."""
    found = [i for i, line in enumerate(lines) if line.startswith(head + " ")]
    assert found, f"no diagnostic {head!r} in:\n" + "\n".join(lines)
    index = found[0]
    own_notes = []
    for line in lines[index + 1 :]:
        if not NOTE_LINE.match(line):
            break
        own_notes.append(line)
    for note in notes:
        assert note in own_notes, f"note {note!r} missing after {lines[index]!r}:\n" + "\n".join(
            lines
        )
    return lines[index]


def rejected(
    tmp_path: Path,
    flow: str,
    modules: dict[str, str | bytes] | None = None,
    *extra: str,
) -> list[str]:
    """Write the project, compile it and check it is rejected properly; stderr lines."""
    root = write_project(tmp_path, flow, modules)
    return assert_rejected(compile_cli(root, *extra), root)


def used_here(flow: str, written: str = "deco") -> str:
    """The note naming the first use of `@written` in `flow`."""
    return f"{where('flow.py', flow, '@' + written)}: note: @{written} used here"


def defined_here(module: str, name: str = "deco", file: str = "decos.py") -> str:
    """The note naming the `def` of decorator `name` in `module`."""
    return f"{where(file, module, 'def ' + name)}: note: @{name} defined here"


FLOW = make_flow("from decos import deco", ["@deco"])


# --- DF0xx: reading source ---------------------------------------------------------------


def test_df001_syntax_error_in_flow(tmp_path: Path) -> None:
    """A syntax error in the flow: DF001 in flow.py."""
    flow = FLOW.replace("self.x = 1", "self.x = 1 +* 2")
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_3})
    assert len(lines) == 1 and re.match(r"flow\.py:\d+:\d+: DF001 syntax error", lines[0]), lines


def test_df001_syntax_error_in_decorator_module(tmp_path: Path) -> None:
    """Held out: a syntax error (missing colon) in a decorator module: DF001 in decos.py."""
    module = GOOD_3.replace("inputs):", "inputs)")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    assert re.match(r"decos\.py:\d+:\d+: DF001 syntax error", lines[0]), lines


def test_df001_too_many_nested_parentheses(tmp_path: Path) -> None:
    """Brackets nested beyond CPython's limit of 200: DF001 at the 201st opening bracket."""
    flow = FLOW.replace(
        "from decos import deco\n",
        "from decos import deco\nX = " + "(" * 250 + "1" + ")" * 250 + "\n",
    )
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_3})
    expected = at("flow.py", flow, flow.index("(") + 200)  # the 201st "("
    expect(lines, f"{expected}: DF001")
    assert "too many nested parentheses" in lines[0]


def test_df001_undecodable_decorator_module(tmp_path: Path) -> None:
    """A decorator module that is not valid UTF-8 (and has no encoding cookie): DF001."""
    module = GOOD_3.encode() + b'BAD = "\xff\xfe"\n'
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    assert re.match(r"decos\.py:\d+:\d+: DF001 cannot decode source", lines[0]), lines


def test_df001_unknown_encoding_cookie(tmp_path: Path) -> None:
    """An encoding cookie naming no codec: DF001 in the file that declares it."""
    module = "# -*- coding: klingon -*-\n" + GOOD_3
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    assert re.match(r"decos\.py:\d+:\d+: DF001 cannot decode source: unknown encoding", lines[0]), (
        lines
    )


def test_df002_unreadable_decorator_module(tmp_path: Path) -> None:
    """A decorator module that exists but cannot be read: DF002 naming it."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        write_project(tmp_path, FLOW, {"decos.py": GOOD_3})
        (tmp_path / "decos.py").chmod(0)
    elif Path("/proc/self/mem").exists():  # root reads anything; this file fails with EIO
        write_project(tmp_path, FLOW)
        (tmp_path / "decos.py").symlink_to("/proc/self/mem")
    else:
        pytest.skip("no way to make a file unreadable here")
    lines = assert_rejected(compile_cli(tmp_path), tmp_path)
    expect(lines, "decos.py:1:1: DF002")
    assert "cannot read file" in lines[0]


def test_df003_code_too_deep_to_analyse(tmp_path: Path) -> None:
    """A 1,000-term sum parses, but is too deep for the compiler's recursive passes: DF003."""
    flow = FLOW.replace("self.x = 1", "self.x = " + " + ".join(["1"] * 1000))
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_3})
    assert len(lines) == 1 and re.match(r"flow\.py:\d+:\d+: DF003 ", lines[0]), lines


# --- DF1xx: how a decorator is used ------------------------------------------------------


def test_df101_positional_arguments(tmp_path: Path) -> None:
    """`@deco(1)`: decorator arguments are keywords only."""
    flow = make_flow("from decos import deco", ["@deco(1)"])
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_4})
    expect(lines, f"{where('flow.py', flow, '@deco')}: DF101", [defined_here(GOOD_4)])


def test_df102_arguments_to_three_parameter_decorator(tmp_path: Path) -> None:
    """`@deco(k=1)` where `deco` takes no `attributes` parameter."""
    flow = make_flow("from decos import deco", ["@deco(k=1)"])
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_3})
    expect(lines, f"{where('flow.py', flow, '@deco')}: DF102", [defined_here(GOOD_3)])


def test_df103_non_literal_attribute_value(tmp_path: Path) -> None:
    """`@deco(k=undefined_name)`: a value that is neither a literal nor a module-level name."""
    flow = make_flow("from decos import deco", ["@deco(k=undefined_name)"])
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_4})
    line = expect(lines, f"{where('flow.py', flow, '@deco')}: DF103", [defined_here(GOOD_4)])
    assert "'undefined_name'" in line


@pytest.mark.parametrize("second", ["@deco", "@decos.deco"])
def test_same_decorator_twice_on_one_step_compiles(tmp_path: Path, second: str) -> None:
    """The same decorator twice on one step is no error (it was DF104): Metaflow runs each
    use as its own layer, and so does the compiled step (run side by side in
    fixtures/stacking/twiceflow.py)."""
    flow = make_flow("import decos\nfrom decos import deco", ["@deco", second])
    proc = compile_cli(write_project(tmp_path, flow, {"decos.py": GOOD_3}))
    assert proc.returncode == 0, proc.stderr
    out = (tmp_path / "out.py").read_text(encoding="utf-8")
    assert out.count("# @deco (decos.py:") + out.count("# @decos.deco (decos.py:") == 2, out


# --- DF2xx: finding the decorator --------------------------------------------------------


def test_df201_missing_module(tmp_path: Path) -> None:
    """Held out: the decorator's module does not exist. Reported at the import naming it (as
    Python, mypy and pyright do), with a note at the use."""
    flow = make_flow("from nosuchmodule import deco", ["@deco"])
    lines = rejected(tmp_path, flow)
    line = expect(lines, "flow.py:2:1: DF201", [used_here(flow)])
    assert "'nosuchmodule'" in line
    assert lines == [line, used_here(flow)]


def test_df201_one_import_used_twice_under_an_as_name(tmp_path: Path) -> None:
    """`from nosuchmodule import deco as timed` used on two steps: one diagnostic at the
    import, a note per use."""
    flow = make_flow("from nosuchmodule import deco as timed", ["@timed"])
    flow = flow.replace("    @step\n    def end", "    @timed\n    @step\n    def end")
    lines = rejected(tmp_path, flow)
    second = f"{where('flow.py', flow, '@timed', 2)}: note: @timed used here"
    expect(lines, "flow.py:2:1: DF201", [used_here(flow, "timed"), second])
    assert len(lines) == 3, lines


def test_df201_import_module_then_attribute(tmp_path: Path) -> None:
    """`import nosuch as m` and `@m.deco`: at the `import`."""
    flow = make_flow("import nosuch as m", ["@m.deco"])
    lines = rejected(tmp_path, flow)
    line = expect(lines, "flow.py:2:1: DF201", [used_here(flow, "m.deco")])
    assert "'nosuch'" in line and "@m.deco" in line


def test_df201_missing_module_imported_by_the_decorator_module(tmp_path: Path) -> None:
    """decos.py re-exports `deco` from a module that does not exist: at decos.py's import."""
    module = "import json\nfrom nosuchhelpers import deco\n"
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    line = expect(lines, "decos.py:2:1: DF201", [used_here(FLOW)])
    assert "'nosuchhelpers'" in line


def test_df201_relative_import_in_a_package_init(tmp_path: Path) -> None:
    """`from pkg import deco`, pkg/__init__.py re-exports it `from .impl import deco`, and
    pkg/impl.py does not exist: at the relative import, in the package."""
    flow = make_flow("from pkg import deco", ["@deco"])
    init = '"""A package."""\nfrom .impl import deco\n'
    lines = rejected(tmp_path, flow, {"pkg/__init__.py": init})
    line = expect(lines, "pkg/__init__.py:2:1: DF201", [used_here(flow)])
    assert "'pkg.impl'" in line


MUTATED_FROM_MISSING = """\
from metaflow import FlowSpec, step
from lib.muts import add_retry


@add_retry
class F(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
"""


@pytest.mark.parametrize(
    "flow, written, snippet",
    [
        (MUTATED_FROM_MISSING, "@add_retry", "@add_retry\n"),
        (
            MUTATED_FROM_MISSING.replace("lib.muts import add_retry", "lib.base import Base")
            .replace("@add_retry\n", "")
            .replace("F(FlowSpec)", "F(Base)"),
            "Base",
            "Base)",
        ),
    ],
    ids=["flow-decorator", "base-class"],
)
def test_df201_missing_module_of_a_flow_decorator_or_base(
    tmp_path: Path, flow: str, written: str, snippet: str
) -> None:
    """A flow mutator (or a base class) imported from a module that is not on the search
    path (a project's `lib/` without PYTHONPATH): whether Metaflow must evaluate it cannot
    be known, so it is reported as a step decorator's module is. It used to be taken for a
    plain class: the flow was copied as it is, its mutators unapplied, exit 0."""
    lines = rejected(tmp_path, flow)
    use = f"{where('flow.py', flow, snippet)}: note: {written} used here"
    line = expect(lines, "flow.py:2:1: DF201", [use])
    assert "'lib." in line and written in line, line


def test_df202_star_import_hides_the_decorator(tmp_path: Path) -> None:
    """`from decos import *`: which names it binds is not known without running it."""
    flow = make_flow("from decos import *", ["@deco"])
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_3})
    line = expect(lines, f"{where('flow.py', flow, '@deco')}: DF202")
    assert "star import" in line


def test_df202_name_not_defined_in_module(tmp_path: Path) -> None:
    """`from decos import deco` where decos.py defines no `deco`: at the import (mypy:
    'Module "decos" has no attribute "deco"' there), with a note at the use."""
    lines = rejected(tmp_path, FLOW, {"decos.py": "from metaflow import user_step_decorator\n"})
    line = expect(lines, "flow.py:2:1: DF202", [used_here(FLOW)])
    assert "not defined in decos.py" in line


def test_df202_name_not_defined_in_a_multiline_import(tmp_path: Path) -> None:
    """A parenthesized import over several lines: at its first line, as mypy reports it."""
    flow = make_flow("from decos import (\n    deco,\n    other,\n)", ["@other"])
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_3})
    line = expect(lines, "flow.py:2:1: DF202", [used_here(flow, "other")])
    assert "'other' is not defined in decos.py" in line


def test_df202_reexport_through_package_init(tmp_path: Path) -> None:
    """pkg/__init__.py re-exports `deco` from pkg/impl.py, which does not define it: at the
    re-export in pkg/__init__.py."""
    flow = make_flow("from pkg import deco", ["@deco"])
    modules = {"pkg/__init__.py": "from .impl import deco\n", "pkg/impl.py": "X = 1\n"}
    lines = rejected(tmp_path, flow, modules)
    line = expect(lines, "pkg/__init__.py:1:1: DF202", [used_here(flow)])
    assert "'deco' is not defined in pkg/impl.py" in line


def test_df202_relative_import_leaving_the_package(tmp_path: Path) -> None:
    """`from ...up import deco` in a top-level package: at that import."""
    flow = make_flow("from pkg import deco", ["@deco"])
    lines = rejected(tmp_path, flow, {"pkg/__init__.py": "from ...up import deco\n"})
    line = expect(lines, "pkg/__init__.py:1:1: DF202", [used_here(flow)])
    assert "relative import" in line


def test_df202_attribute_of_an_imported_module_is_at_the_use(tmp_path: Path) -> None:
    """`import decos` then `@decos.nothere`: the import is fine, the use names what is
    missing (mypy reports it there too)."""
    flow = make_flow("import decos", ["@decos.nothere"])
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_3})
    line = expect(lines, f"{where('flow.py', flow, '@decos.nothere')}: DF202")
    assert "'nothere' is not defined in decos.py" in line


def test_df202_alias_cycle(tmp_path: Path) -> None:
    """`deco = other` and `other = deco`: followed until the cycle shows, then reported."""
    lines = rejected(tmp_path, FLOW, {"decos.py": "deco = other\nother = deco\n"})
    line = expect(lines, f"{where('flow.py', FLOW, '@deco')}: DF202")
    assert "alias cycle" in line


def test_df203_step_mutator_on_a_step_is_now_expanded(tmp_path: Path) -> None:
    """A `StepMutator` subclass on a step was DF203 (it may add decorators at run time);
    Metaflow now evaluates it (issue 12) and the flow compiles. DF203 remains for a class
    that is both a StepMutator and a custom decorator when a mutator adds it."""
    module = dedent(
        """
        from metaflow import StepMutator


        class Deco(StepMutator):
            def mutate(self, mutable_step):
                mutable_step.add_decorator("retry", deco_kwargs={"times": 2})
        """
    )
    flow = make_flow("from decos import Deco", ["@Deco"])
    root = write_project(tmp_path, flow, {"decos.py": module})
    proc = compile_cli(root)
    assert proc.returncode == 0, proc.stderr
    out = (root / "out.py").read_text(encoding="utf-8")
    assert "Deco" not in out and "@retry(times=2)" in out


def test_flow_mutator_on_the_flow_class_is_expanded(tmp_path: Path) -> None:
    """A `FlowMutator` on the flow class was DF203; Metaflow now evaluates it (issue 12) and
    the flow compiles, the mutator gone from the output."""
    module = dedent(
        """
        from metaflow import FlowMutator


        class AddThings(FlowMutator):
            def mutate(self, mutable_flow):
                pass
        """
    )
    flow = make_flow("from mutators import AddThings").replace(
        "class MyFlow", "@AddThings\nclass MyFlow"
    )
    root = write_project(tmp_path, flow, {"mutators.py": module})
    proc = compile_cli(root)
    assert proc.returncode == 0, proc.stderr
    out = (root / "out.py").read_text(encoding="utf-8")
    assert "AddThings" not in out and "evaluated with Metaflow" in out


def test_df205_class_with_a_metaclass_or_a_dynamic_base(tmp_path: Path) -> None:
    """A class-based decorator whose class decoflow cannot follow: a metaclass, a base made
    at run time."""
    module = dedent(
        """
        from metaflow import UserStepDecorator


        class Meta(type):
            pass


        class Deco(UserStepDecorator, metaclass=Meta):
            def pre_step(self, step_name, flow, inputs=None):
                print("pre")


        def make_base():
            return UserStepDecorator


        class Other(make_base()):
            pass
        """
    )
    flow = make_flow("from decos import Deco", ["@Deco"])
    lines = rejected(tmp_path, flow, {"decos.py": module})
    line = expect(
        lines,
        f"{where('decos.py', module, 'class Deco')}: DF205",
        [f"{where('flow.py', flow, '@Deco')}: note: @Deco used here"],
    )
    assert "metaclass" in line


def test_df205_dynamic_base(tmp_path: Path) -> None:
    module = dedent(
        """
        from metaflow import UserStepDecorator

        BASES = {"plain": UserStepDecorator}


        class Middle(UserStepDecorator):
            pass


        class Deco(Middle, BASES["plain"]):
            pass
        """
    )
    flow = make_flow("from decos import Deco", ["@Deco"])
    lines = rejected(tmp_path, flow, {"decos.py": module})
    line = expect(lines, f"{where('decos.py', module, 'class Deco')}: DF205", [])
    assert "BASES" in line


def test_df206_machinery_overridden_or_read(tmp_path: Path) -> None:
    """Overriding Metaflow's UserStepDecorator machinery, or reading its internals."""
    module = dedent(
        """
        from metaflow import UserStepDecorator


        class Deco(UserStepDecorator):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)

            def pre_step(self, step_name, flow, inputs=None):
                print(self._kwargs)
        """
    )
    flow = make_flow("from decos import Deco", ["@Deco"])
    lines = rejected(tmp_path, flow, {"decos.py": module})
    first = expect(lines, f"{where('decos.py', module, 'def __init__')}: DF206", [])
    assert "__init__" in first
    second = expect(lines, f"{where('decos.py', module, 'self._kwargs')}: DF206", [])
    assert "_kwargs" in second


def test_df207_class_that_is_also_a_step_mutator(tmp_path: Path) -> None:
    """A class that is also a StepMutator compiles (its mutate applied by the expansion),
    unless its mutate keeps state on the instance: natively the hooks see it (the same
    instance runs mutate in every task before pre_step); the compiled flow runs no mutate."""
    module = dedent(
        """
        from metaflow import StepMutator, UserStepDecorator


        class Deco(UserStepDecorator, StepMutator):
            def mutate(self, mutable_step):
                self.seen = "mutated"

            def pre_step(self, step_name, flow, inputs=None):
                print(self.seen)
        """
    )
    flow = make_flow("from decos import Deco", ["@Deco"])
    lines = rejected(tmp_path, flow, {"decos.py": module})
    at = where("decos.py", module, 'self.seen = "mutated"')
    line = expect(lines, f"{at}: DF207", [])
    assert "mutate() keeps state on the instance (self.seen)" in line


@pytest.mark.parametrize(
    ("keeps", "attribute"),
    [
        ('self.seen.append("mutated")', "seen"),
        ("self.seen[0].update(v=1)", "seen"),
        ("del self.seen", "seen"),
        ("self._remember()", "seen"),  # a method of its own sets it
    ],
)
def test_df207_state_kept_in_place_or_by_a_method(tmp_path: Path, keeps, attribute) -> None:
    """State kept without an assignment in mutate itself: a method call on an instance
    attribute, a deletion, a helper method that assigns. Reading calls (`.get`) are not."""
    module = dedent(
        f"""
        from metaflow import StepMutator, UserStepDecorator


        class Deco(UserStepDecorator, StepMutator):
            def init(self, *args, **kwargs):
                self.seen = [{{}}]
                self.options = dict(kwargs)

            def _remember(self):
                self.seen = ["mutated"]

            def mutate(self, mutable_step):
                times = self.options.get("times", 1)
                {keeps}

            def pre_step(self, step_name, flow, inputs=None):
                print(self.seen)
        """
    )
    flow = make_flow("from decos import Deco", ["@Deco"])
    lines = rejected(tmp_path, flow, {"decos.py": module})
    target = 'self.seen = ["mutated"]' if keeps == "self._remember()" else keeps
    line = expect(lines, f"{where('decos.py', module, target)}: DF207", [])
    assert f"keeps state on the instance (self.{attribute})" in line


def test_class_arguments_metaflow_refuses(tmp_path: Path) -> None:
    """Positional arguments (the class does not allow them), and arguments to a class without
    its own init: Metaflow refuses both when the flow loads (DF101, DF102)."""
    module = dedent(
        """
        from metaflow import UserStepDecorator


        class NoInit(UserStepDecorator):
            pass


        class WithInit(UserStepDecorator):
            def init(self, *args, **kwargs):
                self.kwargs = kwargs
        """
    )
    flow = make_flow("from decos import NoInit, WithInit", ["@NoInit(k=1)"]).replace(
        "    @step\n    def end", "    @WithInit(1)\n    @step\n    def end"
    )
    lines = rejected(tmp_path, flow, {"decos.py": module})
    expect(
        lines,
        f"{where('flow.py', flow, '@NoInit')}: DF102",
        [f"{where('decos.py', module, 'class NoInit')}: note: NoInit defined here"],
    )
    expect(
        lines,
        f"{where('flow.py', flow, '@WithInit')}: DF101",
        [f"{where('decos.py', module, 'class WithInit')}: note: WithInit defined here"],
    )


def test_df204_decorator_built_at_run_time(tmp_path: Path) -> None:
    """`deco = make_decorator()`: the decorator is the result of a call."""
    module = dedent(
        """
        from metaflow import user_step_decorator


        def make_decorator():
            @user_step_decorator
            def inner(step_name, flow, inputs):
                yield

            return inner


        deco = make_decorator()
        """
    )
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(
        lines,
        f"{where('flow.py', FLOW, '@deco')}: DF204",
        [f"{where('decos.py', module, 'deco = make_decorator()')}: note: assigned here"],
    )


# --- DF3xx: the decorator's generator ----------------------------------------------------


def test_df301_decorator_never_yields(tmp_path: Path) -> None:
    """Held out: a decorator without any yield is not a generator."""
    module = decorator_module('print("no yield")\n')
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'def deco')}: DF301", [used_here(FLOW)])


def test_df301_yield_never_reached(tmp_path: Path) -> None:
    """A yield after an unconditional `return` can never run."""
    module = decorator_module("return\nyield\n")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'def deco')}: DF301", [used_here(FLOW)])


def test_df302_yield_inside_an_expression(tmp_path: Path) -> None:
    """`print((yield))`: the yield must be a statement of its own."""
    module = decorator_module("print((yield))\n")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'yield')}: DF302", [used_here(FLOW)])


def test_df303_yield_from(tmp_path: Path) -> None:
    """Held out: `yield from` delegates to another generator."""
    module = decorator_module("yield from [None]\n")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'yield from')}: DF303", [used_here(FLOW)])


def test_df304_yield_inside_a_loop(tmp_path: Path) -> None:
    """Held out: a yield inside a `for` loop."""
    module = decorator_module("for _ in range(2):\n    yield\n")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'yield')}: DF304", [used_here(FLOW)])


def test_df304_yield_inside_a_loop_of_a_decorator_in_the_flow(tmp_path: Path) -> None:
    """The same, for a decorator defined in the flow module itself (`while True`)."""
    flow = dedent(
        """
        from metaflow import FlowSpec, step, user_step_decorator


        @user_step_decorator
        def deco(step_name, flow, inputs):
            while True:
                yield


        class MyFlow(FlowSpec):

            @deco
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
        """
    )
    lines = rejected(tmp_path, flow)
    expect(lines, f"{where('flow.py', flow, 'yield')}: DF304", [used_here(flow)])


def test_df305_async_generator(tmp_path: Path) -> None:
    """Held out: `async def` makes an async generator, which Metaflow cannot run."""
    module = decorator_module("yield\n", head="async def")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'async def deco')}: DF305", [used_here(FLOW)])


def test_df305_async_code_in_a_plain_generator(tmp_path: Path) -> None:
    """`async with` inside a plain `def` generator."""
    module = decorator_module("async with lock:\n    pass\nyield\n")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'def deco')}: DF305", [used_here(FLOW)])


def test_df306_two_parameters(tmp_path: Path) -> None:
    """Held out: a decorator taking two parameters."""
    module = decorator_module("yield\n", params="step_name, flow")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    line = expect(lines, f"{where('decos.py', module, 'def deco')}: DF306", [used_here(FLOW)])
    assert "takes 2 parameter(s)" in line


def test_df306_star_parameters(tmp_path: Path) -> None:
    """`*inputs`: the parameters must be positional names."""
    module = decorator_module("yield\n", params="step_name, flow, *inputs")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'def deco')}: DF306", [used_here(FLOW)])


def test_df307_return_with_a_value(tmp_path: Path) -> None:
    """`return 42` after the yield: Metaflow accepts only a bare `return`."""
    module = decorator_module("yield\nreturn 42\n")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'return 42')}: DF307", [used_here(FLOW)])


def test_df308_two_yields_on_one_path(tmp_path: Path) -> None:
    """Held out: two yields one after the other; the second is the offending one."""
    module = decorator_module('yield\nprint("again")\nyield\n')
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'yield', 2)}: DF308", [used_here(FLOW)])


def test_df308_second_yield_in_a_branch(tmp_path: Path) -> None:
    """A yield, then another one in an `if`: one path yields twice."""
    module = decorator_module("yield\nif flow.x:\n    yield\n")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    expect(lines, f"{where('decos.py', module, 'yield', 2)}: DF308", [used_here(FLOW)])


# --- DF4xx: --with specs -----------------------------------------------------------------

PLAIN = make_flow()


@pytest.mark.parametrize(
    "spec",
    [
        "decos.deco:k",  # an attribute without `=value`
        "1bad",  # not a name
        "decos..deco",  # an empty module part
        "",  # nothing at all
        ":k=1",  # attributes but no name
        "decos.deco:=1",  # a value without a name
        "retry:times",  # a built-in with a malformed attribute
    ],
)
def test_df401_malformed_with_spec(tmp_path: Path, spec: str) -> None:
    """Held out: a malformed `--with` target; located at the flow (it came from the command
    line)."""
    lines = rejected(tmp_path, PLAIN, {"decos.py": GOOD_4}, "--with", spec)
    line = expect(lines, "flow.py:1:1: DF401")
    assert f"--with '{spec}'" in line


@pytest.mark.parametrize(
    ("spec", "reason"),
    [("nomodule.deco", "cannot find module 'nomodule'"), ("decos.nothere", "'nothere'")],
)
def test_df402_with_target_not_found(tmp_path: Path, spec: str, reason: str) -> None:
    """`--with` naming a module that does not exist, or a name its module does not define."""
    lines = rejected(tmp_path, PLAIN, {"decos.py": GOOD_3}, "--with", spec)
    line = expect(lines, "flow.py:1:1: DF402")
    assert reason in line


def test_df402_with_target_whose_module_imports_a_missing_one(tmp_path: Path) -> None:
    """`--with decos.deco` where decos.py imports `deco` from a module that does not exist:
    at decos.py's import, with a note naming the `--with` spec (located at flow.py:1:1)."""
    modules = {"decos.py": "from nosuchhelpers import deco\n"}
    lines = rejected(tmp_path, PLAIN, modules, "--with", "decos.deco")
    note = "flow.py:1:1: note: --with 'decos.deco' given here"
    line = expect(lines, "decos.py:1:1: DF402", [note])
    assert "cannot find module 'nosuchhelpers'" in line


def test_df403_with_target_is_not_a_generator_decorator(tmp_path: Path) -> None:
    """`--with decos.LIMIT` where LIMIT is a plain value."""
    lines = rejected(
        tmp_path, PLAIN, {"decos.py": GOOD_3 + "\n\nLIMIT = 3\n"}, "--with", "decos.LIMIT"
    )
    expect(lines, "flow.py:1:1: DF403")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [("metaflow.retry", "short name"), ("deco", "unknown decorator 'deco'")],
)
def test_df404_with_names_a_metaflow_decorator_wrongly(
    tmp_path: Path, spec: str, reason: str
) -> None:
    """`--with metaflow.retry` (write `retry`), or a bare name that is no Metaflow decorator."""
    lines = rejected(tmp_path, PLAIN, {"decos.py": GOOD_3}, "--with", spec)
    line = expect(lines, "flow.py:1:1: DF404")
    assert reason in line


def test_problem_in_with_attached_decorator_names_the_module(tmp_path: Path) -> None:
    """A `--with` decorator whose generator is invalid is reported in its own module."""
    module = decorator_module("for _ in range(2):\n    yield\n")
    lines = rejected(tmp_path, PLAIN, {"decos.py": module}, "--with", "decos.deco")
    expect(lines, f"{where('decos.py', module, 'yield')}: DF304")


# --- DF6xx: warnings (the compile succeeds) ----------------------------------------------


def test_df601_inspect_about_a_compiled_step_warns_and_compiles(tmp_path: Path) -> None:
    """getsource of the step is answered with the original text (no warning); getsourcelines
    of it, and getsource of something not identified, warn at the call with the use site as a
    note; the compile succeeds (exit 0, output written, nothing on stdout)."""
    module = decorator_module(
        """
        import inspect
        method = getattr(flow, step_name)
        flow.text = inspect.getsource(method)
        flow.where = inspect.getsourcelines(method)[1]
        flow.other = inspect.getsource(pick(flow))
        yield
        """
    ).replace("from metaflow", "def pick(flow):\n    return flow.start\n\n\nfrom metaflow", 1)
    root = write_project(tmp_path, FLOW, {"decos.py": module})
    proc = compile_cli(root)
    report = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0 and proc.stdout == "" and "Traceback" not in proc.stderr, report
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("wrote ")]
    for line in lines:
        assert DIAGNOSTIC_LINE.match(line) or NOTE_LINE.match(line), f"not a diagnostic: {line!r}"
    lines_at = where("decos.py", module, "inspect.getsourcelines")
    expect(lines, f"{lines_at}: DF601", [used_here(FLOW)])
    other = expect(lines, f"{where('decos.py', module, 'inspect.getsource(pick')}: DF601")
    assert "cannot tell whether inspect.getsource(...) is about a step" in other
    assert len([line for line in lines if " DF601 " in line]) == 2, report
    out = (root / "out.py").read_text(encoding="utf-8")
    assert "self.text = START_SOURCE" in out
    assert '    "    @deco\\n"\n    "    @step\\n"\n    "    def start(self):\\n"' in out


def assert_compiled(proc: subprocess.CompletedProcess[str], root: Path) -> list[str]:
    """Exit 0, the output written, nothing on stdout, no traceback; every stderr line (but
    `wrote ...`) a diagnostic or a note. Returns those lines."""
    report = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0 and proc.stdout == "" and "Traceback" not in proc.stderr, report
    assert (root / "out.py").exists(), report
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("wrote ")]
    for line in lines:
        assert DIAGNOSTIC_LINE.match(line) or NOTE_LINE.match(line), f"not a diagnostic: {line!r}"
    return lines


#: A project module the flow uses for its own helper, that also defines a (unused) mutator.
TRIGGERS = dedent(
    """
    from metaflow import FlowMutator, current


    def raise_event(name):
        print("event", name, current.flow_name)


    class namespaced(FlowMutator):
        def mutate(self, mutable_flow):
            pass
    """
)


def _helper_flow(imports: str, call: str) -> str:
    return make_flow(imports).replace("self.x = 1", f"self.x = 1\n        {call}")


def test_df602_kept_import_of_a_module_that_imports_a_mutator(tmp_path: Path) -> None:
    """The flow keeps `from triggers import raise_event` (not a decorator: nothing to
    inline); `triggers` imports FlowMutator, so the output needs it and Metaflow 2.16+: a
    warning at the flow's import, a note at the module's; the compile succeeds."""
    flow = _helper_flow("from triggers import raise_event", 'raise_event("x")')
    root = write_project(tmp_path, flow, {"triggers.py": TRIGGERS})
    lines = assert_compiled(compile_cli(root), root)
    head = f"{where('flow.py', flow, 'from triggers')}: DF602"
    note = f"{where('triggers.py', TRIGGERS, 'from metaflow')}: note: triggers imports "
    note += "FlowMutator here"
    line = expect(lines, head, [note])
    assert "still imports triggers, which imports FlowMutator from metaflow" in line
    assert "needs triggers.py beside it, and Metaflow 2.16+, at run time" in line
    assert len([x for x in lines if " DF602 " in x]) == 1, lines
    assert "from triggers import raise_event" in (root / "out.py").read_text(encoding="utf-8")


def test_df602_one_level_through_a_module_it_imports(tmp_path: Path) -> None:
    """`from helpers import fmt` (kept: the flow has nothing to inline) where helpers imports
    `triggers`, which imports FlowMutator: warned, with a note at each import of the chain.
    (In a flow with a decorator to inline, `fmt` would be carried and the import dropped.)"""
    helpers = "import json\n\nimport triggers\n\n\ndef fmt(x):\n    return json.dumps(x)\n"
    flow = _helper_flow("from helpers import fmt", "print(fmt(1))")
    root = write_project(tmp_path, flow, {"helpers.py": helpers, "triggers.py": TRIGGERS})
    lines = assert_compiled(compile_cli(root), root)
    line = expect(
        lines,
        f"{where('flow.py', flow, 'from helpers')}: DF602",
        [
            f"{where('helpers.py', helpers, 'import triggers')}: note: "
            "helpers imports triggers here",
            f"{where('triggers.py', TRIGGERS, 'from metaflow')}: note: "
            "triggers imports FlowMutator here",
        ],
    )
    assert "still imports helpers, which imports triggers, which imports FlowMutator" in line
    assert "needs helpers.py and triggers.py beside it" in line
    assert len([x for x in lines if " DF602 " in x]) == 1, lines


def test_df602_decorator_module_the_flow_reads_bare(tmp_path: Path) -> None:
    """`import decos`, used as `@decos.deco` and passed around bare (`print(decos)`): the
    decorator is inlined, the import stays (README, known gaps), and is warned about."""
    flow = _helper_flow("import decos", "print(decos)").replace(
        "    @step\n    def start", "    @decos.deco\n    @step\n    def start", 1
    )
    root = write_project(tmp_path, flow, {"decos.py": GOOD_3})
    lines = assert_compiled(compile_cli(root), root)
    note = f"{where('decos.py', GOOD_3, 'from metaflow')}: note: decos imports "
    note += "user_step_decorator here"
    line = expect(lines, f"{where('flow.py', flow, 'import decos')}: DF602", [note])
    assert "still imports decos, which imports user_step_decorator from metaflow" in line


def test_df602_flow_importing_a_newer_name_itself(tmp_path: Path) -> None:
    """The flow imports FlowMutator (for a mutator it defines and never applies): nothing is
    expanded or dropped, the output keeps the import, and it is warned about."""
    flow = make_flow().replace("FlowSpec, step", "FlowSpec, FlowMutator, step", 1)
    flow = flow.replace("class MyFlow", "class unused(FlowMutator):\n    pass\n\n\nclass MyFlow")
    root = write_project(tmp_path, flow)
    lines = assert_compiled(compile_cli(root), root)
    line = expect(lines, "flow.py:1:1: DF602")
    assert "still imports FlowMutator from metaflow, which only Metaflow 2.16+ has" in line
    assert len(lines) == 1, lines


def test_no_df602_for_a_plain_helper_module_or_a_dropped_decorator_import(
    tmp_path: Path,
) -> None:
    """A project helper module importing only Metaflow's older names (kept) and a decorator
    module (importing `user_step_decorator`) fully inlined, its import dropped: no warning."""
    helpers = "from metaflow import current\n\n\ndef fmt(x):\n    return f'{x} {current}'\n"
    flow = _helper_flow("from decos import deco\nfrom helpers import fmt", "print(fmt(1))")
    flow = flow.replace("    @step\n    def start", "    @deco\n    @step\n    def start", 1)
    root = write_project(tmp_path, flow, {"helpers.py": helpers, "decos.py": GOOD_3})
    lines = assert_compiled(compile_cli(root), root)
    assert lines == [], lines
    out = (root / "out.py").read_text(encoding="utf-8")
    assert "from helpers import fmt" in out and "import decos" not in out
    assert "from decos" not in out


# --- the catalogue is complete -----------------------------------------------------------


def _documented() -> dict[str, str]:
    """The codes docs/diagnostics.md has a section for, each with the title its section
    opens with in bold (without the closing period)."""
    text = DOCS.read_text(encoding="utf-8")
    sections = re.findall(r"^### (DF\d{3})\n\n\*\*(.+?)\*\*", text, flags=re.M | re.S)
    assert len(sections) == len(re.findall(r"^### DF", text, flags=re.M)), "a section has no title"
    return {code: " ".join(title.split()).rstrip(".") for code, title in sections}


def test_every_code_is_documented_and_tested() -> None:
    """Every code of the registry has a section of docs/diagnostics.md with its title, is
    reported by the compiler, and has a test here."""
    tested = {
        m.upper()
        for m in re.findall(r"^def test_(df\d{3})_", Path(__file__).read_text(), flags=re.M)
    }
    documented = _documented()
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for path in (REPO_ROOT / "transformer").rglob("*.py")
        if path.name != "diagnostics.py"
    )
    for entry in CODES:
        assert documented.get(entry.code) == entry.title, f"{entry.code}: title differs"
        assert entry.anchor == f"docs/diagnostics.md#{entry.code.lower()}"  # `### DFxxx`
        name = next(n for n, v in vars(diagnostics).items() if v is entry)
        # imported by a pass and used there (called, or chosen: `code = UNRESOLVED_DECORATOR`)
        used = len(re.findall(rf"\b{name}\b", sources)) >= 2
        assert used, f"{entry.code} is never reported"
        assert entry.code in tested, f"{entry.code} has no test"


def test_the_documentation_cannot_drift_from_the_registry() -> None:
    """docs/diagnostics.md documents exactly the codes of the registry, and the compiler
    writes no code outside it (no `"DFxxx"` literal)."""
    assert set(_documented()) == {entry.code for entry in CODES}
    assert len({entry.code for entry in CODES}) == len(CODES), "a code is declared twice"
    for path in (REPO_ROOT / "transformer").rglob("*.py"):
        if path.name == "diagnostics.py":
            continue
        literals = re.findall(r"[\"'](DF\d{3})[\"']", path.read_text(encoding="utf-8"))
        assert literals == [], f"{path.name} writes a code outside the registry: {literals}"


# --- problems found while writing this catalogue, since fixed ----------------------------------


def _python_syntax_error_line(text: str) -> int:
    """The line CPython reports for a syntax error in `text` (parsed, never run)."""
    try:
        ast.parse(text)
    except SyntaxError as err:
        assert err.lineno is not None
        return err.lineno
    raise AssertionError("the input has no syntax error")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("self.x = 1", "self.x = 1 +* 2"),  # reported on the next line
        ("self.x = 1", "self.x = (1"),  # reported two lines late
        ("self.x = 1", "self.x = 1)"),  # reported at 1:1
        ("def start(self):", "def start(self)"),  # missing colon: reported a line late
    ],
)
def test_df001_names_the_offending_line(tmp_path: Path, old: str, new: str) -> None:
    """A syntax error in the flow is reported on the line where CPython reports it."""
    flow = FLOW.replace(old, new, 1)
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_3})
    line = _python_syntax_error_line(flow)
    assert lines[0].startswith(f"flow.py:{line}:"), lines


def test_df001_in_decorator_module_names_line_and_use_site(tmp_path: Path) -> None:
    """Held out, fully: `decos.py:5:...: DF001` (the `def` missing its colon), then a note
    in flow.py naming where the module is used (the `@deco` or its import)."""
    module = GOOD_3.replace("inputs):", "inputs)")
    lines = rejected(tmp_path, FLOW, {"decos.py": module})
    assert lines[0].startswith(f"decos.py:{_python_syntax_error_line(module)}:"), lines
    assert any(line.startswith("flow.py:") and ": note: " in line for line in lines[1:]), lines


def test_df003_names_the_deep_statement(tmp_path: Path) -> None:
    """DF003 points at the line holding the too-deep expression."""
    flow = FLOW.replace("self.x = 1", "self.x = " + " + ".join(["1"] * 1000))
    lines = rejected(tmp_path, flow, {"decos.py": GOOD_3})
    line = where("flow.py", flow, "self.x = 1 + 1").rsplit(":", 1)[0]
    assert lines[0].startswith(line + ":"), lines


def test_comprehension_attribute_value_is_accepted(tmp_path: Path) -> None:
    """`@deco(k=[i for i in range(3)])` is a valid value Metaflow evaluates at class creation."""
    flow = make_flow("from decos import deco", ["@deco(k=[i for i in range(3)])"])
    root = write_project(tmp_path, flow, {"decos.py": GOOD_4})
    proc = compile_cli(root)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("spec", ["retry:class=1", "retry:None=1"])
def test_with_keyword_attribute_name(tmp_path: Path, spec: str) -> None:
    """`--with retry:class=1`: rejected with DF401, or written as valid Python."""
    root = write_project(tmp_path, PLAIN, {"decos.py": GOOD_4})
    proc = compile_cli(root, "--with", spec)
    if proc.returncode == 0:
        ast.parse((root / "out.py").read_text(encoding="utf-8"))  # raises on invalid output
    else:
        expect(assert_rejected(proc, root), "flow.py:1:1: DF401")


@pytest.mark.parametrize("spec", ["retry:times=1e999", "decos.deco:k=NaN"])
def test_with_non_finite_value(tmp_path: Path, spec: str) -> None:
    """A non-finite `--with` value is written as a valid expression or rejected with DF401."""
    root = write_project(tmp_path, PLAIN, {"decos.py": GOOD_4})
    proc = compile_cli(root, "--with", spec)
    if proc.returncode == 0:
        code = (root / "out.py").read_text(encoding="utf-8")
        assert not re.search(r"[=:] ?(inf|nan)\b", code), code
    else:
        lines = assert_rejected(proc, root)
        expect(lines, "flow.py:1:1: DF401")


@pytest.mark.parametrize("case", ["star-args", "with-args-to-3-params"])
def test_one_problem_one_diagnostic(tmp_path: Path, case: str) -> None:
    """One mistake gives one diagnostic."""
    if case == "star-args":
        module = decorator_module("yield\n", params="step_name, flow, *inputs")
        lines = rejected(tmp_path, FLOW, {"decos.py": module})
    else:
        lines = rejected(tmp_path, PLAIN, {"decos.py": GOOD_3}, "--with", "decos.deco:k=1")
    heads = [line for line in lines if DIAGNOSTIC_LINE.match(line)]
    assert len(heads) == 1, lines


# --- DF5xx: flows whose mutators and configs Metaflow evaluates (issue 12) ---------------------

MUTATOR_FLOW = '''\
from metaflow import FlowSpec, step

from muts import {name}


@{name}
class MutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''

MUTATORS = '''\
import os
import sys
import time

from metaflow import FlowMutator, Parameter


class boom(FlowMutator):
    def mutate(self, mutable_flow):
        raise ValueError("no limits configured")


class leave(FlowMutator):
    def mutate(self, mutable_flow):
        sys.exit(3)


class hang(FlowMutator):
    def mutate(self, mutable_flow):
        while True:
            time.sleep(0.05)


class vanish(FlowMutator):
    def mutate(self, mutable_flow):
        os._exit(0)


class odd_param(FlowMutator):
    def pre_mutate(self, mutable_flow):
        mutable_flow.add_parameter("when", Parameter("when", default=lambda ctx: 1))


def check_limits(cfg):
    return cfg["limits"]


class via_helper(FlowMutator):
    def mutate(self, mutable_flow):
        check_limits({})
'''


def _mutator_project(tmp_path: Path, name: str) -> Path:
    return write_project(tmp_path, MUTATOR_FLOW.format(name=name), {"muts.py": MUTATORS})


def test_df501_no_metaflow_names_the_mutator(tmp_path: Path) -> None:
    """No interpreter with metaflow >= 2.16: the mutator is named, the fix said."""
    root = _mutator_project(tmp_path, "boom")
    line = expect(
        assert_rejected(compile_cli(root, "--python", "/usr/bin/python3"), root),
        "flow.py:6:1: DF501",
    )
    assert "@boom needs Metaflow >= 2.16" in line and "--python" in line
    assert "install metaflow" in line


def test_df502_mutator_raising_points_at_its_line(tmp_path: Path) -> None:
    root = _mutator_project(tmp_path, "boom")
    line = expect(assert_rejected(compile_cli(root), root), "muts.py:10:9: DF502")
    assert "ValueError: no limits configured" in line and "boom.mutate" in line


def test_df502_helper_raising_names_the_mutator_calling_it(tmp_path: Path) -> None:
    """The innermost frame is a module-level helper: located there, the mutator named."""
    root = _mutator_project(tmp_path, "via_helper")
    lines = assert_rejected(compile_cli(root), root)
    line = expect(lines, "muts.py:35:12: DF502")
    assert "KeyError: 'limits'" in line and "via_helper.mutate" in line
    assert any(n.startswith("muts.py:40:9: note: in mutate") for n in lines), lines


CONFIG_EXPR_FLOW = '''\
from metaflow import Config, FlowSpec, config_expr, step

from decos import tag


class ExprFlow(FlowSpec):
    run = Config("run", default_value={"label": "x"})

    @tag(value=config_expr("run.labels"))
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''

TAG_DECO = '''\
from metaflow import user_step_decorator


@user_step_decorator
def tag(step_name, flow, inputs=None, attributes=None):
    flow.tagged = attributes["value"]
    yield
'''


def test_df502_config_expr_failing_points_at_it(tmp_path: Path) -> None:
    """A config_expr reading a missing key: Metaflow evaluates its text (`<string>`), so the
    diagnostic is at the config_expr(...) in the flow, naming the expression."""
    root = write_project(tmp_path, CONFIG_EXPR_FLOW, {"decos.py": TAG_DECO})
    lines = assert_rejected(compile_cli(root), root)
    line = expect(lines, "flow.py:9:16: DF502")
    assert "AttributeError: labels" in line and "config_expr('run.labels')" in line
    assert not any("<string>" in n for n in lines), lines


def test_df502_mutator_calling_sys_exit(tmp_path: Path) -> None:
    root = _mutator_project(tmp_path, "leave")
    line = expect(assert_rejected(compile_cli(root), root), "muts.py:15:9: DF502")
    assert "called sys.exit(3)" in line


def test_df503_mutator_that_hangs_times_out(tmp_path: Path) -> None:
    root = _mutator_project(tmp_path, "hang")
    lines = assert_rejected(compile_cli(root, "--expansion-timeout", "2"), root)
    assert lines[0].startswith(("muts.py:21:", "muts.py:22:")), lines
    assert " DF503 " in lines[0] and "within 2s" in lines[0]


def test_df504_process_ending_abruptly(tmp_path: Path) -> None:
    root = _mutator_project(tmp_path, "vanish")
    line = expect(assert_rejected(compile_cli(root), root), "flow.py:6:1: DF504")
    assert "ended abruptly" in line


def test_df505_bad_config_value(tmp_path: Path) -> None:
    config = '    cfg = Config("cfg", default_value={})\n\n'
    flow = MUTATOR_FLOW.format(name="boom").replace(
        "class MutFlow(FlowSpec):\n", "class MutFlow(FlowSpec):\n" + config
    ).replace("from metaflow import FlowSpec, step", "from metaflow import Config, FlowSpec, step")
    root = write_project(tmp_path, flow, {"muts.py": MUTATORS})
    lines = assert_rejected(compile_cli(root, "--config-value", "cfg", "{not json"), root)
    line = expect(lines, "flow.py:8:11: DF505")  # at the Config(...) Metaflow names
    assert "not valid JSON" in line


def test_df505_points_at_each_config_metaflow_names(tmp_path: Path) -> None:
    """Every config Metaflow names in its error is located: the first as the error, the
    others as notes (a config declared in another module has no place here)."""
    config = (
        '    fine = Config("fine", default_value={})\n'
        '    cfg = Config("cfg", default="missing.json")\n'
        '    req = Config(name="req", required=True)\n\n'
    )
    flow = MUTATOR_FLOW.format(name="boom").replace(
        "class MutFlow(FlowSpec):\n", "class MutFlow(FlowSpec):\n" + config
    ).replace("from metaflow import FlowSpec, step", "from metaflow import Config, FlowSpec, step")
    root = write_project(tmp_path, flow, {"muts.py": MUTATORS})
    lines = assert_rejected(compile_cli(root), root)
    line = expect(lines, "flow.py:10:11: DF505")  # Metaflow names req first
    assert "could not be read for 'cfg'" in line and "missing configuration for 'req'" in line
    assert "flow.py:9:11: note: 'cfg' is declared here" in lines


def test_df506_parameter_that_cannot_be_written(tmp_path: Path) -> None:
    root = _mutator_project(tmp_path, "odd_param")
    line = expect(assert_rejected(compile_cli(root), root), "flow.py:7:1: DF506")
    assert "'when'" in line


def test_df507_base_member_reading_a_name_the_flow_binds_differently(tmp_path: Path) -> None:
    """A base class in another module with custom decorators is flattened into the flow
    class; the helper `greet` its steps read is carried as `basesteps_greet` (the flow has
    its own `greet`), but the decorator `tagged` cannot be renamed when the flow module
    binds `tagged` to something else."""
    base = (
        "from metaflow import FlowSpec, step, user_step_decorator\n\n\n"
        "@user_step_decorator\n"
        "def tagged(step_name, flow, inputs=None, attributes=None):\n"
        "    yield\n\n\n"
        "def greet():\n"
        '    return "hi"\n\n\n'
        "class BaseFlow(FlowSpec):\n"
        "    @tagged\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.text = greet()\n"
        "        self.next(self.end)\n\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
    )
    flow = (
        "from basesteps import BaseFlow\n\n\n"
        "def greet():\n"
        "    return 0\n\n\n"
        "tagged = None\n\n\n"
        "class F(BaseFlow):\n"
        "    pass\n"
    )
    root = write_project(tmp_path, flow, {"basesteps.py": base})
    line = expect(assert_rejected(compile_cli(root), root), "flow.py:11:1: DF507")
    assert "tagged, which the carried members of a base class read from basesteps.py" in line
    assert "greet" not in line


def test_mutator_output_is_shown_and_does_not_corrupt_stdout(tmp_path: Path) -> None:
    """What a mutator prints goes to stderr, as it came; the compiled flow alone on stdout,
    where the line is only the compiled flow's own print of it (natively each process that
    loads the flow runs the mutators again and prints it)."""
    mutators = MUTATORS + '''

class chatty(FlowMutator):
    def mutate(self, mutable_flow):
        print("chatty says hello")
'''
    root = write_project(tmp_path, MUTATOR_FLOW.format(name="chatty"), {"muts.py": mutators})
    proc = subprocess.run(
        [*DECOFLOW, "compile", "flow.py"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["chatty says hello"]
    body = proc.stdout.split("\n", 3)[3]
    assert [ln for ln in body.splitlines() if "chatty" in ln] == [
        'print("chatty says hello\\n", end="")'
    ]
    ast.parse(proc.stdout)
