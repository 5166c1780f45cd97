"""What a compile is asked to do, independent of how it was asked (CLI, config, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CompileOptions:
    """Options for one compile.

    with_specs: `--with` specs (`mod.deco:k=v,...`, or a built-in like `retry:times=2`).
    project_root: paths named in the output are relative to it; by default the nearest folder
        above the flow holding `pyproject.toml` or `.git`, else the flow's folder.
    search_path: extra folders to resolve decorator modules in, before PYTHONPATH.
    """

    with_specs: tuple[str, ...] = ()
    project_root: Path | None = None
    search_path: tuple[Path, ...] = ()
