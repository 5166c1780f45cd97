"""Shared test setup: make `harness` and the `decoflow` package importable.

`decoflow` maps onto the repository's top-level folders (see pyproject.toml). In the
project's own virtual environment it is installed in editable mode; under any other
interpreter (e.g. a bare venv that only has Metaflow, pytest and libcst) the repository
root is registered here as the `decoflow` package so that
`from decoflow.transformer import compile_file` works without installing anything.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


def _ensure_decoflow_importable() -> None:
    """Register the repository root as the `decoflow` package if it is not installed."""
    if "decoflow" in sys.modules or importlib.util.find_spec("decoflow") is not None:
        return
    spec = importlib.util.spec_from_file_location(
        "decoflow", REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["decoflow"] = module
    spec.loader.exec_module(module)


_ensure_decoflow_importable()


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers used by the differential tests."""
    config.addinivalue_line(
        "markers",
        "differential: runs real Metaflow flows in subprocesses (slow; each test uses its own "
        "temporary folders, so they are safe to run in parallel with `pytest -n 2`)",
    )
