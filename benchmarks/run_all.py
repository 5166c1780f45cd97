"""Run every benchmark and print the ratios as a table (`make bench`).

    python benchmarks/run_all.py [--quick] [--only latency,batch,warm,expansion,scale,runtime]
                                 [--strict]

Each ratio is measured side by side in this one run (medians of paired, alternating
runs); absolute times are shown for context only. `--quick` uses fewer pairs (and 60
flows instead of 300 for the batch) for a smoke run; `--strict` exits 1 when a ratio
misses its target.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import bench_batch
import bench_expansion
import bench_latency
import bench_runtime
import bench_scale
import bench_warm
from common import PYTHON, BenchError, Measure, compile_bytecode, format_table, say

ALL = ("latency", "batch", "warm", "expansion", "scale", "runtime")


def run_one(name: str, quick: bool) -> list[Measure]:
    """Run one benchmark and return its measures."""
    if name == "latency":
        return [bench_latency.measure(pairs=5 if quick else 15)]
    if name == "batch":
        return [bench_batch.measure(pairs=1 if quick else 3, count=60 if quick else 300)]
    if name == "warm":
        return [bench_warm.measure(pairs=3 if quick else 7, count=60 if quick else 300)]
    if name == "expansion":
        return bench_expansion.measure(pairs=2 if quick else 5, one_pairs=5 if quick else 11)
    if name == "scale":
        return bench_scale.measure(pairs=1 if quick else 5)
    if name == "runtime":
        return [bench_runtime.measure(pairs=2 if quick else 7)]
    raise ValueError(name)


def run(names: tuple[str, ...], quick: bool) -> tuple[list[Measure], list[str]]:
    """Run the named benchmarks in order; a failing one is reported and the rest still run."""
    measures: list[Measure] = []
    failures: list[str] = []
    for name in names:
        started = time.perf_counter()
        try:
            measures.extend(run_one(name, quick))
        except BenchError as err:
            failures.append(f"{name}: {err}")
            say(f"{name}: FAILED: {err}")
            continue
        say(f"{name}: done in {time.perf_counter() - started:.0f} s")
    return measures, failures


def load_average() -> str:
    """The 1-minute load average (ratios measured under load mean less: say so)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):  # not on this platform
        return "unknown"


def main() -> int:
    """Command line: run, print the table, return the exit code."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer pairs, a smaller batch")
    parser.add_argument(
        "--only", default=",".join(ALL), help="comma-separated subset of " + ",".join(ALL)
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a ratio misses its target")
    args = parser.parse_args()
    names = tuple(n.strip() for n in args.only.split(",") if n.strip())
    unknown = [n for n in names if n not in ALL]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    compile_bytecode()
    load_before = load_average()
    measures, failures = run(names, args.quick)
    print(
        f"decoflow benchmarks ({'quick' if args.quick else 'full'}), "
        f"python {platform.python_version()} "
        f"at {PYTHON}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"load average {load_before} before, {load_average()} after"
    )
    print(format_table(measures))
    for failure in failures:
        print(f"FAILED {failure.splitlines()[0]}")
    if failures:
        return 2
    if args.strict and not all(m.ok for m in measures):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
