"""Project configuration: `[tool.decoflow]` in the nearest `pyproject.toml`.

    [tool.decoflow]
    flows = ["flows/*flow.py"]    # globs, relative to the folder of pyproject.toml
    out-dir = "build"             # where compiled flows go, relative to the same folder
    with = ["retry:times=2"]      # `--with` specs applied to every configured flow

The project root is the nearest folder at or above a starting folder that holds
`pyproject.toml` or `.git` (the same rule the compiler uses for the paths it names in its
output). Outputs mirror the flows' paths below their common folder: with the config above,
`flows/waiterflow.py` compiles to `build/waiterflow.py` and `flows/team/aflow.py` to
`build/team/aflow.py`.

Nothing here compiles anything; it only answers "which files, from where, to where".
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYPROJECT = "pyproject.toml"
SECTION = "decoflow"
KNOWN_KEYS = ("flows", "out-dir", "with")


class ConfigError(Exception):
    """The configuration is missing, unreadable or malformed; the message says which and where."""


@dataclass(frozen=True)
class ProjectConfig:
    """What `[tool.decoflow]` says, plus where it was found.

    root: the project root (folder of pyproject.toml or .git); config paths are relative to it.
    pyproject: the pyproject.toml read, or None when the root has none.
    flows: the `flows` globs, as written.
    out_dir: the `out-dir` value as written, or None.
    with_specs: the `with` specs, in order.
    """

    root: Path
    pyproject: Path | None = None
    flows: tuple[str, ...] = ()
    out_dir: str | None = None
    with_specs: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def configured(self) -> bool:
        """Whether any flows are configured."""
        return bool(self.flows)

    def out_path(self) -> Path | None:
        """`out-dir` as an absolute path, or None when not configured."""
        if self.out_dir is None:
            return None
        return absolute(self.root / self.out_dir)


def absolute(path: Path | str) -> Path:
    """An absolute, normalised path, following no symlinks (unlike `Path.resolve`) except
    when the path exists, where symlinks are resolved so that two spellings of one file compare equal.
    """
    path = Path(os.path.abspath(os.fspath(path)))
    return path.resolve() if path.exists() else path


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


def _load_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file with `tomllib` (Python >= 3.11) or the `tomli` backport."""
    if sys.version_info >= (3, 11):
        import tomllib as toml_reader
    else:  # pragma: no cover - exercised only on Python < 3.11
        try:
            import tomli as toml_reader
        except ImportError:
            raise ConfigError(
                f"{path}: reading [tool.decoflow] needs Python >= 3.11 or the `tomli` package "
                "(pip install tomli)"
            ) from None
    try:
        with path.open("rb") as handle:
            return toml_reader.load(handle)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    except toml_reader.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def _string_list(value: Any, key: str, where: Path) -> tuple[str, ...]:
    """A TOML value that must be a string or a list of strings."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"{where}: [tool.decoflow] `{key}` must be a list of strings")


def load_config(root: Path | str) -> ProjectConfig:
    """Read `[tool.decoflow]` from `root/pyproject.toml` (an empty config when absent)."""
    root = absolute(root)
    pyproject = root / PYPROJECT
    if not pyproject.is_file():
        return ProjectConfig(root=root)
    data = _load_toml(pyproject)
    tool = data.get("tool", {})
    section = tool.get(SECTION, {}) if isinstance(tool, dict) else {}
    if not isinstance(section, dict):
        raise ConfigError(f"{pyproject}: [tool.decoflow] must be a table")
    unknown = sorted(set(section) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(
            f"{pyproject}: unknown key(s) in [tool.decoflow]: {', '.join(unknown)} "
            f"(known: {', '.join(KNOWN_KEYS)})"
        )
    flows = _string_list(section.get("flows", []), "flows", pyproject)
    out_dir = section.get("out-dir")
    if out_dir is not None and (not isinstance(out_dir, str) or not out_dir.strip()):
        raise ConfigError(f"{pyproject}: [tool.decoflow] `out-dir` must be a non-empty string")
    with_specs = _string_list(section.get("with", []), "with", pyproject)
    return ProjectConfig(
        root=root, pyproject=pyproject, flows=flows, out_dir=out_dir, with_specs=with_specs
    )


def find_config(start: Path | str) -> ProjectConfig:
    """The configuration of the project that `start` (a file or folder) belongs to."""
    return load_config(find_root(start))


def _is_below(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def expand_flows(config: ProjectConfig) -> tuple[list[Path], list[str]]:
    """The configured flow files, sorted, and a warning for each glob that matched nothing.

    Globs are relative to the project root; `**` matches any depth; like the shell, `*` does
    not match names starting with a dot (so `.venv` and `.git` are never searched). Files
    below the output folder are never flows (a compiled flow must not be compiled again).
    """
    out_dir = config.out_path()
    found: set[Path] = set()
    warnings: list[str] = []
    for pattern in config.flows:
        if os.path.isabs(pattern):
            raise ConfigError(
                f"{config.pyproject}: [tool.decoflow] flows pattern {pattern!r} must be "
                "relative to the folder of pyproject.toml"
            )
        matches = [
            absolute(match)
            for match in glob.glob(os.path.join(glob.escape(str(config.root)), pattern), recursive=True)
            if os.path.isfile(match)
        ]
        matches = [m for m in matches if out_dir is None or not _is_below(m, out_dir)]
        if not matches:
            warnings.append(f"{config.pyproject}: flows pattern {pattern!r} matched no files")
        found.update(matches)
    return sorted(found, key=lambda p: p.as_posix()), warnings


def common_folder(paths: Sequence[Path]) -> Path:
    """The deepest folder holding every path of `paths` (absolute paths)."""
    if not paths:
        raise ValueError("common_folder() needs at least one path")
    return Path(os.path.commonpath([str(p.parent) for p in paths]))


def mirror_outputs(inputs: Iterable[Path], out_dir: Path) -> dict[Path, Path]:
    """Map each input to `out_dir` / (its path below the inputs' common folder)."""
    inputs = list(inputs)
    if not inputs:
        return {}
    base = common_folder(inputs)
    return {src: out_dir / src.relative_to(base) for src in inputs}
