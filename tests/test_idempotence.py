"""Idempotence: compiling is a fixed point.

* A flow without custom decorators compiles to its own text (at most with the
  generated-file header, a few comment lines, in front).
* Compiling a compiled flow returns it unchanged, whether the compiled flow is alone in its
  folder or next to the decorator modules of the original.

Checked for every flow of every fixture folder (`fixtures/**/*flow.py`, regression
fixtures included), for the fixture flows with their custom decorators stripped, and for
flows drawn by `strategies.fuzz_cases` (with and without decorators).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import libcst as cst
import pytest
from decoflow.transformer import CompileError, CompileOptions, CompileWarning, compile_file
from harness import REPO_ROOT
from hypothesis import HealthCheck, given, settings
from strategies import FLOW_FILE, fuzz_cases
from test_fuzz_differential import KNOWN_COMPILER_BUGS

FIXTURES = REPO_ROOT / "fixtures"
FIXTURE_FLOWS = sorted(FIXTURES.glob("**/*flow.py"))

#: Regression fixtures (fixtures/regressions/<name>) whose known compiler bug also breaks
#: the fixed point: while <name> is in test_fuzz_differential.KNOWN_COMPILER_BUGS, the
#: compiled-fixture test is a strict expected failure for it.
FIXED_POINT_BROKEN_BY = {"encoding_cookie_latin1"}


def _fixture_id(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()


def _fixed_point_params() -> list[object]:
    params = []
    for flow in FIXTURE_FLOWS:
        name = flow.parent.name
        marks = []
        if (
            flow.parent.parent.name == "regressions"
            and name in FIXED_POINT_BROKEN_BY
            and name in KNOWN_COMPILER_BUGS
        ):
            marks.append(pytest.mark.xfail(reason=KNOWN_COMPILER_BUGS[name], strict=True))
        params.append(pytest.param(flow, id=_fixture_id(flow), marks=marks))
    return params


def _copy_folder(flow: Path, dest: Path) -> Path:
    """Copy the flow's folder to `dest`; return the copied flow's path."""
    shutil.copytree(flow.parent, dest, ignore=shutil.ignore_patterns("__pycache__", ".metaflow"))
    return dest / flow.name


def assert_fixed_point(compiled: str, where: Path, name: str) -> None:
    """Compiling `compiled` (written as `where/name`) gives it back unchanged."""
    where.mkdir(parents=True, exist_ok=True)
    path = where / name
    path.write_text(compiled, encoding="utf-8", newline="")
    again = compile_file(path)
    assert again == compiled, (
        f"compiling the compiled flow {path} changed it:\n" + _first_difference(compiled, again)
    )


def assert_own_text(source: str, output: str) -> None:
    """`output` is `source`, or `source` with only comment lines in front of it."""
    if output == source:
        return
    assert output.endswith(source), (
        "a flow without custom decorators was changed by compiling:\n"
        + _first_difference(source, output)
    )
    header = output[: len(output) - len(source)]
    bad = [
        line for line in header.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    assert not bad, f"the header added to a plain flow is not only comments: {bad}"


def _first_difference(expected: str, actual: str) -> str:
    a, b = expected.splitlines(), actual.splitlines()
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {i + 1}:\n  expected: {x!r}\n  actual:   {y!r}"
    return f"lengths differ: {len(a)} vs {len(b)} lines"


class _StripCustomDecorators(cst.CSTTransformer):
    """Remove every decorator that is not imported from metaflow (and in-flow decorator
    definitions): what is left is a plain Metaflow flow."""

    def __init__(self) -> None:
        self.metaflow_names: set[str] = set()

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = node.module
        dotted = cst.Module([]).code_for_node(module) if module is not None else ""
        if dotted == "metaflow" and not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                bound = alias.asname.name if alias.asname else alias.name
                if isinstance(bound, cst.Name):
                    self.metaflow_names.add(bound.value)

    def _keeps(self, decorator: cst.Decorator) -> bool:
        expr = decorator.decorator
        if isinstance(expr, cst.Call):
            expr = expr.func
        return isinstance(expr, cst.Name) and expr.value in self.metaflow_names

    def leave_FunctionDef(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef | cst.RemovalSentinel:
        names = [d.decorator for d in original.decorators]
        if any(isinstance(n, cst.Name) and n.value == "user_step_decorator" for n in names):
            return cst.RemoveFromParent()
        if not any(isinstance(n, cst.Name) and n.value == "step" for n in names):
            return updated
        return updated.with_changes(decorators=[d for d in updated.decorators if self._keeps(d)])

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        """Class decorators that are not Metaflow's (a generated flow mutator) go too."""
        return updated.with_changes(decorators=[d for d in updated.decorators if self._keeps(d)])


    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        """`deco = user_step_decorator(gen)` makes a decorator too."""
        small = original.body[0] if len(original.body) == 1 else None
        if (
            isinstance(small, cst.Assign)
            and isinstance(small.value, cst.Call)
            and isinstance(small.value.func, cst.Name)
            and small.value.func.value == "user_step_decorator"
        ):
            return cst.RemoveFromParent()
        return updated


def strip_custom_decorators(source: bytes) -> bytes:
    """The flow without its custom decorator uses and in-flow decorator definitions (in
    the flow's own encoding)."""
    return cst.parse_module(source).visit(_StripCustomDecorators()).bytes


# --------------------------------------------------------------------------------------
# Fixtures


def test_fixture_flows_found() -> None:
    """The fixture glob is not vacuous."""
    assert len(FIXTURE_FLOWS) >= 10, FIXTURE_FLOWS


def _copy_and_compile(
    flow: Path, dest: Path, source: Callable[[Path], Path] | None = None
) -> tuple[Path, str]:
    """Copy the flow's top-level fixture folder to `dest` and compile `source` there (the
    copied flow by default): as is, else with every folder of the fixture on the search
    path (for fixtures whose decorator packages live in side folders). A fixture that
    does not compile fails the test."""
    top = FIXTURES / flow.relative_to(FIXTURES).parts[0]
    shutil.copytree(top, dest, ignore=shutil.ignore_patterns("__pycache__", ".metaflow"))
    copied = dest / flow.relative_to(top)
    target = source(copied) if source else copied
    try:
        return copied, compile_file(target)
    except CompileError:
        folders = tuple(p for p in sorted(dest.rglob("*")) if p.is_dir())
        try:
            return copied, compile_file(target, CompileOptions(search_path=folders))
        except CompileError as err:
            first = str(err).splitlines()[0]
            pytest.fail(f"{_fixture_id(flow)} does not compile: {first}")


@pytest.mark.parametrize("flow", _fixed_point_params())
def test_compiled_fixture_is_a_fixed_point(flow: Path, tmp_path: Path) -> None:
    """compile(compile(flow)) == compile(flow), alone and next to the decorator modules."""
    copied, compiled = _copy_and_compile(flow, tmp_path / "src")
    assert_fixed_point(compiled, tmp_path / "alone", flow.name)
    assert_fixed_point(compiled, copied.parent, f"compiled_{flow.name}")


@contextmanager
def _only_df602() -> Iterator[None]:
    """A flow stripped of its custom decorators still imports their module, which imports
    what only Metaflow 2.16+ has: DF602 says so, rightly. Any other warning fails."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CompileWarning)
        yield
    for warning in caught:
        if isinstance(warning.message, CompileWarning):
            assert warning.message.diagnostic.code == "DF602", str(warning.message)


def _write_plain(copied: Path) -> Path:
    """Write the copied flow without its custom decorators next to it; return its path."""
    target = copied.with_name(f"plain_{copied.name}")
    target.write_bytes(strip_custom_decorators(copied.read_bytes()))
    return target


#: Fixture folders whose flows inherit custom-decorated steps from base classes in other
#: modules: without their own decorators they are still compiled (the bases flattened).
INHERITING = {"inherited"}


@pytest.mark.parametrize(
    "flow", [f for f in FIXTURE_FLOWS if f.parent.name not in INHERITING], ids=_fixture_id
)
def test_plain_fixture_compiles_to_itself(flow: Path, tmp_path: Path) -> None:
    """The fixture flow with its custom decorators stripped compiles to its own text."""
    with _only_df602():
        copied, output = _copy_and_compile(flow, tmp_path / "src", source=_write_plain)
        plain = copied.with_name(f"plain_{copied.name}").read_bytes()
        assert_own_text(cst.parse_module(plain).code, output)
        assert_fixed_point(output, tmp_path / "alone", f"plain_{flow.name}")


# --------------------------------------------------------------------------------------
# Generated flows

_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.large_base_example,
    ],
)


@_SETTINGS
@given(case=fuzz_cases())
def test_generated_flow_fixed_point(case, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Generated flows: compiling the compiled flow changes nothing; stripped of their
    decorators they compile to themselves."""
    folder = tmp_path_factory.mktemp("gen")
    flow = case.write(folder / "src")
    compiled = compile_file(flow)
    assert_fixed_point(compiled, folder / "alone", FLOW_FILE)

    plain = strip_custom_decorators(case.flow_source.encode("utf-8"))
    plain_file = flow.with_name("plainflow.py")
    plain_file.write_bytes(plain)
    with _only_df602():
        assert_own_text(plain.decode("utf-8"), compile_file(plain_file))


def test_plain_flow_with_builtins_and_comments(tmp_path: Path) -> None:
    """A hand-written plain flow (built-in decorators, comments, odd spacing) is unchanged."""
    source = (
        "# a comment first\n"
        '"""Docstring."""\n'
        "from metaflow import FlowSpec, step, retry, Parameter  # trailing comment\n"
        "\n"
        "\n"
        "class PlainFlow(FlowSpec):\n"
        '    n = Parameter("n", default=2)\n'
        "\n"
        "    @retry(times=1)\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.x = [ 1,2 ]   # spacing kept\n"
        "        self.next(self.end)\n"
        "\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "\n"
        'if __name__ == "__main__":\n'
        "    PlainFlow()\n"
    )
    flow = tmp_path / "plainflow.py"
    flow.write_text(source, encoding="utf-8", newline="")
    output = compile_file(flow)
    assert_own_text(source, output)
    assert_fixed_point(output, tmp_path / "again", "plainflow.py")
