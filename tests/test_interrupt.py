"""An interrupted batch leaves every output either old or new, never partial (issue 6).

A batch compile is killed (SIGKILL) at several moments while it rewrites 40 outputs after a
decorator module changed; each output must then be exactly the old or exactly the new text.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from decoflow.transformer import CompileOptions, compile_file

ROOT = Path(__file__).resolve().parent.parent
N = 40


def _project(tmp_path: Path) -> Path:
    src = tmp_path / "flows"
    src.mkdir()
    seed = ROOT / "fixtures" / "seed_waiter"
    shutil.copy(seed / "myprofiler.py", src / "myprofiler.py")
    text = (seed / "waiterflow.py").read_text()
    for i in range(N):
        (src / f"flow{i:02d}.py").write_text(text.replace("WaiterFlow", f"WaiterFlow{i}"))
    return src


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def _no_worker_left(marker: str, timeout: float = 10.0) -> None:
    """The killed batch's worker processes (forked: same command line) end by themselves."""
    deadline = time.monotonic() + timeout
    while _processes_mentioning(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_mentioning(marker), "worker processes outlived the killed batch"


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.6])
def test_killed_batch_leaves_old_or_new_outputs(tmp_path: Path, delay: float) -> None:
    src = _project(tmp_path)
    out = tmp_path / "build"
    flows = sorted(src.glob("flow*.py"))
    cmd = [
        sys.executable,
        "-m",
        "decoflow",
        "compile",
        *map(str, flows),
        "--out-dir",
        str(out),
        "-q",
    ]
    subprocess.run(cmd, check=True, cwd=tmp_path)
    old = {f.name: (out / f.name).read_text() for f in flows}

    profiler = src / "myprofiler.py"
    profiler.write_text(profiler.read_text().replace("completed in", "finished in"))
    options = CompileOptions(project_root=src)  # as the CLI finds it: no pyproject or .git above
    new = {f.name: compile_file(f, options) for f in flows}
    assert all(new[name] != old[name] for name in new)

    proc = subprocess.Popen(cmd, cwd=tmp_path)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _no_worker_left(str(out))
    for f in flows:
        text = (out / f.name).read_text()
        assert text in (old[f.name], new[f.name]), f"{f.name} is neither the old nor the new output"


def test_killed_batch_leaves_no_worker_behind(tmp_path: Path) -> None:
    """Killing the batch (SIGKILL: no chance to clean up) while its workers compile: they
    notice and end instead of waiting for work forever."""
    src = tmp_path / "flows"
    src.mkdir()
    seed = ROOT / "fixtures" / "seed_waiter"
    shutil.copy(seed / "myprofiler.py", src / "myprofiler.py")
    text = (seed / "waiterflow.py").read_text()
    for i in range(300):
        (src / f"flow{i:03d}.py").write_text(text.replace("WaiterFlow", f"WaiterFlow{i}"))
    out = tmp_path / "workers-build"
    cmd = [
        sys.executable,
        "-m",
        "decoflow",
        "compile",
        *map(str, sorted(src.glob("flow*.py"))),
        "--out-dir",
        str(out),
        "-q",
        "-j",
        "2",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while (
        len(_processes_mentioning(str(out))) < 3
        and proc.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)  # until the parent and both workers run
    assert proc.poll() is None, "the batch ended before its workers were seen"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _no_worker_left(str(out))
