"""Installing decoflow prints no warning of its own (issue 14): its metadata builds cleanly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

BUILD_METADATA = """
import sys
import setuptools.build_meta as backend

print(backend.prepare_metadata_for_build_wheel(sys.argv[1]))
"""


def copy_source(src: Path) -> Path:
    """The repository as pip sees it, without tests, fixtures and caches."""
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".*", "build", "*.egg-info", "__pycache__", "tests", "fixtures", "benchmarks"
        ),
    )
    return src


def test_metadata_builds_without_any_warning(tmp_path: Path) -> None:
    """What pip's build step runs first, with every warning an error (the license used to be
    a TOML table: setuptools' deprecation warning on every install)."""
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < 77:  # the build-system floor
        pytest.skip(f"setuptools {setuptools.__version__} < 77 in this venv: run `make venv`")
    src = copy_source(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", BUILD_METADATA, str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Warning" not in proc.stderr, proc.stderr
    dist_info = out / proc.stdout.strip().splitlines()[-1]
    metadata = (dist_info / "METADATA").read_text(encoding="utf-8")
    assert "License-Expression: Apache-2.0" in metadata


BUILD_WHEEL = """
import sys
import setuptools.build_meta as backend

print(backend.build_wheel(sys.argv[1]))
"""


def package_modules() -> set[str]:
    """Every module of the installed package, as a path inside the wheel: the repository root
    is `decoflow`, every folder below it holding an `__init__.py` is one of its packages."""
    skip = {"tests", "fixtures", "benchmarks", "build"}
    found = set()
    for path in REPO.rglob("*.py"):
        rel = path.relative_to(REPO)
        if rel.parts[0] in skip or rel.parts[0].startswith("."):
            continue
        if all(
            (REPO / Path(*rel.parts[:i]) / "__init__.py").exists() for i in range(len(rel.parts))
        ):
            found.add("decoflow/" + rel.as_posix())
    return found


def test_wheel_holds_every_module(tmp_path: Path) -> None:
    """The wheel pip builds (what the pre-commit hook and `pip install` get) holds every module
    of the source tree: a sub-package missing from pyproject's list installs a decoflow that
    fails with ModuleNotFoundError (a new `passes/discover` package once did)."""
    import zipfile

    src = copy_source(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", BUILD_WHEEL, str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    wheel = out / proc.stdout.strip().splitlines()[-1]
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = package_modules()
    assert "decoflow/transformer/passes/discover/__init__.py" in expected
    assert expected - names == set()
