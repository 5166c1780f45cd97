"""Generate the flows the benchmarks compile and run.

Every generated step carries four stacked custom decorators from one decorator module
(`benchdecos.py`, written next to the flows):

- `timer`:  try/finally around its yield (records the step's duration even on failure);
- `gate`:   three yield points chosen at run time: run the step (`yield`), skip it
  (`yield {}`) or replace it with a function (`yield _gate_replacement`; a join gets
  `_gate_join_replacement`);
- `strict`: catches an exception from the step, records it and re-raises it;
- `tag`:    before/after code that reads its attributes and sets artifacts.

Flows are linear chains `start -> s1 -> ... -> end` (for the compile benchmarks) or, with
`foreach=True`, a chain with a foreach fan-out and join in the middle (for the runtime
benchmark). Gate modes vary by step (mostly `run`, some `skip` and `replace`) so that
every yield point is exercised when the flow runs.

With `--mutators` (the expansion benchmark), the flows carry no step decorator: a flow
mutator from `benchmutators.py`, `@hardened`, adds `@retry` and a custom generator decorator
to every step, so only Metaflow (evaluating the mutator) knows the steps' stacks.

Usage (flows for a re-run outside the repository):

    python benchmarks/gen.py OUT_DIR --steps 12 --flows 300 [--foreach]
    python benchmarks/gen.py OUT_DIR --steps 12 --flows 20 --mutators
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Iterator
from pathlib import Path

DECORATOR_MODULE = "benchdecos"

#: The decorator module: the four decorators and the gate's replacement functions.
DECORATORS_SOURCE = '''\
"""Benchmark decorators: try/finally, a 3-way yield, a strict re-raise, before/after."""

import time

from metaflow import user_step_decorator


@user_step_decorator
def timer(step_name, flow, inputs=None, attributes=None):
    """Record how long the step took, whether or not it failed."""
    started = time.perf_counter()
    try:
        yield
    finally:
        flow.elapsed = time.perf_counter() - started


def _gate_replacement(flow):
    flow.gated = "replaced"
    return True


def _gate_join_replacement(flow, inputs):
    flow.gated = "replaced join of %d" % len(list(inputs))
    return True


@user_step_decorator
def gate(step_name, flow, inputs=None, attributes=None):
    """Run, skip or replace the step, as its `mode` attribute says."""
    mode = attributes.get("mode", "run")
    if mode == "skip":
        yield {}
    elif mode == "replace":
        yield _gate_join_replacement if inputs is not None else _gate_replacement
    else:
        yield
    flow.gate_mode = mode


@user_step_decorator
def strict(step_name, flow, inputs=None, attributes=None):
    """Note a failure of the step and re-raise it."""
    try:
        yield
    except Exception as err:
        flow.strict_error = "%s: %s" % (type(err).__name__, err)
        raise


@user_step_decorator
def tag(step_name, flow, inputs=None, attributes=None):
    """Set artifacts before and after the step."""
    label = attributes.get("label", step_name)
    flow.tag_before = label
    yield
    flow.tag_after = "%s:%s" % (label, step_name)
'''

#: The decorators each step carries, outermost first.
STACK = ("timer", "gate", "strict", "tag")


def write_decorators(folder: Path) -> Path:
    """Write `benchdecos.py` into `folder` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{DECORATOR_MODULE}.py"
    path.write_text(DECORATORS_SOURCE, encoding="utf-8")
    return path


def _gate_mode(index: int, is_join: bool, varied: bool) -> str:
    """Mostly `run`; with `varied`, every 5th step skips and every 7th is replaced."""
    if not varied or index == 0:
        return "run"
    if index % 7 == 3:
        return "replace"
    if index % 5 == 2 and not is_join:
        return "skip"
    return "run"


def _decorators(index: int, name: str, is_join: bool, varied: bool) -> list[str]:
    mode = _gate_mode(index, is_join, varied)
    return [
        "@timer",
        f'@gate(mode="{mode}")',
        "@strict",
        f'@tag(label="{name}-{index}")',
        "@step",
    ]


def _step(
    index: int, name: str, body: list[str], nxt: str | None, is_join: bool, varied: bool
) -> str:
    params = "self, inputs" if is_join else "self"
    lines = [
        *_decorators(index, name, is_join, varied),
        f"def {name}({params}):",
        *(f"    {line}" for line in body),
    ]
    if nxt is not None:
        lines.append(f"    {nxt}")
    return textwrap.indent("\n".join(lines), "    ")


def _linear_names(n_steps: int) -> list[str]:
    if n_steps < 2:
        raise ValueError("a flow needs at least 2 steps (start and end)")
    return ["start", *(f"s{i:03d}" for i in range(1, n_steps - 1)), "end"]


def _linear_steps(n_steps: int, varied: bool) -> Iterator[str]:
    names = _linear_names(n_steps)
    for i, name in enumerate(names):
        if name == "start":
            body = ["self.total = 0", "self.history = []"]
        elif name == "end":
            body = ['print("total", self.total, "steps", len(self.history))']
        else:
            body = [
                f"self.total = self.total + {i}",
                f'self.history = self.history + ["{name}"]',
            ]
        nxt = None if name == "end" else f"self.next(self.{names[i + 1]})"
        yield _step(i, name, body, nxt, is_join=False, varied=varied)


def _foreach_steps(n_steps: int, width: int, varied: bool) -> Iterator[str]:
    """start -> chain... -> fan -(foreach)-> work -> join -> chain... -> end."""
    if n_steps < 5:
        raise ValueError("a foreach flow needs at least 5 steps")
    before = (n_steps - 5) // 2
    after = n_steps - 5 - before
    names = (
        ["start"]
        + [f"pre{i:03d}" for i in range(before)]
        + ["fan", "work", "join"]
        + [f"post{i:03d}" for i in range(after)]
        + ["end"]
    )
    for i, name in enumerate(names):
        is_join = name == "join"
        nxt = None if name == "end" else f"self.next(self.{names[i + 1]})"
        if name == "start":
            body = ["self.total = 0", f"self.items = list(range({width}))"]
        elif name == "fan":
            body = ["self.total = self.total + 1"]
            nxt = 'self.next(self.work, foreach="items")'
        elif name == "work":
            body = ["self.part = sum(range(1000 * (self.input + 1)))"]
        elif is_join:
            body = [
                "self.total = sum(inp.part for inp in inputs)",
                'self.merge_artifacts(inputs, include=["items"])',
            ]
        elif name == "end":
            body = ['print("total", self.total)']
        else:
            body = [f"self.total = self.total + {i}"]
        # The steps of the foreach and its join always run: their artifacts are needed.
        step_varied = varied and name not in ("fan", "work", "join")
        yield _step(i, name, body, nxt, is_join=is_join, varied=step_varied)


def flow_source(
    class_name: str, n_steps: int, *, foreach: bool = False, width: int = 4, varied: bool = True
) -> str:
    """The source of a generated flow with `n_steps` steps, each with four decorators."""
    steps = _foreach_steps(n_steps, width, varied) if foreach else _linear_steps(n_steps, varied)
    header = (
        f'"""Generated benchmark flow: {n_steps} steps, {len(STACK)} stacked decorators each."""\n'
        "from metaflow import FlowSpec, step\n\n"
        f"from {DECORATOR_MODULE} import {', '.join(sorted(STACK))}\n\n\n"
        f"class {class_name}(FlowSpec):\n"
    )
    body = "\n\n".join(steps)
    footer = f'\n\n\nif __name__ == "__main__":\n    {class_name}()\n'
    return header + body + footer


def write_flow(
    folder: Path,
    file_name: str,
    class_name: str,
    n_steps: int,
    *,
    foreach: bool = False,
    varied: bool = True,
) -> Path:
    """Write a flow (and, next to it, the decorator module) into `folder`."""
    write_decorators(folder)
    path = folder / file_name
    path.write_text(
        flow_source(class_name, n_steps, foreach=foreach, varied=varied), encoding="utf-8"
    )
    return path


def write_many(folder: Path, count: int, n_steps: int) -> list[Path]:
    """Write `count` flows of `n_steps` steps (`flow_000.py`, ...) sharing one decorator module."""
    write_decorators(folder)
    paths = []
    for i in range(count):
        path = folder / f"flow_{i:03d}.py"
        path.write_text(flow_source(f"BenchFlow{i:03d}", n_steps), encoding="utf-8")
        paths.append(path)
    return paths


MUTATOR_MODULE = "benchmutators"

#: The mutator module: a flow mutator adding `@retry` and a custom generator decorator to
#: every step (the flows themselves carry no step decorator: only Metaflow knows the stacks).
MUTATORS_SOURCE = '''\
"""Benchmark mutator: @hardened adds @retry and @stamp (a generator decorator) to every step."""

import time

from metaflow import FlowMutator, user_step_decorator


@user_step_decorator
def stamp(step_name, flow, inputs=None, attributes=None):
    """Record the step's label and duration, whether or not it failed."""
    started = time.perf_counter()
    try:
        yield
    finally:
        flow.stamped = "%s:%.6f" % (attributes.get("label"), time.perf_counter() - started)


class hardened(FlowMutator):
    """@retry(times=...) and @stamp(label=<step name>) on every step."""

    def init(self, *args, **kwargs):
        self.times = kwargs.get("times", 2)

    def mutate(self, mutable_flow):
        for name, step in mutable_flow.steps:
            step.add_decorator("retry", deco_kwargs={"times": self.times})
            step.add_decorator(stamp, deco_kwargs={"label": name})
'''


def mutator_flow_source(class_name: str, n_steps: int) -> str:
    """A linear flow of `n_steps` plain steps whose decorators all come from `@hardened`."""
    names = _linear_names(n_steps)
    steps = []
    for i, name in enumerate(names):
        nxt = "pass" if name == "end" else f"self.next(self.{names[i + 1]})"
        steps.append(f"    @step\n    def {name}(self):\n        self.v{i} = {i}\n        {nxt}")
    return (
        f'"""Generated benchmark flow: {n_steps} steps decorated by a flow mutator."""\n'
        "from metaflow import FlowSpec, step\n\n"
        f"from {MUTATOR_MODULE} import hardened\n\n\n"
        f"@hardened(times=2)\nclass {class_name}(FlowSpec):\n"
        + "\n\n".join(steps)
        + f'\n\n\nif __name__ == "__main__":\n    {class_name}()\n'
    )


def write_mutator_flows(folder: Path, count: int, n_steps: int) -> list[Path]:
    """Write `benchmutators.py` and `count` mutator flows (`mflow_000.py`, ...) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MUTATOR_MODULE}.py").write_text(MUTATORS_SOURCE, encoding="utf-8")
    paths = []
    for i in range(count):
        path = folder / f"mflow_{i:03d}.py"
        path.write_text(mutator_flow_source(f"MutFlow{i:03d}", n_steps), encoding="utf-8")
        paths.append(path)
    return paths


def decorator_sizes() -> dict[str, int]:
    """Bytes of each decorator's definition (its `@user_step_decorator` line included)."""
    import ast

    tree = ast.parse(DECORATORS_SOURCE)
    lines = DECORATORS_SOURCE.splitlines(keepends=True)
    sizes = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in STACK:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            sizes[node.name] = len("".join(lines[first - 1 : node.end_lineno]).encode("utf-8"))
    return sizes


def main() -> None:
    """Command line: write flows into a folder."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--steps", type=int, default=8, help="steps per flow (default 8)")
    parser.add_argument("--flows", type=int, default=1, help="how many flows (default 1)")
    parser.add_argument("--foreach", action="store_true", help="a foreach in the middle (one flow)")
    parser.add_argument(
        "--mutators", action="store_true", help="flows decorated by a flow mutator instead"
    )
    args = parser.parse_args()
    if args.mutators:
        paths = write_mutator_flows(args.out_dir, args.flows, args.steps)
        print(f"{len(paths)} mutator flows in {args.out_dir}")
        return
    if args.flows == 1:
        path = write_flow(
            args.out_dir, "benchflow.py", "BenchFlow", args.steps, foreach=args.foreach
        )
        print(path)
    else:
        paths = write_many(args.out_dir, args.flows, args.steps)
        print(f"{len(paths)} flows in {args.out_dir}")


if __name__ == "__main__":
    main()
