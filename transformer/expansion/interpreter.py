"""Which interpreter evaluates mutators and configs: `--python` as given, else the running
one when its Metaflow is 2.16 or newer. Its version is read from the installed metadata,
without importing Metaflow, nor (usually) `importlib.metadata`: this runs before the child
is started, which it would delay.
"""

from __future__ import annotations

import os
import sys


def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


def running_metaflow() -> str | None:
    """The running interpreter's Metaflow version, read from its metadata (not imported)."""
    found = scan_dist_info("metaflow", sys.path)
    if found is not UNSURE:
        return found  # type: ignore[return-value]
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version("metaflow")
    except PackageNotFoundError:
        return None


#: `scan_dist_info` could not tell: ask `importlib.metadata`.
UNSURE = object()


def scan_dist_info(name: str, entries: list[str]) -> str | None | object:
    """The version of the distribution `name` (normalized: lower case, `_` for runs of
    `-_.`) that `importlib.metadata.version` finds along `entries` (sys.path), read the same
    way without importing it (~8 ms, which would delay the start of the Metaflow child): the
    first folder of `entries` holding a `NAME-VERSION.dist-info` (or `NAME.dist-info`), its
    METADATA's `Version:`. None: there is none. `UNSURE` for what it does not read alike (an
    egg-info, a zip or an egg on the path, two candidates in one folder, no Version header):
    the caller then asks `importlib.metadata`."""
    import re

    for entry in entries:
        if entry.lower().endswith(".egg"):
            return UNSURE
        try:
            children = os.listdir(entry or ".")
        except NotADirectoryError:
            return UNSURE  # a zip: importlib.metadata looks inside
        except OSError:
            continue
        found = []
        for child in children:
            lower = child.lower()
            if lower.endswith((".dist-info", ".egg-info")):
                stem = lower.rpartition(".")[0].partition("-")[0]
                if re.sub(r"[-_.]+", "_", stem) == name:
                    found.append(child)
        if not found:
            continue
        if len(found) > 1 or not found[0].lower().endswith(".dist-info"):
            return UNSURE
        return _metadata_version(os.path.join(entry or ".", found[0], "METADATA"))
    return None


def _metadata_version(path: str) -> str | object:
    """The `Version:` header of a METADATA file (headers end at the first blank line)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key.strip().lower() == "version" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return UNSURE


def choose_python(explicit: str | None) -> tuple[str | None, str]:
    """(interpreter, why not) — an explicit `--python` is taken as given (the child checks)."""
    if explicit:
        return explicit, ""
    found = running_metaflow()
    if found and _version_tuple(found) >= (2, 16, 0):
        return sys.executable, ""
    if found:
        return None, f"the running interpreter ({sys.executable}) has metaflow {found}"
    return None, f"the running interpreter ({sys.executable}) has no metaflow"
