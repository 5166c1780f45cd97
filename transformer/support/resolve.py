"""Finding modules by reading the file system the way Python's import system would.

Nothing is imported. A module is looked up by its dotted name in an ordered list of roots:
the flow's folder, the extra search path, PYTHONPATH, then the site-packages of the Python
running the compiler. Regular packages (with `__init__.py`) and namespace packages (folders
without one) are both understood; relative imports resolve against the importing module.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .diagnostics import MODULE_NOT_FOUND, CompileError, Location
from .reads import Reads, path_kind
from .records import frozen
from .source import SourceFile, read_source


@frozen
class ModuleRef:
    """A module found on disk: its dotted name, file, and the root it was found under."""

    name: str
    path: Path
    root: Path
    is_package: bool
    external: bool  # found in site-packages: carried like the user's own code, named by module

    @property
    def display(self) -> str:
        try:
            return self.path.relative_to(self.root).as_posix()
        except ValueError:
            return self.path.name

    @property
    def package(self) -> str:
        """The package relative imports in this module are resolved against."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@functools.lru_cache(maxsize=1)
def site_roots() -> tuple[Path, ...]:
    """The site-packages of the running Python (read once per process)."""
    import sysconfig

    paths = sysconfig.get_paths()
    roots: list[Path] = []
    for key in ("purelib", "platlib"):
        p = paths.get(key)
        if p and Path(p) not in roots:
            roots.append(Path(p))
    return tuple(roots)


def pythonpath_roots() -> tuple[Path, ...]:
    raw = os.environ.get("PYTHONPATH", "")
    return tuple(Path(p).resolve() for p in raw.split(os.pathsep) if p)


# Parsed modules, shared by every compile in this process (a batch parses each module once).
# Keyed by path, size and modification time, so an edited module is read again.
_PARSED: dict[tuple[Path, int, int], SourceFile] = {}


def parsed_modules() -> list[SourceFile]:
    """The modules parsed so far in this process (the latest parse of each key)."""
    return list(_PARSED.values())


def parse_cached(path: Path, display: str) -> SourceFile:
    try:
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
    except OSError:
        return read_source(path, display)
    found = _PARSED.get(key)
    if found is None or found.display != display:
        found = _PARSED[key] = read_source(path, display)
    return found


class ModuleFinder:
    """Looks modules up by dotted name; parses are shared across compiles (`parse_cached`).
    Every path it looks at and every file it reads is recorded in `reads`."""

    def __init__(self, local_roots: tuple[Path, ...], reads: Reads | None = None) -> None:
        self.local_roots = tuple(dict.fromkeys(r.resolve() for r in local_roots))
        self._found: dict[str, ModuleRef | None] = {}
        self.reads = reads if reads is not None else Reads()

    @functools.cached_property
    def external_roots(self) -> tuple[Path, ...]:
        """Site-packages, looked at only for a module not found in the local roots."""
        return tuple(r for r in site_roots() if r not in self.local_roots)

    @property
    def searched(self) -> str:
        return ", ".join(
            [
                *(self._short(r) for r in self.local_roots),
                *(["site-packages"] if self.external_roots else []),
            ]
        )

    @staticmethod
    def _short(root: Path) -> str:
        try:
            rel = os.path.relpath(root)
        except ValueError:
            return str(root)
        return rel if not rel.startswith("..") else str(root)

    def find(self, dotted: str) -> ModuleRef | None:
        if dotted in self._found:
            return self._found[dotted]
        result = None
        for root in self.local_roots:
            result = self._find_in(root, dotted, external=False)
            if result:
                break
        else:
            for root in self.external_roots:
                result = self._find_in(root, dotted, external=True)
                if result:
                    break
        self._found[dotted] = result
        return result

    def _kind(self, path: Path) -> str | None:
        kind = self.reads.probes[path] = path_kind(path)
        return kind

    def _find_in(self, root: Path, dotted: str, external: bool) -> ModuleRef | None:
        parts = dotted.split(".")
        folder = root
        for part in parts[:-1]:
            folder = folder / part
            if self._kind(folder) != "dir":
                return None
        last = parts[-1]
        package = folder / last
        if self._kind(package / "__init__.py") == "file":
            return ModuleRef(dotted, package / "__init__.py", root, True, external)
        if self._kind(folder / f"{last}.py") == "file":
            return ModuleRef(dotted, folder / f"{last}.py", root, False, external)
        if self._kind(package) == "dir":  # a namespace package: no code of its own
            return ModuleRef(dotted, package, root, True, external)
        return None

    @staticmethod
    def absolute_name(importer: ModuleRef | None, module: str | None, level: int) -> str | None:
        """The absolute dotted name of `from <level dots><module> import ...`."""
        if level == 0:
            return module
        if importer is None:
            return module if module else None
        base = importer.package.split(".") if importer.package else []
        if level - 1 > len(base):
            return None
        base = base[: len(base) - (level - 1)]
        return ".".join([*base, *([module] if module else [])]) or None

    def parse(self, ref: ModuleRef) -> SourceFile:
        try:
            st = os.stat(ref.path)
            self.reads.files[ref.path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            self.reads.files[ref.path] = None
        return parse_cached(ref.path, ref.display)

    def not_found(self, dotted: str, where: Location) -> CompileError:
        return CompileError(
            [
                MODULE_NOT_FOUND(
                    f"cannot find module '{dotted}' (searched: {self.searched})",
                    where,
                )
            ]
        )
