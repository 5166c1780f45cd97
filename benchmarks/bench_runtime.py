"""Runtime: the compiled flow's `run` vs the original's, on Metaflow's local datastore.

The flow (see gen.py, `foreach=True`) has 9 steps with 4 stacked decorators each, a
foreach over 4 items in the middle, and steps that the gate decorator runs, skips or
replaces. The original runs from its folder with its decorator module on PYTHONPATH; the
compiled flow runs alone in another folder. Each run gets a fresh local datastore and
metadata folder. Runs alternate; target: median(compiled) / median(original) <= 1.05.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import PYTHON, Measure, clean_env, decoflow_command, paired, reset_dir, run_timed, say
from gen import write_flow

TARGET = 1.05


def measure(pairs: int = 7, steps: int = 9) -> Measure:
    """Run both flows in alternating pairs; return median(compiled) / median(original)."""
    with tempfile.TemporaryDirectory(prefix="decoflow-bench-runtime-") as tmp:
        root = Path(tmp)
        original = write_flow(root / "original", "runflow.py", "RunFlow", steps, foreach=True)
        compiled = root / "compiled" / "runflow.py"
        compiled.parent.mkdir()
        run_timed([*decoflow_command(), "compile", str(original), "-o", str(compiled)], cwd=root)
        sysroot = root / "datastore"

        def run(flow: Path, pythonpath: Path | None) -> float:
            reset_dir(sysroot)
            env = clean_env(
                USERNAME="bench",
                METAFLOW_DEFAULT_DATASTORE="local",
                METAFLOW_DEFAULT_METADATA="local",
                METAFLOW_DATASTORE_SYSROOT_LOCAL=str(sysroot),
                METAFLOW_HOME=str(root),
            )
            if pythonpath is not None:
                env["PYTHONPATH"] = str(pythonpath)
            return run_timed(
                [str(PYTHON), flow.name, "--no-pylint", "run"], cwd=flow.parent, env=env
            )

        say(f"runtime: compiled vs original `run`, {steps}-step foreach flow, {pairs} pairs")
        result = paired(
            lambda: run(compiled, None),
            lambda: run(original, original.parent),
            pairs,
            warmup=1,
            progress=say,
        )
    return Measure(
        name="runtime (local run)",
        ratio=result.ratio,
        target=TARGET,
        detail=(
            f"compiled {result.median_a:.2f} s vs original {result.median_b:.2f} s "
            f"(medians of {pairs}; median pair ratio {result.pair_ratio:.2f})"
        ),
    )


def main() -> None:
    """Command line: print the runtime ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--steps", type=int, default=9)
    args = parser.parse_args()
    m = measure(args.pairs, args.steps)
    print(f"{m.name}: {m.ratio:.2f}x (target <= {m.target}x) {m.detail}")


if __name__ == "__main__":
    main()
