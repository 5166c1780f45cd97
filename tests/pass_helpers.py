"""What the per-pass tests share: decorator modules and a whole-file compile."""

from __future__ import annotations

import textwrap
from pathlib import Path

from decoflow.transformer import CompileOptions, compile_source


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


DECOS = dedent(
    """
    import time
    from metaflow import user_step_decorator as usd, USER_SKIP_STEP

    LABEL = "t"

    def stamp():
        return LABEL + str(round(time.time()) * 0)

    def unused():
        return 1

    @usd
    def timer(step_name, flow, inputs=None, attributes=None):
        start = stamp()
        yield
        flow.stamped = start

    @usd
    def skipper(s, self, ins):
        yield USER_SKIP_STEP
    """
)


def one_decorated_step(name: str) -> str:
    """A two-step flow whose `start` carries `@<name>` imported from `decos`."""
    return f"""
    from metaflow import FlowSpec, step
    from decos import {name}

    class F(FlowSpec):
        @{name}
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
    """


def with_body_line(flow: str, code: str) -> str:
    """`flow` (from `one_decorated_step`) with `code` first in the body of `start`."""
    body = "            self.next(self.end)"
    return flow.replace(body, f"            {code}\n{body}", 1)


def compile_text(tmp_path: Path, flow: str, decos: str = DECOS, **opts) -> str:
    (tmp_path / "decos.py").write_text(decos)
    (tmp_path / "flow.py").write_text(dedent(flow))
    return compile_source(
        dedent(flow), tmp_path / "flow.py", CompileOptions(project_root=tmp_path, **opts)
    )


STEP_NAMED = dedent(
    """
    import time
    from metaflow import user_step_decorator

    LIMIT = 2
    LIMIT = LIMIT * 5

    def countdown(n):
        return 0 if n <= 0 else countdown(n - 1)

    @user_step_decorator
    def timer(step_name, flow, inputs=None):
        start = time.time()
        yield
        flow.took = time.time() - start
        flow.limit = LIMIT + countdown(2)
    """
)
