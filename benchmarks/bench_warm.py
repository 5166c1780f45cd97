"""Warm check: `decoflow compile --check` of 300 unchanged configured flows vs one bare
libcst process that parses and prints the same 300 files.

The project configures its flows in `[tool.decoflow]`; one `decoflow compile` before the
measure writes the outputs and fills the cache (`.decoflow_cache/`). Every `--check` after
that finds every flow unchanged: it reads the config, hashes each flow, reads its cache
entry, re-hashes the files the entry depends on (the decorator module) and compares the
stored output with the file in `out-dir`. It must not import libcst (checked here with
`-X importtime`). Target: <= 0.1x (the floor is starting Python and hashing the files).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_batch import BARE_MANY
from common import (
    PYTHON,
    BenchError,
    Measure,
    clean_env,
    compile_bytecode,
    decoflow_command,
    paired,
    reset_dir,
    run_timed,
    say,
)
from gen import write_many

TARGET = 0.1

CONFIG = """\
[tool.decoflow]
flows = ["flows/flow_*.py"]
out-dir = "build"
"""


def imports_libcst(root: Path, env: dict[str, str]) -> bool:
    """Whether a warm `--check` imports libcst (it must not)."""
    import subprocess

    result = subprocess.run(
        [str(PYTHON), "-X", "importtime", "-m", "decoflow", "compile", "--check"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BenchError(f"warm --check exited with {result.returncode}:\n{result.stderr[-3000:]}")
    return any(
        line.rstrip().endswith(("| libcst", "| decoflow.transformer.pipeline"))
        for line in result.stderr.splitlines()
    )


def measure(pairs: int = 7, count: int = 300, steps: int = 12) -> Measure:
    """Time both sides in alternating pairs; return median(warm check) / median(bare)."""
    with tempfile.TemporaryDirectory(prefix="decoflow-bench-warm-") as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text(CONFIG, encoding="utf-8")
        flows = write_many(root / "flows", count, steps)
        names = [str(p.relative_to(root)) for p in flows]
        bare_out = root / "bare"
        env = clean_env()
        say(f"warm check: filling the cache ({count} flows of {steps} steps)")
        run_timed([*decoflow_command(), "compile", "-q"], cwd=root, env=env)
        if imports_libcst(root, env):
            raise BenchError("a warm `decoflow compile --check` imported libcst")

        def run_check() -> float:
            return run_timed([*decoflow_command(), "compile", "--check"], cwd=root, env=env)

        def run_bare() -> float:
            reset_dir(bare_out)
            return run_timed(
                [str(PYTHON), "-c", BARE_MANY, str(bare_out), *names], cwd=root, env=env
            )

        say(f"warm check: decoflow compile --check vs bare libcst, {pairs} pairs")
        result = paired(run_check, run_bare, pairs, warmup=1, progress=say)
    return Measure(
        name=f"warm check ({count} files)",
        ratio=result.ratio,
        target=TARGET,
        detail=(
            f"decoflow --check {result.median_a * 1000:.0f} ms vs bare libcst "
            f"{result.median_b * 1000:.0f} ms (medians of {pairs}; median pair ratio "
            f"{result.pair_ratio:.3f}); libcst not imported"
        ),
    )


def main() -> None:
    """Command line: print the warm-check ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    compile_bytecode()
    m = measure(args.pairs, args.flows, args.steps)
    print(f"{m.name}: {m.ratio:.3f}x (target <= {m.target}x) {m.detail}")


if __name__ == "__main__":
    main()
