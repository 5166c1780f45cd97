"""What a compile read from disk, recorded for a cache of outputs (`decoflow.cache`).

Standard library only: the cache checks these records without importing the compiler.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Reads:
    """What one compile looked at on disk: its output can change only if one of these does
    (a cache of outputs checks them; see `decoflow.cache`).

    files: every file read, with its (size, mtime_ns) taken just before it was read (None:
        it could not be stat'ed).
    probes: every path looked at to find a module, with what was there ("file", "dir" or
        None). A lookup that found nothing is a dependency too: a file appearing on the
        search path would change what a name resolves to.

    Whatever else a compile makes its output depend on is added here the same way: a pass
    that has Metaflow evaluate a flow (configs, mutators) records the config files it
    read, and the Metaflow files that say its version, in `files`. (Values known before
    compiling go in `CompileOptions`, all of whose fields are part of the cache key.)
    """

    files: dict[Path, tuple[int, int] | None] = field(default_factory=dict)
    probes: dict[Path, str | None] = field(default_factory=dict)


def path_kind(path: Path | str) -> str | None:
    """What is at `path`: "file", "dir" or None (missing, unreadable, or neither), following
    symlinks as `Path.is_file` / `Path.is_dir` do."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else None
