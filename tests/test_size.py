"""Compiled size stays proportional to body + decorators: no copy of the body per yield point.

Bound from the issue: a step under 4 stacked decorators, one of them with 3 yield points,
compiles to at most 1.5x (flow + one copy of each decorator per step).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from decoflow.transformer import compile_file

DECOS = textwrap.dedent(
    """
    from metaflow import user_step_decorator, current


    @user_step_decorator
    def timed(step_name, flow, inputs, attributes):
        try:
            yield
        finally:
            flow.timed = step_name


    @user_step_decorator
    def three_way(step_name, flow, inputs, attributes):
        def stand_in(self):
            self.stood_in = True
            return True

        if attributes.get("mode") == "skip":
            yield {}
        elif attributes.get("mode") == "replace":
            yield stand_in
        else:
            yield
        flow.mode = attributes.get("mode")


    @user_step_decorator
    def strict(step_name, flow, inputs, attributes):
        try:
            yield
        except Exception as err:
            print("strict saw", type(err).__name__)
            raise


    @user_step_decorator
    def noted(step_name, flow, inputs, attributes):
        print("before", step_name)
        yield
        print("after", step_name)
    """
)

BODY = "\n".join(f"        self.v{i} = {i} * 2  # some work" for i in range(12))


def _flow(steps: int) -> str:
    parts = [
        "from metaflow import FlowSpec, step",
        "from decos import timed, three_way, strict, noted",
        "",
        "",
        "class SizeFlow(FlowSpec):",
    ]
    for i in range(steps):
        nxt = f"self.next(self.s{i + 1})" if i + 1 < steps else "self.next(self.end)"
        name = "start" if i == 0 else f"s{i}"
        parts.append(
            "    @timed\n    @three_way(mode='run')\n    @strict\n    @noted\n    @step\n"
            f"    def {name}(self):\n{BODY}\n        {nxt}\n"
        )
    parts.append("    @step\n    def end(self):\n        pass\n")
    parts.append('\nif __name__ == "__main__":\n    SizeFlow()\n')
    return "\n".join(parts)


def test_compiled_size_is_at_most_one_and_a_half_times_flow_plus_decorators(tmp_path: Path) -> None:
    steps = 20
    (tmp_path / "decos.py").write_text(DECOS)
    flow = _flow(steps).replace("def s0(", "def start(")
    flow = flow.replace("self.next(self.s1)", "self.next(self.s1)")
    (tmp_path / "flow.py").write_text(flow)
    compiled = compile_file(tmp_path / "flow.py")
    decorators_per_step = len(DECOS.split("@user_step_decorator", 1)[1]) + len(
        "@user_step_decorator"
    )
    budget = 1.5 * (len(flow) + steps * decorators_per_step)
    assert len(compiled) <= budget, (len(compiled), budget)
    # and the body appears once per step, not once per yield point
    assert compiled.count("self.v7 = 7 * 2") == steps
