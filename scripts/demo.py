"""Demo: compile the docs' WaiterFlow, run the compiled flow alone, show what it did.

    python scripts/demo.py OUTDIR        (`make demo` runs it with OUTDIR = build/demo)

1. compiles fixtures/seed_waiter/waiterflow.py (which uses the custom decorator
   @my_profile from myprofiler.py) to OUTDIR/waiterflow.py and prints the result;
2. runs OUTDIR/waiterflow.py alone (no myprofiler.py next to it) with this interpreter,
   the local datastore and local metadata under OUTDIR/.metaflow;
3. reads the run back with the Client API (in a subprocess with the same environment)
   and prints, step by step, every task with the lines it printed and its artifacts.

Exits with status 1 if compiling or the run fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_FLOW = REPO_ROOT / "fixtures" / "seed_waiter" / "waiterflow.py"

sys.path.insert(0, str(REPO_ROOT / "tests"))
from harness import (  # noqa: E402  (needs the path set above)
    TaskOutcome,
    flow_class_name,
    flow_env,
    read_results,
    task_label,
)


def _ensure_decoflow_importable() -> None:
    """Use the repository as the `decoflow` package when it is not installed."""
    if "decoflow" in sys.modules or importlib.util.find_spec("decoflow") is not None:
        return
    spec = importlib.util.spec_from_file_location(
        "decoflow", REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["decoflow"] = module
    spec.loader.exec_module(module)


def _banner(title: str) -> None:
    print(f"\n{'=' * 20} {title} {'=' * max(0, 58 - len(title))}", flush=True)


def _task_number(task: TaskOutcome) -> int:
    tail = task.pathspec.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def main(argv: list[str] | None = None) -> int:
    """Compile, run and report; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="where to write and run the compiled flow")
    args = parser.parse_args(argv)
    outdir: Path = args.outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)

    _ensure_decoflow_importable()
    from decoflow.transformer import CompileError, compile_file

    _banner(f"compiling {SOURCE_FLOW.relative_to(REPO_ROOT)}")
    try:
        source = compile_file(SOURCE_FLOW)
    except CompileError as err:
        print(err, file=sys.stderr)
        return 1
    target = outdir / SOURCE_FLOW.name
    target.write_text(source, encoding="utf-8")
    print(source, flush=True)
    others = sorted(p.name for p in outdir.glob("*.py") if p != target)
    if others:
        print(f"warning: {outdir} also holds {others}; the compiled flow should run alone")

    _banner(f"running {target} alone")
    env = flow_env(outdir, outdir)  # datastore and metadata in OUTDIR/.metaflow
    cmd = [sys.executable, target.name, "--no-pylint", "run", "--max-workers", "2"]
    print("$ " + " ".join(cmd), flush=True)
    returncode = subprocess.run(cmd, cwd=outdir, env=env).returncode

    _banner("what the run did (Client API)")
    flow_name = flow_class_name(target)
    run_found, tasks = read_results(sys.executable, outdir, env, flow_name)
    if not run_found:
        print(f"no run of {flow_name} was recorded")
        return 1
    by_step: dict[str, list[TaskOutcome]] = {}
    for task in sorted(tasks.values(), key=_task_number):
        by_step.setdefault(task.step, []).append(task)
    for step, step_tasks in by_step.items():
        print(f"\nstep {step}: {len(step_tasks)} task(s)")
        for task in step_tasks:
            state = "ok" if task.successful else f"FAILED ({task.error})"
            print(f"  task {task_label(task.key)}  [{task.pathspec}]  {state}")
            for line in task.stdout:
                print(f"    | {line}")
            for name, value in sorted(task.artifacts.items()):
                print(f"    {name} = {json.dumps(value, ensure_ascii=False, sort_keys=True)}")
    print(flush=True)
    if returncode != 0:
        print(f"the run failed (exit {returncode})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
