"""Where the time of compiling one mutator flow goes, next to Metaflow's own `show` of it.

    python benchmarks/profile_expansion.py [--runs 7] [--flows 1]

Runs `decoflow compile` of a generated mutator flow (gen.py `--mutators`) in a process
that times its phases with wall clocks shared with the Metaflow child it starts, in the
order the real CLI reaches them (each module is patched as the CLI imports it): start-up,
click and decoflow's CLI, the child spawned (before libcst), libcst and the compiler, the
first round of the batch (parse the flow, find that it needs expansion), the child
(`ready`: Metaflow imported and the request read; `done`: the flow evaluated; killed, reaped
at the end of the batch), the second round (compile the expanded flow), writing. `show`
is timed alone, and its import of Metaflow under `-X importtime`. Medians over `--runs`
runs of each, alternating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_expansion import metaflow_env
from common import PYTHON, compile_bytecode, reset_dir, run_timed
from gen import write_mutator_flows

#: The decoflow process, timed: each mark is (label, seconds since the run was started).
TIMED = r"""
import json, os, sys, time
marks = [("python started", time.time())]
def mark(label):
    marks.append((label, time.time()))
# Each module is patched as the real CLI imports it (nothing is imported ahead of it, so
# the order of the marks is the CLI's own: the child is spawned before libcst is imported).
import importlib.abc, importlib.util
LABELS = {"decoflow.cli": "imported click, decoflow.cli", "libcst": "imported libcst",
          "decoflow.transformer.pipeline": "imported the compiler"}
def patch_project(project):
    real_task = project.compile_task
    def compile_task(task):
        mark("compile_task begins")
        outcome = real_task(task)
        mark("compile_task ends (%s)" % ("deferred" if outcome.deferred else "compiled"))
        return outcome
    project.compile_task = compile_task
def patch_expand(expand_pass):
    real_preload = expand_pass.preload
    def preload(*args, **kwargs):
        mark("preload begins")
        real_preload(*args, **kwargs)
        mark("preload ends")
    expand_pass.preload = preload
def patch_runner(runner):
    Child = runner._Child
    real_init, real_next, real_close = Child.__init__, Child.next_message, Child.close
    def init(self, *args):
        mark("child spawning")
        real_init(self, *args)
        mark("child spawned")
    def next_message(self, deadline):
        message = real_next(self, deadline)
        mark("child: %s" % (message or {}).get("event", "end of stream"))
        return message
    def close(self, *args, **kwargs):
        code = real_close(self, *args, **kwargs)
        mark("child killed" + (" and reaped" if kwargs.get("reap", True) else ""))
        return code
    Child.__init__, Child.next_message, Child.close = init, next_message, close
PATCHES = {"decoflow.project": patch_project, "decoflow.transformer.passes.expand": patch_expand,
           "decoflow.transformer.expansion.runner": patch_runner}
class AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCHES and name not in LABELS:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        real_exec = spec.loader.exec_module
        def exec_module(module):
            real_exec(module)
            if name in PATCHES:
                PATCHES[name](module)
            if name in LABELS:
                mark(LABELS[name])
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, AfterImport())
import gc
import decoflow.cli
gc.set_threshold(200_000, 30, 30)  # as decoflow.cli.run
try:
    decoflow.cli.main(sys.argv[2:], standalone_mode=False)
except SystemExit:
    pass
mark("done")
with open(sys.argv[1], "w") as handle:
    json.dump(marks, handle)
os._exit(0)
"""


def timeline(folder: Path, flow: Path, out: Path, env: dict[str, str]) -> list[tuple[str, float]]:
    """One timed compile: (label, seconds since the process was started) per mark."""
    marks_file = folder.parent / "marks.json"
    reset_dir(out)
    reset_dir(Path(env["DECOFLOW_CACHE_DIR"]))
    started = time.time()
    subprocess.run(
        [
            str(PYTHON),
            "-c",
            TIMED,
            str(marks_file),
            "compile",
            "-q",
            flow.name,
            "-o",
            str(out / "one.py"),
        ],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    ended = time.time()
    marks = json.loads(marks_file.read_text())
    return [(label, when - started) for label, when in marks] + [("process gone", ended - started)]


def metaflow_import_ms(folder: Path, flow: Path, env: dict[str, str]) -> float:
    """Cumulative ms `show` spends importing `metaflow` (-X importtime)."""
    done = subprocess.run(
        [str(PYTHON), "-X", "importtime", flow.name, "--quiet", "show"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == "metaflow":
            return int(parts[1]) / 1000
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="decoflow-profile-expansion-") as tmp:
        root = Path(tmp)
        folder = root / "flows"
        [flow] = write_mutator_flows(folder, 1, 12)
        env = metaflow_env(root, root / "cache")
        runs: list[list[tuple[str, float]]] = []
        shows: list[float] = []
        timeline(folder, flow, root / "out", env)  # warm-up
        for _ in range(args.runs):
            runs.append(timeline(folder, flow, root / "out", env))
            shows.append(
                run_timed([str(PYTHON), flow.name, "--quiet", "show"], cwd=folder, env=env)
            )
        importing = statistics.median(metaflow_import_ms(folder, flow, env) for _ in range(3))
    print(
        f"`show` alone: {statistics.median(shows) * 1000:.0f} ms "
        f"(median of {args.runs}), of which importing metaflow ~{importing:.0f} ms"
    )
    print(f"decoflow compile of one mutator flow (medians of {args.runs}), ms since start:")
    labels = [label for label, _ in runs[0]]
    previous = 0.0
    for n, label in enumerate(labels):
        at = statistics.median(run[n][1] for run in runs if len(run) == len(labels)) * 1000
        print(f"  {at:7.0f}  (+{at - previous:5.0f})  {label}")
        previous = at


if __name__ == "__main__":
    main()
