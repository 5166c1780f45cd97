"""Shared helpers of the benchmarks: paired timing, medians, the results table.

Absolute times on shared machines mean little, so every benchmark measures two things
side by side in one run: pairs of runs whose order alternates (A B, B A, A B, ...) after
a warm-up, and reports the ratio of their medians.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

#: The interpreter the benchmarks run with (`make bench`: the project's .venv).
PYTHON = Path(sys.executable)

#: decoflow's own sources (an editable install imports them from here).
PACKAGE_SOURCES = (
    "transformer", "runtime", "cli.py", "targets.py", "cache.py", "project.py", "explain.py",
    "__init__.py", "__main__.py",
)


def compile_bytecode() -> None:
    """Write decoflow's bytecode (`__pycache__`) before measuring, as pip does when it
    installs a package. With an editable install and PYTHONDONTWRITEBYTECODE set (as on
    these machines), every decoflow process would otherwise compile its own sources again,
    while libcst, installed normally, is imported from bytecode."""
    import compileall

    for name in PACKAGE_SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            compileall.compile_dir(str(path), quiet=1)
        else:
            compileall.compile_file(str(path), quiet=1)


def decoflow_command() -> list[str]:
    """How to start `decoflow`: the console script next to this interpreter, else `-m`."""
    script = PYTHON.with_name("decoflow")
    if script.exists():
        return [str(script)]
    return [str(PYTHON), "-m", "decoflow"]


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without PYTHONPATH / Metaflow settings, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME") and not key.startswith("METAFLOW_")
    }
    env.update(extra)
    return env


class BenchError(RuntimeError):
    """A benchmarked command failed: the measurement would mean nothing."""


def run_timed(
    command: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 3600,
) -> float:
    """Run `command` to completion and return its wall time in seconds; raise if it fails."""
    started = time.perf_counter()
    result = subprocess.run(
        list(command),
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(
            f"`{' '.join(command[:6])}{' ...' if len(command) > 6 else ''}` in {cwd} exited "
            f"with {result.returncode}:\n{result.stderr[-3000:]}\n{result.stdout[-1000:]}"
        )
    return elapsed


def run_output(command: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run `command` and return its stdout; raise if it fails."""
    result = subprocess.run(
        list(command),
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise BenchError(
            f"`{' '.join(command[:6])}` exited with {result.returncode}:\n{result.stderr}"
        )
    return result.stdout


@dataclass
class Paired:
    """The times of two alternating series of runs."""

    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)

    @property
    def median_a(self) -> float:
        return statistics.median(self.a)

    @property
    def median_b(self) -> float:
        return statistics.median(self.b)

    @property
    def ratio(self) -> float:
        """median(A) / median(B)."""
        return self.median_a / self.median_b

    @property
    def pair_ratio(self) -> float:
        """The median of the per-pair ratios A_i / B_i (a cross-check of `ratio`)."""
        return statistics.median(x / y for x, y in zip(self.a, self.b))


def paired(
    run_a: Callable[[], float],
    run_b: Callable[[], float],
    pairs: int,
    *,
    warmup: int = 1,
    progress: Callable[[str], None] | None = None,
) -> Paired:
    """Run A and B `pairs` times each, alternating which goes first, after `warmup` pairs."""
    for _ in range(warmup):
        run_a()
        run_b()
    result = Paired()
    for i in range(pairs):
        if i % 2 == 0:
            a = run_a()
            b = run_b()
        else:
            b = run_b()
            a = run_a()
        result.a.append(a)
        result.b.append(b)
        if progress is not None:
            progress(f"  pair {i + 1}/{pairs}: {a * 1000:.0f} ms vs {b * 1000:.0f} ms")
    return result


def reset_dir(path: Path) -> Path:
    """Remove `path` if it exists and create it empty."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


@dataclass
class Measure:
    """One line of the results table: a ratio and the target it must not exceed."""

    name: str
    ratio: float
    target: float
    detail: str
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.ratio <= self.target


def format_table(measures: Sequence[Measure]) -> str:
    """The results as an aligned text table."""
    rows = [("measure", "ratio", "target", "", "detail")]
    for m in measures:
        rows.append(
            (m.name, f"{m.ratio:.2f}x", f"<= {m.target:.2f}x", "ok" if m.ok else "MISS", m.detail)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    notes = [f"note: {m.name}: {m.note}" for m in measures if m.note]
    return "\n".join(lines + notes)


def say(message: str) -> None:
    """Progress on stderr, so that stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)
