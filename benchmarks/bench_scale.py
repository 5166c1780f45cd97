"""Scale: a 400-step flow vs a 100-step flow, and the size of the output.

- compile time, above process start: each measurement is a fresh process that first
  imports the compiler (`decoflow.transformer.pipeline`, which imports libcst) and then
  times one `compile_file` call; 400 vs 100 steps, alternating. Target: <= 4.8x.
- output size: bytes of the compiled 400-step flow vs the 100-step one. Target: <= 4.4x.
- output size vs what inlining by hand would give: the flow plus one copy of each of its
  decorators' definitions per step (4 stacked, one of them with 3 yield points). Target:
  <= 1.5x, for the larger flow (the smaller one is shown too).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from common import PYTHON, BenchError, Measure, clean_env, paired, say
from gen import STACK, decorator_sizes, write_flow

TIME_TARGET = 4.8
SIZE_TARGET = 4.4
INLINE_TARGET = 1.5

#: Import the compiler, then time one compile; print {"seconds": ..., "bytes": ...}.
TIMED_COMPILE = (
    "import json, sys, time\n"
    "from pathlib import Path\n"
    "import decoflow.transformer.pipeline\n"
    "from decoflow.transformer import compile_file\n"
    "started = time.perf_counter()\n"
    "code = compile_file(Path(sys.argv[1]))\n"
    "seconds = time.perf_counter() - started\n"
    "print(json.dumps({'seconds': seconds, 'bytes': len(code.encode('utf-8'))}))\n"
)


def compile_in_fresh_process(flow: Path) -> tuple[float, int]:
    """(seconds spent in compile_file, bytes of its output), in a new process."""
    result = subprocess.run(
        [str(PYTHON), "-c", TIMED_COMPILE, str(flow)],
        cwd=flow.parent,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise BenchError(f"compiling {flow} failed:\n{result.stderr[-3000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return float(data["seconds"]), int(data["bytes"])


def inline_baseline(flow: Path, steps: int) -> int:
    """Bytes of the flow plus one copy of its decorators' definitions per step."""
    sizes = decorator_sizes()
    return len(flow.read_bytes()) + steps * sum(sizes[name] for name in STACK)


def measure(pairs: int = 5, small: int = 100, large: int = 400) -> list[Measure]:
    """Compile both flows in alternating fresh processes; return the three measures."""
    with tempfile.TemporaryDirectory(prefix="decoflow-bench-scale-") as tmp:
        root = Path(tmp)
        small_flow = write_flow(root / "small", "smallflow.py", "SmallFlow", small)
        large_flow = write_flow(root / "large", "largeflow.py", "LargeFlow", large)
        sizes: dict[Path, int] = {}

        def run(flow: Path) -> float:
            seconds, size = compile_in_fresh_process(flow)
            sizes[flow] = size
            return seconds

        say(f"scale: compile {large} vs {small} steps in fresh processes, {pairs} pairs")
        result = paired(
            lambda: run(large_flow), lambda: run(small_flow), pairs, warmup=1, progress=say
        )
        small_base = inline_baseline(small_flow, small)
        large_base = inline_baseline(large_flow, large)
    small_size, large_size = sizes[small_flow], sizes[large_flow]
    return [
        Measure(
            name=f"scale: time {large}/{small} steps",
            ratio=result.ratio,
            target=TIME_TARGET,
            detail=(
                f"{result.median_a:.2f} s vs {result.median_b:.2f} s in compile_file "
                f"(medians of {pairs}; median pair ratio {result.pair_ratio:.2f})"
            ),
        ),
        Measure(
            name=f"scale: output {large}/{small} steps",
            ratio=large_size / small_size,
            target=SIZE_TARGET,
            detail=f"{large_size:,} vs {small_size:,} bytes",
        ),
        Measure(
            name="output vs flow + decorators/step",
            ratio=large_size / large_base,
            target=INLINE_TARGET,
            detail=(
                f"{large} steps: {large_size:,} vs {large_base:,} bytes; "
                f"{small} steps: {small_size / small_base:.2f}x"
            ),
        ),
    ]


def main() -> None:
    """Command line: print the scale ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=400)
    args = parser.parse_args()
    for m in measure(args.pairs, args.small, args.large):
        print(f"{m.name}: {m.ratio:.2f}x (target <= {m.target}x) {m.detail}")


if __name__ == "__main__":
    main()
