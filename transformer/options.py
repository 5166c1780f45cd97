"""What a compile is asked to do, independent of how it was asked (CLI, config, tests)."""

from __future__ import annotations

from pathlib import Path

from .support.records import frozen


@frozen
class CompileOptions:
    """Options for one compile.

    with_specs: `--with` specs (`mod.deco:k=v,...`, or a built-in like `retry:times=2`).
    project_root: paths named in the output are relative to it; by default the nearest folder
        above the flow holding `pyproject.toml` or `.git`, else the flow's folder.
    search_path: extra folders to resolve decorator modules in, before PYTHONPATH.

    For a flow that needs Metaflow to evaluate its mutators and configs (issue 12; see
    transformer/passes/expand/), and only then:
    python: the interpreter whose Metaflow evaluates them (`--python`); None: the running one.
    configs: `--config NAME FILE` pairs; config_values: `--config-value NAME JSON` pairs.
    expansion_timeout: seconds one flow's evaluation may take.
    All four are part of what an output depends on (with the Metaflow version the header
    records).
    """

    with_specs: tuple[str, ...] = ()
    project_root: Path | None = None
    search_path: tuple[Path, ...] = ()
    python: str | None = None
    configs: tuple[tuple[str, str], ...] = ()
    config_values: tuple[tuple[str, str], ...] = ()
    expansion_timeout: float = 60.0
