"""Paths: the project root, and how a path is shown in diagnostics and in the output.

Imports nothing heavy: the command line uses it before it loads the compiler.
"""

from __future__ import annotations

import os
from pathlib import Path

PYPROJECT = "pyproject.toml"


def absolute(path: Path | str) -> Path:
    """An absolute, normalised path, following no symlinks (unlike `Path.resolve`) except
    when the path exists, where symlinks are resolved so that two spellings of one file
    compare equal."""
    path = Path(os.path.abspath(os.fspath(path)))
    return path.resolve() if path.exists() else path


def interpreter_path(path: Path | str) -> Path:
    """An absolute interpreter path with its symlinks kept: a virtual environment's
    `bin/python` is a symlink to the base interpreter, and resolving it would leave the
    environment (and the Metaflow installed there) behind."""
    return Path(os.path.abspath(os.fspath(path)))


def find_root(start: Path | str) -> Path:
    """The nearest folder at or above `start` holding pyproject.toml or .git, else `start`.

    `start` may be a file, in which case the search begins at its folder.
    """
    start = absolute(start)
    folder = start.parent if start.is_file() else start
    for candidate in (folder, *folder.parents):
        if (candidate / PYPROJECT).exists() or (candidate / ".git").exists():
            return candidate
    return folder


def display_path(path: Path, root: Path) -> str:
    """`path` as diagnostics and the output name it: relative to `root`, else its file name."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name
