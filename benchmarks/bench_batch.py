"""Batch: `decoflow compile` of 300 flows with `--out-dir` vs one bare libcst process.

Each flow has 12 steps with 4 stacked decorators; all import one decorator module. The
bare process imports libcst and parses+prints the same 300 files into another folder,
one after the other. decoflow may use every core (its default `--jobs`). Target: <= 2.0x.

When `decoflow compile` has no `--out-dir`, the decoflow side falls back to one Python
process that loops over the files with `decoflow.transformer.compile_file` (said in the
table's note).
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
    run_output,
    run_timed,
    say,
)
from gen import write_many

TARGET = 2.0

#: The bare libcst process: parse and print every file into OUT.
BARE_MANY = (
    "import sys, libcst\n"
    "from pathlib import Path\n"
    "out = Path(sys.argv[1])\n"
    "for name in sys.argv[2:]:\n"
    "    path = Path(name)\n"
    "    module = libcst.parse_module(path.read_text(encoding='utf-8'))\n"
    "    (out / path.name).write_text(module.code, encoding='utf-8')\n"
)

#: The fallback decoflow process (no --out-dir): loop over the files with the Python API.
API_MANY = (
    "import sys\n"
    "from pathlib import Path\n"
    "from decoflow.transformer import compile_file\n"
    "out = Path(sys.argv[1])\n"
    "for name in sys.argv[2:]:\n"
    "    path = Path(name)\n"
    "    (out / path.name).write_text(compile_file(path), encoding='utf-8')\n"
)


def has_out_dir() -> bool:
    """Whether this decoflow's `compile` command takes `--out-dir`."""
    return "--out-dir" in run_output([*decoflow_command(), "compile", "--help"], cwd=Path.cwd())


def measure(pairs: int = 3, count: int = 300, steps: int = 12) -> Measure:
    """Time both sides in alternating pairs; return median(decoflow) / median(bare)."""
    out_dir = has_out_dir()
    with tempfile.TemporaryDirectory(prefix="decoflow-bench-batch-") as tmp:
        root = Path(tmp)
        flows = write_many(root / "flows", count, steps)
        names = [str(p.relative_to(root)) for p in flows]
        out = root / "out"
        bare_out = root / "bare"
        cache = root / "cache"
        env = clean_env(DECOFLOW_CACHE_DIR=str(cache))
        if out_dir:
            command = [*decoflow_command(), "compile", *names, "--out-dir", str(out), "-q"]
        else:
            command = [str(PYTHON), "-c", API_MANY, str(out), *names]

        def run_decoflow() -> float:  # a cold build: no outputs, an empty cache
            reset_dir(out)
            reset_dir(cache)
            elapsed = run_timed(command, cwd=root, env=env)
            written = len(list(out.rglob("*.py")))
            if written != count:
                raise RuntimeError(f"decoflow wrote {written} files, expected {count}")
            return elapsed

        def run_bare() -> float:
            reset_dir(bare_out)
            return run_timed(
                [str(PYTHON), "-c", BARE_MANY, str(bare_out), *names], cwd=root, env=env
            )

        say(
            f"batch: {count} flows of {steps} steps, {pairs} pairs "
            f"({'--out-dir' if out_dir else 'API loop'})"
        )
        result = paired(run_decoflow, run_bare, pairs, warmup=0, progress=say)
    return Measure(
        name=f"batch ({count} files)",
        ratio=result.ratio,
        target=TARGET,
        detail=(
            f"decoflow {result.median_a:.2f} s vs bare libcst {result.median_b:.2f} s "
            f"(medians of {pairs}; median pair ratio {result.pair_ratio:.2f})"
        ),
        note=""
        if out_dir
        else "`decoflow compile --out-dir` not available: one process looping over compile_file",
    )


def main() -> None:
    """Command line: print the batch ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    compile_bytecode()
    m = measure(args.pairs, args.flows, args.steps)
    print(f"{m.name}: {m.ratio:.2f}x (target <= {m.target}x) {m.detail} {m.note}")


if __name__ == "__main__":
    main()
