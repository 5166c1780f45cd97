"""Expansion: compiling flows whose decorators come from a flow mutator vs Metaflow's `show`.

The flows (gen.py `--mutators`: 12 plain steps, `@hardened` adds `@retry` and a custom
generator decorator to every step) need Metaflow to evaluate the mutator before decoflow
can compile them: decoflow starts one Metaflow child process for a whole batch. The
baseline is Metaflow's own `python flow.py --quiet show` of each flow, run one after
another, which evaluates the same mutator (a fresh interpreter importing Metaflow per
flow). Two measures, each in alternating pairs:

- batch: `decoflow compile mflow_*.py --out-dir out` of 20 flows (cold: empty cache, no
  outputs) vs 20 `show` processes one after another. Target: <= 0.5x.
- one flow: `decoflow compile mflow_000.py -o out.py` (cold) vs one `show`. Target: <= 1.3x.

Metaflow runs on the local datastore and metadata in a temporary folder; no network.
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
from gen import write_mutator_flows

BATCH_TARGET = 0.5
ONE_TARGET = 1.3


def metaflow_env(root: Path, cache: Path) -> dict[str, str]:
    """Local datastore and metadata below `root`, decoflow's cache in `cache`."""
    return clean_env(
        USERNAME="bench",
        METAFLOW_DEFAULT_DATASTORE="local",
        METAFLOW_DEFAULT_METADATA="local",
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(root / "datastore"),
        DECOFLOW_CACHE_DIR=str(cache),
    )


def measure(pairs: int = 5, one_pairs: int = 11, count: int = 20, steps: int = 12) -> list[Measure]:
    """Both measures; each ratio is median(decoflow) / median(show)."""
    with tempfile.TemporaryDirectory(prefix="decoflow-bench-expansion-") as tmp:
        root = Path(tmp)
        folder = root / "flows"
        flows = write_mutator_flows(folder, count, steps)
        out = root / "out"
        cache = root / "cache"
        env = metaflow_env(root, cache)

        def compile_batch() -> float:
            reset_dir(out)
            reset_dir(cache)
            names = [p.name for p in flows]
            return run_timed(
                [*decoflow_command(), "compile", "-q", *names, "--out-dir", str(out)],
                cwd=folder,
                env=env,
            )

        def show(flow: Path) -> float:
            return run_timed([str(PYTHON), flow.name, "--quiet", "show"], cwd=folder, env=env)

        def show_all() -> float:
            return sum(show(flow) for flow in flows)

        def compile_one() -> float:
            reset_dir(out)
            reset_dir(cache)
            return run_timed(
                [*decoflow_command(), "compile", "-q", flows[0].name, "-o", str(out / "one.py")],
                cwd=folder,
                env=env,
            )

        say(
            f"expansion: decoflow compile of {count} mutator flows vs {count} `show`, {pairs} pairs"
        )
        batch = paired(compile_batch, show_all, pairs, warmup=1, progress=say)
        say(f"expansion: one mutator flow, decoflow compile vs `show`, {one_pairs} pairs")
        one = paired(compile_one, lambda: show(flows[0]), one_pairs, warmup=2, progress=say)
    return [
        Measure(
            name=f"expansion ({count} mutator flows)",
            ratio=batch.ratio,
            target=BATCH_TARGET,
            detail=(
                f"decoflow {batch.median_a * 1000:.0f} ms vs {count} `show` "
                f"{batch.median_b * 1000:.0f} ms (medians of {pairs}; median pair ratio "
                f"{batch.pair_ratio:.2f})"
            ),
        ),
        Measure(
            name="expansion (1 mutator flow)",
            ratio=one.ratio,
            target=ONE_TARGET,
            detail=(
                f"decoflow {one.median_a * 1000:.0f} ms vs `show` {one.median_b * 1000:.0f} ms "
                f"(medians of {one_pairs}; median pair ratio {one.pair_ratio:.2f})"
            ),
        ),
    ]


def main() -> None:
    """Command line: print both expansion ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=5, help="pairs for the batch")
    parser.add_argument("--one-pairs", type=int, default=11, help="pairs for one flow")
    parser.add_argument("--flows", type=int, default=20)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    compile_bytecode()
    for m in measure(args.pairs, args.one_pairs, args.flows, args.steps):
        print(f"{m.name}: {m.ratio:.2f}x (target <= {m.target}x) {m.detail}")


if __name__ == "__main__":
    main()
