"""A small flows repository the CLI and pre-commit tests work in (written, never a fixture
folder: the tests change it)."""

from __future__ import annotations

import textwrap
from pathlib import Path

PROFILER = textwrap.dedent(
    """\
    import time
    from metaflow import user_step_decorator, current

    @user_step_decorator
    def my_profile(step_name, flow, inputs=None, attributes=None):
        start = time.time()
        yield
        duration = 1000 * (time.time() - start)
        print(f"Task [{current.pathspec}] completed in {duration:.1f}ms")
    """
)

WAITER = textwrap.dedent(
    """\
    import time
    from metaflow import FlowSpec, step

    from myprofiler import my_profile

    class WaiterFlow(FlowSpec):

        @step
        def start(self):
            self.waiters = list(range(3))
            self.next(self.wait, foreach='waiters')

        @my_profile
        @step
        def wait(self):
            self.duration = self.input / 100
            time.sleep(self.duration)
            self.next(self.join)

        @step
        def join(self, inputs):
            self.total = sum(inp.duration for inp in inputs)
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == '__main__':
        WaiterFlow()
    """
)

TEAM = textwrap.dedent(
    """\
    from metaflow import FlowSpec, step

    from myprofiler import my_profile

    class TeamFlow(FlowSpec):

        @my_profile
        @step
        def start(self):
            self.members = 3
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == '__main__':
        TeamFlow()
    """
)

PLAIN = textwrap.dedent(
    """\
    from metaflow import FlowSpec, step

    class PlainFlow(FlowSpec):

        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
    """
)

CONFIG = textwrap.dedent(
    """\
    [project]
    name = "demo"

    [tool.decoflow]
    flows = ["flows/**/*flow.py"]
    out-dir = "build"
    """
)


def make_project(root: Path, config: str = CONFIG) -> Path:
    """A small repository: two flows (one nested) using a decorator module, and a config."""
    (root / "flows" / "team").mkdir(parents=True)
    (root / "flows" / "myprofiler.py").write_text(PROFILER)
    (root / "flows" / "waiterflow.py").write_text(WAITER)
    (root / "flows" / "team" / "myprofiler.py").write_text(PROFILER)
    (root / "flows" / "team" / "teamflow.py").write_text(TEAM)
    (root / "pyproject.toml").write_text(config)
    return root
