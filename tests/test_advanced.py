"""The advanced patterns of Metaflow's docs, native vs compiled (fixtures/advanced).

- memoize: reuses an artifact of the latest successful run through the Client API; two
  consecutive runs share a datastore, and the second one skips the step;
- fallback: replaces a failing step on retry (`@retry` + `current.retry_count`) next to `@catch`;
- report_failure: prints the failing step's source and traceback, then re-raises.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from decoflow.transformer import compile_file
from harness import assert_same, old_python, run_flow

ADVANCED = Path(__file__).resolve().parent.parent / "fixtures" / "advanced"
PYTHONS = (("2.19", sys.executable), ("2.15.21", None))


def _setup(tmp_path: Path, flow: str) -> tuple[Path, Path]:
    native = tmp_path / "native"
    shutil.copytree(ADVANCED, native)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / flow).write_text(compile_file(native / flow))
    return native / flow, alone / flow


def _python(label: str, python: str | None) -> str:
    return python or old_python()


def _digits(line: str) -> str:
    return re.sub(r"\d+", "N", line)


def test_memoize_second_run_reuses_the_first(tmp_path: Path) -> None:
    flow, compiled = _setup(tmp_path, "memoflow.py")
    shared = tmp_path / "native-root"
    first = run_flow(flow, python=sys.executable, workdir=tmp_path / "w", sysroot=shared)
    second = run_flow(flow, python=sys.executable, workdir=tmp_path / "w", sysroot=shared)
    assert "⚙️ previous results not found - running the step" in first.task("compute").stdout
    assert any(
        line.startswith("✅ reusing results from MemoFlow/")
        for line in second.task("compute").stdout
    )
    assert "computing the answer" not in second.task("compute").stdout
    for label, python in PYTHONS:
        root = tmp_path / f"compiled-root-{label}"
        py = _python(label, python)
        c_first = run_flow(compiled, python=py, workdir=tmp_path / "w", sysroot=root)
        c_second = run_flow(compiled, python=py, workdir=tmp_path / "w", sysroot=root)
        assert_same(first, c_first, normalize_line=_digits)
        assert_same(second, c_second, normalize_line=_digits)


def test_fallback_replaces_the_failing_step_on_retry(tmp_path: Path) -> None:
    flow, compiled = _setup(tmp_path, "fallbackflow.py")
    native = run_flow(flow, python=sys.executable, workdir=tmp_path / "w")
    assert native.succeeded
    assert native.task("fragile", 1).stdout == ("🛠 Step failed: Executing a fallback",)
    assert native.task("join").artifacts["fell"] == [False, True]
    for label, python in PYTHONS:
        assert_same(
            native, run_flow(compiled, python=_python(label, python), workdir=tmp_path / label)
        )


def test_documented_fallback_returning_none_is_the_one_allowed_divergence(tmp_path: Path) -> None:
    """Metaflow 2.19 fails a replacement that returns None without calling self.next (the
    docs' own example); the compiled flow transitions as the step would (SEMANTICS.md)."""
    flow, compiled = _setup(tmp_path, "docfallbackflow.py")
    native = run_flow(flow, python=sys.executable, workdir=tmp_path / "w")
    assert not native.succeeded
    assert "self.next() was called with ." in native.console
    result = run_flow(compiled, python=sys.executable, workdir=tmp_path / "c")
    assert result.succeeded, result.describe()
    assert result.task("join").artifacts["fell"] == [False, True]


def test_failure_report_prints_source_and_traceback_then_fails(tmp_path: Path) -> None:
    flow, compiled = _setup(tmp_path, "reportflow.py")
    native = run_flow(flow, python=sys.executable, workdir=tmp_path / "w")

    def essentials(line: str) -> str | None:
        # The traceback's frames differ by construction (natively Metaflow's wrappers and the
        # decorator module; compiled, the compiled file): compare the header, the failing
        # body line, the exception here, and the printed source (exactly) below.
        text = line.strip()
        if text in ("❌ Step failed. Source code:", "self.ratio = 1 / 0") or text.startswith(
            "ZeroDivisionError"
        ):
            return text
        return None

    assert not native.task("divide").successful
    assert native.task("divide").artifacts["before"] == "set before the failure"
    for label, python in PYTHONS:
        result = run_flow(compiled, python=_python(label, python), workdir=tmp_path / label)
        assert_same(native, result, normalize_line=essentials)
        assert "self.ratio = 1 / 0" in [line.strip() for line in result.task("divide").stdout]
        # inspect.getsource of the step: the original step's text, as natively (issue 14)
        assert _printed_source(result.task("divide").stdout) == _printed_source(
            native.task("divide").stdout
        )


def _printed_source(lines: tuple[str, ...]) -> list[str]:
    """What @report_failure printed between its header and the traceback."""
    start = lines.index("❌ Step failed. Source code:")
    end = next(i for i, line in enumerate(lines) if line.startswith("Traceback"))
    assert end - start > 4, lines
    return list(lines[start:end])
