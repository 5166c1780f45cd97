"""Self-tests of the differential harness, on plain Metaflow flows (no compiler involved)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from harness import (
    RunOutcome,
    TaskOutcome,
    assert_same,
    flow_class_name,
    map_source_lines,
    old_python,
    run_flow,
    shape,
    source_line_map,
)

pytestmark = pytest.mark.differential

FLOW_A = '''
from metaflow import FlowSpec, step


class TinyFlow(FlowSpec):
    """A flow without custom decorators."""

    @step
    def start(self):
        self.items = [1, 2]
        self.label = "a"
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.square = self.input * self.input
        print("square", self.square)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(inp.square for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    TinyFlow()
'''

# The same graph and class name, but one foreach task prints and stores something else.
FLOW_B = FLOW_A.replace("self.square = self.input * self.input", "self.square = self.input * 10")


def _write(folder: Path, source: str, name: str = "tinyflow.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def test_same_flow_twice_is_same(tmp_path: Path) -> None:
    first = run_flow(_write(tmp_path / "one", FLOW_A), python=sys.executable, workdir=tmp_path)
    second = run_flow(_write(tmp_path / "two", FLOW_A), python=sys.executable, workdir=tmp_path)
    assert first.succeeded and first.run_found
    assert set(first.tasks) == {
        ("start", ()),
        ("each", (0,)),
        ("each", (1,)),
        ("join", ()),
        ("end", ()),
    }
    assert first.task("each", 1).stdout == ("square 4",)
    assert first.task("each", 1).artifacts["square"] == 4
    assert "name" not in first.task("start").artifacts
    assert first.task("end").artifacts["total"] == 5
    assert_same(first, second)


def test_different_flows_are_reported(tmp_path: Path) -> None:
    a = run_flow(_write(tmp_path / "a", FLOW_A), python=sys.executable, workdir=tmp_path)
    b = run_flow(_write(tmp_path / "b", FLOW_B), python=sys.executable, workdir=tmp_path)
    with pytest.raises(AssertionError) as info:
        assert_same(a, b)
    message = str(info.value)
    assert "task each[1]" in message
    assert "stdout differs" in message
    assert "-square 4" in message and "+square 20" in message
    assert "artifact 'square' value differs" in message
    assert "artifact 'total' value differs" in message
    assert "task start" not in message  # start is the same in both


def test_failures_are_compared(tmp_path: Path) -> None:
    failing = FLOW_A.replace('print("total", self.total)', 'raise KeyError("no total")')
    ok = run_flow(_write(tmp_path / "ok", FLOW_A), python=sys.executable, workdir=tmp_path)
    bad = run_flow(_write(tmp_path / "bad", failing), python=sys.executable, workdir=tmp_path)
    assert not bad.succeeded
    assert not bad.task("end").successful
    assert bad.task("end").error == "KeyError: 'no total'"
    assert bad.task("end").artifacts["total"] == 5  # a failed task keeps its artifacts
    with pytest.raises(AssertionError, match="run outcome differs"):
        assert_same(ok, bad)
    with pytest.raises(AssertionError, match=r"task end .*successful differs"):
        assert_same(ok, bad)


def test_same_flow_on_old_metaflow_is_same(tmp_path: Path) -> None:
    """The harness reads runs of the old Metaflow (2.15) the same way."""
    native = run_flow(_write(tmp_path / "new", FLOW_A), python=sys.executable, workdir=tmp_path)
    old = run_flow(_write(tmp_path / "old", FLOW_A), python=old_python(), workdir=tmp_path)
    assert old.succeeded, old.console
    assert_same(native, old)


def test_flow_class_name_without_import(tmp_path: Path) -> None:
    source = """
        import metaflow as mf
        from somewhere import not_importable  # never imported by the harness

        class Helper:
            pass

        class Base(mf.FlowSpec):
            pass

        class RealFlow(Base):
            pass

        if __name__ == "__main__":
            RealFlow()
    """
    assert flow_class_name(_write(tmp_path, source, "x.py")) == "RealFlow"


def test_flow_class_name_reads_the_file_in_its_own_encoding(tmp_path: Path) -> None:
    source = (
        "# -*- coding: latin-1 -*-\nfrom metaflow import FlowSpec\n\n"
        'class Caf\u00e9Flow(FlowSpec):\n    """d\u00e9j\u00e0"""\n'
    )
    path = tmp_path / "latin.py"
    path.write_bytes(source.encode("latin-1"))
    assert flow_class_name(path) == "Caf\u00e9Flow"


def _outcome(artifacts: dict, stdout: tuple[str, ...] = ()) -> RunOutcome:
    task = TaskOutcome("start", (), "F/1/start/1", True, stdout, artifacts)
    return RunOutcome(Path("f.py"), "F", "py", 0, "", True, {task.key: task})


def test_volatile_artifacts_compare_by_shape() -> None:
    timings_a = {"<dict>": "dict", "items": [["wait", [12, 30]]]}
    timings_b = {"<dict>": "dict", "items": [["wait", [11, 29]]]}
    timings_c = {"<dict>": "dict", "items": [["wait", [11]]]}
    assert shape(timings_a) == shape(timings_b) != shape(timings_c)
    assert_same(_outcome({"t": timings_a}), _outcome({"t": timings_b}), volatile_artifacts=["t"])
    with pytest.raises(AssertionError, match="artifact 't' value differs"):
        assert_same(_outcome({"t": timings_a}), _outcome({"t": timings_b}))
    with pytest.raises(AssertionError, match="artifact 't' shape differs"):
        assert_same(
            _outcome({"t": timings_a}), _outcome({"t": timings_c}), volatile_artifacts=["t"]
        )


def test_normalizer_maps_and_drops_lines() -> None:
    def norm(line: str) -> str | None:
        return None if line.startswith("#") else line.replace("13ms", "<ms>")

    a = _outcome({}, ("took 13ms", "# noise", "done"))
    b = _outcome({}, ("took <ms>", "done"))
    assert_same(a, b, normalize_line=norm)
    with pytest.raises(AssertionError, match="stdout differs"):
        assert_same(a, b)


def test_canonical_values_in_a_real_run(tmp_path: Path) -> None:
    source = """
        from collections import OrderedDict, defaultdict
        from urllib.parse import urlsplit
        from metaflow import FlowSpec, step

        class Box:
            def __init__(self):
                self.content = {"b": 2, "a": 1}

        class ValuesFlow(FlowSpec):
            @step
            def start(self):
                self.d = {"b": 1, "a": 2}
                self.dd = defaultdict(list, {"k": [1]})
                self.od = OrderedDict([("z", 1), ("a", 2)])
                self.s = {3, 1, 2}
                self.t = (1, "x")
                self.p = urlsplit("http://h/p")
                self.f = float("nan")
                self.by = b"\\x00\\xff"
                self.box = Box()
                self.fn = lambda: 1
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            ValuesFlow()
    """
    outcome = run_flow(
        _write(tmp_path, source, "valuesflow.py"), python=sys.executable, workdir=tmp_path
    )
    arts = outcome.task("start").artifacts
    assert arts["d"] == {"<dict>": "dict", "items": [["a", 2], ["b", 1]]}
    assert arts["dd"] == {"<dict>": "defaultdict", "items": [["k", [1]]], "default": "list"}
    assert arts["od"] == {"<dict>": "OrderedDict", "items": [["z", 1], ["a", 2]]}
    assert arts["s"] == {"<set>": [1, 2, 3]}
    assert arts["t"] == {"<tuple>": [1, "x"]}
    assert arts["p"] == {
        "<namedtuple>": "SplitResult",
        "fields": {"scheme": "http", "netloc": "h", "path": "/p", "query": "", "fragment": ""},
    }
    assert arts["f"] == {"<float>": "nan"}
    assert arts["by"] == {"<bytes>": "00ff"}
    # Box was pickled as __main__.Box: the reader process cannot load it.
    assert arts["box"] == {"<unreadable>": "AttributeError"}
    assert "fn" not in arts  # functions are not persisted


# A bad `self.next` is reported by Metaflow with the line that called `next`
# (`str(err)` is `line N: ...`); the step prints it and fails with it.
FLOW_LINES = '''
from metaflow import FlowSpec, step


def take(flow):
    flow.next(flow.end, foreach="missing")


class LinesFlow(FlowSpec):

    @step
    def start(self):
        try:
            take(self)
        except Exception as err:
            print("caught", str(err))
            raise RuntimeError("wraps " + str(err)) from None
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LinesFlow()
'''

# The same flow as a compiler might write it: lines of its own above, the code kept.
COMPILED_PREFIX = '''# Generated: lines of the compiler's own
def via(flow, *targets, **kwargs):
    type(flow).next(flow, *targets, **kwargs)

'''


def test_source_lines_are_compared_through_the_line_map(tmp_path: Path) -> None:
    original = _write(tmp_path / "native", FLOW_LINES, "linesflow.py")
    compiled = _write(tmp_path / "compiled", COMPILED_PREFIX + FLOW_LINES, "linesflow.py")
    # the `next` call goes through a line of the compiler's own: no original line
    helper = _write(
        tmp_path / "helper",
        COMPILED_PREFIX + FLOW_LINES.replace("flow.next(flow.end,", "via(flow, flow.end,"),
        "linesflow.py",
    )
    native = run_flow(original, python=sys.executable, workdir=tmp_path)
    error = native.task("start").error
    assert error is not None and error.startswith("RuntimeError: wraps line 6:"), error
    same_code = run_flow(compiled, python=sys.executable, workdir=tmp_path)
    assert same_code.task("start").error == error.replace("line 6:", "line 10:")
    with pytest.raises(AssertionError, match="failure differs"):
        assert_same(native, same_code)  # line 6 natively, line 10 compiled
    lines = source_line_map(compiled, [original])
    assert lines[10] == 6 and 1 not in lines and 3 not in lines
    assert_same(native, same_code, compiled_lines=lines)
    through_helper = run_flow(helper, python=sys.executable, workdir=tmp_path)
    with pytest.raises(AssertionError) as info:
        assert_same(native, through_helper, compiled_lines=source_line_map(helper, [original]))
    assert "line 3 (compiled; no original line):" in str(info.value)
    assert "stdout differs" in str(info.value) and "failure differs" in str(info.value)


def test_source_line_map_prefers_matching_neighbours(tmp_path: Path) -> None:
    flow = _write(tmp_path, "a = 1\nx = 0\nb = 2\n\nc = 3\nx = 0\nd = 4\n", "flow.py")
    decos = _write(tmp_path, "def f():\n    x = 0\n    return x\n", "decos.py")
    compiled = _write(
        tmp_path,
        "# header\nb = 2\n\nc = 3\n  x = 0\nd = 4\nnew = 1\nx = 0\n    return x\nx = 0\n",
        "compiled.py",
    )
    lines = source_line_map(compiled, [flow, decos])
    assert lines == {2: 3, 4: 5, 5: 6, 6: 7, 8: 2, 9: 3}
    # line 8 `x = 0` is followed by decos.py's `return x` (decos.py:2); line 10 has no
    # neighbour to tell flow.py:2, flow.py:6 and decos.py:2 apart
    assert map_source_lines("line 5: a, line 10: b, line 7", lines) == (
        "line 6: a, line 10 (compiled; no original line): b, line 7"
    )
