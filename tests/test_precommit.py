"""The pre-commit hook, end to end with the real `pre-commit` tool.

A temporary git repository configures flows in `[tool.decoflow]` and uses THIS repository
(at its HEAD commit: pre-commit clones the hook source at a revision, so what is tested is
what is committed) as the source of the `decoflow` hook. pre-commit installs the hook into
its own virtual environment (PRE_COMMIT_HOME is a temporary folder), which needs the
package index or pip's cache for decoflow's dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# pre-commit comes with the test extras (`make test`); without it this test fails, not skips.

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
            self.next(self.join)

        @step
        def join(self, inputs):
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == '__main__':
        WaiterFlow()
    """
)

CONFIG = textwrap.dedent(
    """\
    [project]
    name = "flows-demo"

    [tool.decoflow]
    flows = ["flows/*flow.py"]
    out-dir = "build"
    """
)


def git(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def hook_source_rev() -> str:
    """The commit of this repository that pre-commit will install the hook from."""
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    head = git("rev-parse", "HEAD", cwd=REPO_ROOT, env=clean_env)
    if head.returncode != 0:
        pytest.skip("this repository is not a git checkout: pre-commit needs a revision")
    rev = head.stdout.strip()
    if git("cat-file", "-e", f"{rev}:.pre-commit-hooks.yaml", cwd=REPO_ROOT, env=clean_env).returncode:
        pytest.skip("HEAD has no .pre-commit-hooks.yaml yet (commit it to test the hook)")
    return rev


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no inherited GIT_* variables or git config (a global
    core.hooksPath would stop `pre-commit install`), a private PRE_COMMIT_HOME. HOME is
    kept, so that pip's cache serves the hook environment's install."""
    (tmp_path / "gitconfig").write_text("")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    return {
        **base,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig"),
    }


def pre_commit(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args, "--color", "never"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )


def commit_count(repo: Path, env: dict[str, str]) -> int:
    return int(git("rev-list", "--count", "HEAD", cwd=repo, env=env).stdout)


def test_hook_regenerates_and_fails_on_change_then_passes(tmp_path: Path, env: dict[str, str]) -> None:
    rev = hook_source_rev()
    repo = tmp_path / "repo"
    (repo / "flows").mkdir(parents=True)
    (repo / "flows" / "myprofiler.py").write_text(PROFILER)
    (repo / "flows" / "waiterflow.py").write_text(WAITER)
    (repo / "pyproject.toml").write_text(CONFIG)
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {REPO_ROOT.as_posix()}\n  rev: {rev}\n  hooks:\n  - id: decoflow\n"
    )
    assert git("init", "-q", cwd=repo, env=env).returncode == 0
    assert git("add", ".", cwd=repo, env=env).returncode == 0
    assert git("commit", "-q", "-m", "flows", cwd=repo, env=env).returncode == 0
    output = repo / "build" / "waiterflow.py"

    # No outputs yet: the hook writes them, says which, and fails.
    first = pre_commit("run", "--all-files", cwd=repo, env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "wrote build/waiterflow.py" in first.stdout
    text = output.read_text()
    assert text.startswith("# Generated by decoflow from flows/waiterflow.py")
    assert "completed in" in text  # the decorator's code is inlined
    assert str(tmp_path) not in text

    # Up to date: passes and touches nothing.
    second = pre_commit("run", "--all-files", cwd=repo, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Passed" in second.stdout
    assert output.read_text() == text

    # As a git hook: a commit with up-to-date outputs goes through.
    assert pre_commit("install", cwd=repo, env=env).returncode == 0
    assert git("add", "build", cwd=repo, env=env).returncode == 0
    committed = git("commit", "-q", "-m", "generated flows", cwd=repo, env=env)
    assert committed.returncode == 0, committed.stdout + committed.stderr
    assert commit_count(repo, env) == 2

    # Only the decorator module changes: the commit is stopped and the output regenerated.
    profiler = repo / "flows" / "myprofiler.py"
    profiler.write_text(PROFILER.replace("completed in", "finished in"))
    assert git("add", "flows/myprofiler.py", cwd=repo, env=env).returncode == 0
    stopped = git("commit", "-q", "-m", "reword the profiler", cwd=repo, env=env)
    assert stopped.returncode != 0
    assert "wrote build/waiterflow.py" in stopped.stdout + stopped.stderr
    assert commit_count(repo, env) == 2
    assert "finished in" in output.read_text()
    assert "completed in" not in output.read_text()

    # With the regenerated output staged, the commit goes through, and the hook passes again.
    assert git("add", "build", cwd=repo, env=env).returncode == 0
    redone = git("commit", "-q", "-m", "reword the profiler", cwd=repo, env=env)
    assert redone.returncode == 0, redone.stdout + redone.stderr
    assert commit_count(repo, env) == 3
    final = pre_commit("run", "--all-files", cwd=repo, env=env)
    assert final.returncode == 0, final.stdout + final.stderr
    assert git("status", "--porcelain", cwd=repo, env=env).stdout == ""
