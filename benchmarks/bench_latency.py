"""Latency: one `decoflow compile flow.py -o out.py` process vs one bare libcst process.

The flow has 8 steps with 4 stacked decorators each (see gen.py). The bare process
imports libcst, parses the same flow file and writes it back out (`module.code`): the
floor of any libcst tool. Target: <= 1.3x.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import (
    PYTHON,
    Measure,
    clean_env,
    compile_bytecode,
    decoflow_command,
    paired,
    reset_dir,
    run_timed,
    say,
)
from gen import write_flow

TARGET = 1.3

#: The bare libcst process: parse one file and print it to another.
BARE_ONE = (
    "import sys, libcst\n"
    "source = open(sys.argv[1], encoding='utf-8').read()\n"
    "open(sys.argv[2], 'w', encoding='utf-8').write(libcst.parse_module(source).code)\n"
)


def measure(pairs: int = 15, steps: int = 8) -> Measure:
    """Time both processes in alternating pairs; return median(decoflow) / median(bare)."""
    with tempfile.TemporaryDirectory(prefix="decoflow-bench-latency-") as tmp:
        root = Path(tmp)
        flow = write_flow(root / "flows", "benchflow.py", "BenchFlow", steps)
        out = root / "out" / "benchflow.py"
        bare_out = root / "bare" / "benchflow.py"
        out.parent.mkdir()
        bare_out.parent.mkdir()
        cache = root / "cache"
        env = clean_env(DECOFLOW_CACHE_DIR=str(cache))

        def run_decoflow() -> float:  # a cold compile: no output, an empty cache
            out.unlink(missing_ok=True)
            reset_dir(cache)
            return run_timed(
                [*decoflow_command(), "compile", str(flow), "-o", str(out)], cwd=root, env=env
            )

        def run_bare() -> float:
            bare_out.unlink(missing_ok=True)
            return run_timed(
                [str(PYTHON), "-c", BARE_ONE, str(flow), str(bare_out)], cwd=root, env=env
            )

        say(f"latency: decoflow compile vs bare libcst, {steps}-step flow, {pairs} pairs")
        result = paired(run_decoflow, run_bare, pairs, warmup=2, progress=say)
    return Measure(
        name="latency (1 file)",
        ratio=result.ratio,
        target=TARGET,
        detail=(
            f"decoflow {result.median_a * 1000:.0f} ms "
            f"vs bare libcst {result.median_b * 1000:.0f} ms "
            f"(medians of {pairs}; median pair ratio {result.pair_ratio:.2f})"
        ),
    )


def main() -> None:
    """Command line: print the latency ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    compile_bytecode()
    m = measure(args.pairs, args.steps)
    print(f"{m.name}: {m.ratio:.2f}x (target <= {m.target}x) {m.detail}")


if __name__ == "__main__":
    main()
