"""The cache of compiled flows: re-checking an unchanged project costs almost nothing.

A compiled flow depends on:

- the flow's bytes, and the bytes of every module the compile read (decorator modules,
  packages' `__init__`s, helper modules), as the compiler reports them (`transformer.Reads`);
- every path the compiler looked at to find a module, and what was there: a lookup that
  found nothing depends on the search path staying as it was (a new `decos.py` beside the
  flow would shadow the installed one);
- decoflow itself: its version and a digest of its own sources (an edit of an editable
  install invalidates everything), and what it runs on
  (Python, the interpreter's environment, libcst's version, `PYTHONPATH`);
- the options of the compile (every field of `CompileOptions`, by its repr: `--with` specs,
  project root, ...) and any `extra` strings a caller adds to `Cache.lookup`.

Each flow has one entry (its *slot*, named by a digest of the flow's path, the options and
decoflow's environment), holding the output, the warnings its compile printed (printed again
on a hit), and the digest of every file and the kind of every path it depended on. A
lookup reads and hashes the flow, reads its entry, re-hashes the files and re-stats the
paths; on a match it returns the stored output, byte for byte, without parsing anything.
This module imports only the standard library: a run whose flows all hit never imports
libcst.

Safety. An entry starts with a magic line and a checksum of the rest: a truncated, corrupt
or foreign entry (another format, another slot, another flow) is ignored and rebuilt.
Entries are written to a temporary file and renamed into place, so two decoflow processes
at once each leave a whole entry (the last one wins; both are valid). A file that changed
while it was compiled is not cached. A cache folder that cannot be written (read-only, full)
only loses the speed-up: nothing is reported, except one line with `-v` (black, too, is
silent; ruff failing on it is a frequent complaint).

Pruning. A run that writes an entry prunes the cache when it was last pruned more than a
day ago (one `stat` of `last-pruned` tells): entries of any decoflow version not used for 30
days go, then the least recently used while the entries take more than 256 MiB, and
temporary files a killed process left (older than an hour). "Used" is the entry's
modification time: written, or hit (a hit re-marks an entry at most once a day, so a warm
run writes almost nothing). Removing files another process is reading or writing only costs
that process a miss: entries are replaced by rename, never rewritten in place.

Where: `.decoflow_cache/` at the project root, with a `.gitignore` of `*` and a
`CACHEDIR.TAG` (as `.ruff_cache` has), or `$DECOFLOW_CACHE_DIR`. Entries live below a folder
named after decoflow's version; `decoflow clean` removes the whole cache.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

try:  # CPython's own BLAKE2: importing hashlib would load OpenSSL (~7 ms per process)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - Pythons built without it
    from hashlib import blake2b

from decoflow import __version__
from decoflow.project import write_atomic
from decoflow.transformer.support.reads import Reads, path_kind
from decoflow.transformer.support.records import frozen

#: The layout of an entry; bump it when that changes.
FORMAT = 2
MAGIC = b"decoflow-cache %d\n" % FORMAT
DIR_NAME = ".decoflow_cache"
ENV_VAR = "DECOFLOW_CACHE_DIR"
GITIGNORE = "# Automatically created by decoflow.\n*\n"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by decoflow.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)

#: decoflow's own sources, below the package folder: its top-level modules and these
#: sub-packages (tests/test_cache.py checks this covers every package pyproject.toml ships).
PACKAGE_FOLDERS = ("transformer", "runtime")


def digest(data: bytes) -> str:
    return blake2b(data, digest_size=20).hexdigest()


def folder_for(root: Path) -> Path:
    """The cache folder of a project: `$DECOFLOW_CACHE_DIR`, else `<root>/.decoflow_cache`."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(os.path.abspath(configured))
    return root / DIR_NAME


# -- what every entry depends on: decoflow and what it runs on ------------------------------


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """A digest of decoflow's own source files (an edited editable install compiles
    differently). Their contents, not their modification times, so that reinstalling the
    same version (say, in each CI run) keeps the cache valid."""
    package = os.path.dirname(os.path.abspath(__file__))
    found = [
        (name, os.path.join(package, name)) for name in os.listdir(package) if name.endswith(".py")
    ]
    skip = len(os.path.join(package, ""))  # the names below it, as os.path.relpath gives
    for folder in PACKAGE_FOLDERS:  # them (~10 us each) with what os.walk joined already
        for parent, _, names in os.walk(os.path.join(package, folder)):
            paths = [os.path.join(parent, n) for n in names if n.endswith(".py")]
            found.extend((path[skip:], path) for path in paths)
    hasher = blake2b(digest_size=20)
    for name, path in sorted(found):
        with open(path, "rb") as handle:
            data = handle.read()
        hasher.update(b"%s\0%d\0" % (os.fsencode(name), len(data)) + data)
    return hasher.hexdigest()


def _distribution(name: str) -> str:
    """`name-<version>.dist-info` of an installed package, found without importing it."""
    for entry in sys.path:
        if entry and os.path.isdir(os.path.join(entry, name)):
            try:
                found = sorted(
                    n
                    for n in os.listdir(entry)
                    if n.startswith(name + "-") and n.endswith(".dist-info")
                )
            except OSError:
                found = []
            return f"{entry}:{','.join(found)}"
    return "-"


@functools.lru_cache(maxsize=1)
def environment() -> tuple[str, ...]:
    """What every output depends on besides its own inputs."""
    return (
        f"format={FORMAT}",
        f"decoflow={__version__}",
        f"sources={source_digest()}",
        f"python={sys.version}",
        f"executable={sys.executable}",
        f"prefix={sys.prefix}",
        f"libcst={_distribution('libcst')}",
        f"pythonpath={os.environ.get('PYTHONPATH', '')}",
    )


# -- the Metaflow an expanded flow was evaluated with ---------------------------------------

#: sys.path of each interpreter that evaluated mutators, per process (None: unknown).
_INTERPRETER_PATHS: dict[str | None, tuple[str, ...] | None] = {}


def interpreter_path(python: str | None) -> tuple[str, ...] | None:
    """The module search path of the interpreter that evaluates mutators and configs:
    `--python` (asked once per process: one short process, and only when an expanded flow's
    entry is stored, right after a Metaflow child ran), else the running one's own. None
    when it cannot be told."""
    if python is None:
        return tuple(entry for entry in sys.path if entry)
    if python not in _INTERPRETER_PATHS:
        import subprocess

        try:
            done = subprocess.run(
                [python, "-c", "import sys; print('\\0'.join(sys.path))"],
                capture_output=True,
                timeout=60,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            _INTERPRETER_PATHS[python] = None
        else:
            found = os.fsdecode(done.stdout).rstrip("\n").split("\0")
            _INTERPRETER_PATHS[python] = tuple(entry for entry in found if entry)
    return _INTERPRETER_PATHS[python]


def record_metaflow(reads: Reads, python: str | None) -> None:
    """Make an expanded flow's entry depend on the Metaflow install that evaluated it.

    Looked up as Python would import it, on the interpreter's search path: every
    `<entry>/metaflow` up to the one that holds the package (a probe: a Metaflow appearing
    earlier shadows it), that folder's `version.py`, and the `RECORD` of the
    `metaflow-<version>.dist-info` beside it (files: pip rewrites RECORD, whose folder's
    name carries the version, on every install). An upgrade, a reinstall that changes a
    file, an uninstall or a shadowing install then misses, while a hit only re-hashes two
    small files: it neither starts a process nor imports Metaflow. Extensions change what
    Metaflow does too: every `<entry>/metaflow_extensions` is probed, and the files of one
    that exists are recorded. When the install cannot be found, or is editable (its files
    change without a reinstall), the entry is not stored at all."""
    path = interpreter_path(python)
    holder = None
    for entry in path or ():
        package = Path(entry, "metaflow")
        kind = path_kind(package)
        reads.probes[package] = kind
        if kind == "dir":
            holder = entry
            version = package / "version.py"
            _record_file(reads, version if path_kind(version) else package / "__init__.py")
            break
    _record_extensions(reads, path or ())
    records = [
        Path(entry, name, "RECORD")
        for entry in ([holder] if holder else path or ())
        for name in _listdir(entry)
        if name.startswith("metaflow-") and name.endswith(".dist-info")
    ]
    if records and not _editable(records[0].parent):
        _record_file(reads, records[0])
    else:  # nothing says which Metaflow this was, or its files may change: no entry
        reads.files[Path(f"<the Metaflow of {python or sys.executable}>")] = None


def _editable(dist_info: Path) -> bool:
    """An editable install (`pip install -e`): its direct_url.json says so (PEP 610)."""
    import json

    try:
        data = json.loads((dist_info / "direct_url.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    info = data.get("dir_info") if isinstance(data, dict) else None
    return isinstance(info, dict) and info.get("editable") is True


def _record_extensions(reads: Reads, path: Sequence[str]) -> None:
    """Metaflow extension packages (`metaflow_extensions` on the search path: decorators,
    configs and plugins that change what an expansion finds): each place is probed, and
    the files of one that exists are recorded."""
    for entry in path:
        extensions = Path(entry, "metaflow_extensions")
        kind = path_kind(extensions)
        reads.probes[extensions] = kind
        if kind == "dir":
            for found in sorted(extensions.rglob("*")):
                if found.suffix == ".py" and found.is_file():
                    _record_file(reads, found)


def _listdir(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


def _record_file(reads: Reads, path: Path) -> None:
    if path not in reads.files:
        try:
            st = os.stat(path)
            reads.files[path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            reads.files[path] = None


# -- entries ----------------------------------------------------------------------------


@frozen
class Lookup:
    """One flow looked up: where its entry goes, the digest of its bytes, and the stored
    output when the entry matched (None: compile it, then `Cache.store`), with the warnings
    its compile printed (printed again on a hit)."""

    slot: str
    flow_digest: str
    output: bytes | None
    warnings: tuple[str, ...] = ()


def _encode(meta: Sequence[str], output: bytes) -> bytes:
    """An entry: the magic line, a checksum of the rest, the metadata's length, the metadata
    (fields separated by NUL, which no path contains), the output."""
    fields = b"\0".join(os.fsencode(field) for field in meta)
    payload = b"%d\n" % len(fields) + fields + output
    return MAGIC + digest(payload).encode("ascii") + b"\n" + payload


def _decode(blob: bytes) -> tuple[list[str], bytes] | None:
    """The entry's metadata fields and output, or None when it is not a whole entry of this
    format."""
    if not blob.startswith(MAGIC):
        return None
    check, newline, payload = blob[len(MAGIC) :].partition(b"\n")
    if not newline or check != digest(payload).encode("ascii"):
        return None
    length, newline, rest = payload.partition(b"\n")
    if not newline or not length.isdigit() or int(length) > len(rest):
        return None
    size = int(length)
    return [os.fsdecode(field) for field in rest[:size].split(b"\0")], rest[size:]


@frozen
class _Entry:
    """One cache entry's fields: what the output depends on (its bytes are stored beside)."""

    slot: str
    flow: str
    files: list[tuple[str, str]]  # (path, digest)
    warnings: list[str]  # formatted, as printed
    probes: list[tuple[str, str | None]]  # (path, kind)

    def fields(self) -> list[str]:
        """slot, flow digest, the number of files and of warnings, (path, digest) per file,
        the warnings, (path, kind) per probe."""
        out = [self.slot, self.flow, str(len(self.files)), str(len(self.warnings))]
        for path, file_digest in self.files:
            out += [path, file_digest]
        out += self.warnings
        for path, kind in self.probes:
            out += [path, kind or "-"]
        return out

    @classmethod
    def from_fields(cls, fields: list[str]) -> _Entry | None:
        """The inverse of `fields`; None when the fields do not have its shape."""
        if len(fields) < 4 or not fields[2].isdigit() or not fields[3].isdigit():
            return None
        n_files, n_warnings = int(fields[2]), int(fields[3])
        files = fields[4 : 4 + 2 * n_files]
        warnings = fields[4 + 2 * n_files : 4 + 2 * n_files + n_warnings]
        probes = fields[4 + 2 * n_files + n_warnings :]
        if len(files) != 2 * n_files or len(warnings) != n_warnings or len(probes) % 2:
            return None
        return cls(
            fields[0],
            fields[1],
            list(zip(files[0::2], files[1::2])),
            warnings,
            [
                (path, None if kind == "-" else kind)
                for path, kind in zip(probes[0::2], probes[1::2])
            ],
        )


class Cache:
    """The cache folder of one project (or `$DECOFLOW_CACHE_DIR`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.entries = folder / __version__
        self.problem: str | None = None  # why writing failed (writing then stops)
        self._digests: dict[str, str | None] = {}  # per process: flows share their modules
        self._kinds: dict[str, str | None] = {}
        self._prepared = False
        self._now = time.time()

    # reading

    def _file_digest(self, path: str) -> str | None:
        """The digest of a file's bytes (once per process), None when it cannot be read."""
        if path not in self._digests:
            try:
                with open(path, "rb") as handle:
                    self._digests[path] = digest(handle.read())
            except (OSError, ValueError):
                self._digests[path] = None
        return self._digests[path]

    def _kind(self, path: str) -> str | None:
        """`path_kind` of a path (once per process: flows share their lookups)."""
        if path not in self._kinds:
            self._kinds[path] = path_kind(path)
        return self._kinds[path]

    def slot(self, source: Path, options: object, extra: Sequence[str] = ()) -> str:
        """The name of a flow's entry: its path, the options, decoflow's environment."""
        parts = (*environment(), f"flow={source}", f"options={options!r}", *extra)
        return digest("\0".join(parts).encode("utf-8", errors="surrogateescape"))

    def lookup(self, source: Path, options: object, extra: Sequence[str] = ()) -> Lookup | None:
        """Look a flow file up; None when it cannot be read (the compile will say why)."""
        try:
            with open(source, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        flow_digest = self._digests[str(source)] = digest(data)
        slot = self.slot(source, options, extra)
        found = self._read(slot, flow_digest)
        if found is None:
            return Lookup(slot, flow_digest, None)
        return Lookup(slot, flow_digest, *found)

    def _read(self, slot: str, flow_digest: str) -> tuple[bytes, tuple[str, ...]] | None:
        path = self.entries / slot
        try:
            with open(path, "rb") as handle:
                used = os.fstat(handle.fileno()).st_mtime
                blob = handle.read()
        except (OSError, ValueError):
            return None
        found = self._match(blob, slot, flow_digest)
        if found is not None and self._now - used > TOUCH_AFTER:
            try:  # mark it used (pruning removes the entries unused longest)
                os.utime(path)
            except OSError:
                pass
        return found

    def _match(
        self, blob: bytes, slot: str, flow_digest: str
    ) -> tuple[bytes, tuple[str, ...]] | None:
        decoded = _decode(blob)
        entry = _Entry.from_fields(decoded[0]) if decoded is not None else None
        if decoded is None or entry is None:  # damaged or foreign: ignored, rebuilt
            return None
        if entry.slot != slot or entry.flow != flow_digest:
            return None
        if any(self._file_digest(path) != file_digest for path, file_digest in entry.files):
            return None
        if any(self._kind(path) != kind for path, kind in entry.probes):
            return None
        return decoded[1], tuple(entry.warnings)

    # writing

    def store(
        self, lookup: Lookup, output: bytes, reads: Reads, warnings: Sequence[str] = ()
    ) -> None:
        """Keep `output` (and the `warnings` its compile printed) for the flow of `lookup`,
        unless a file it read changed meanwhile."""
        if self.problem is not None or any("\0" in line for line in warnings):
            return
        files = _unchanged_digests(reads.files.items())
        if files is None:
            return
        probes = [(str(path), kind) for path, kind in reads.probes.items()]
        if any(path_kind(path) != kind for path, kind in probes):
            return
        entry = _Entry(lookup.slot, lookup.flow_digest, files, list(warnings), probes)
        try:
            self._prepare()
            write_atomic(self.entries / lookup.slot, _encode(entry.fields(), output))
        except OSError as err:
            self.problem = f"{self.folder}: {err.strerror or err}"

    def _prepare(self) -> None:
        """Create the folder, with its .gitignore and CACHEDIR.TAG, once per process."""
        if self._prepared:
            return
        self.entries.mkdir(parents=True, exist_ok=True)
        for name, text in ((".gitignore", GITIGNORE), ("CACHEDIR.TAG", CACHEDIR_TAG)):
            if not (self.folder / name).exists():
                write_atomic(self.folder / name, text.encode("ascii"))
        self._prepared = True
        prune_if_due(self.folder, self._now)  # only a run that writes adds to the cache


def _unchanged_digests(
    files: Iterable[tuple[Path, tuple[int, int] | None]],
) -> list[tuple[str, str]] | None:
    """(path, digest) of each file read, or None when any changed since it was read (its
    size or modification time moved, before or while it is hashed) or cannot be read."""
    out = []
    for path, before in files:
        if before is None:
            return None
        try:
            with open(path, "rb") as handle:
                st = os.fstat(handle.fileno())
                data = handle.read()
            after = os.stat(path)
        except OSError:
            return None
        if (st.st_size, st.st_mtime_ns) != before or (after.st_size, after.st_mtime_ns) != before:
            return None
        out.append((str(path), digest(data)))
    return out


# -- pruning ----------------------------------------------------------------------------

#: Entries not used (written or hit) for this long are removed...
MAX_AGE = 30 * 86400.0
#: ...then the least recently used ones while the entries take more than this.
MAX_BYTES = 256 * 2**20
#: A hit marks its entry as used (its modification time) when the mark is older than this.
TOUCH_AFTER = 86400.0
#: Pruning runs at most this often per cache folder (a run that writes an entry checks).
PRUNE_EVERY = 86400.0
#: A temporary file this old was left by a killed process (a live write takes moments).
STRAY_AFTER = 3600.0
PRUNED = "last-pruned"


def prune_if_due(folder: Path, now: float | None = None) -> None:
    """Prune `folder` when it was last pruned more than `PRUNE_EVERY` ago (one stat);
    `PRUNED` is marked first, so that processes running at once do not all scan."""
    now = time.time() if now is None else now
    marker = folder / PRUNED
    try:
        if now - os.stat(marker).st_mtime < PRUNE_EVERY:
            return
    except OSError:
        pass
    try:
        write_atomic(marker, b"")
    except OSError:
        return
    prune(folder, now)


def prune(folder: Path, now: float | None = None) -> int:
    """Remove the entries of every decoflow version not used for `MAX_AGE`, then the least
    recently used while all of them take more than `MAX_BYTES`, temporary files older than
    `STRAY_AFTER`, and version folders left empty; return how many files went.

    Safe while other decoflow processes use the cache: an entry removed as another process
    reads it is a miss there (or already read: files are replaced, never rewritten in
    place); an entry written as it is pruned is whole or absent; a temporary file still
    being written is minutes younger than `STRAY_AFTER`. Errors only leave files behind."""
    import stat

    now = time.time() if now is None else now
    kept: list[tuple[float, int, str]] = []  # (last used, size, path)
    removed = 0
    for version in _scan(str(folder)):
        if not version.is_dir(follow_symlinks=False):
            continue
        for item in _scan(version.path):
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            age = now - st.st_mtime
            if item.name.endswith(".decoflow-tmp"):
                removed += age > STRAY_AFTER and _unlink(item.path)
            elif age > MAX_AGE:
                removed += _unlink(item.path)
            else:
                kept.append((st.st_mtime, st.st_size, item.path))
        if version.name != __version__:
            try:
                os.rmdir(version.path)  # only when empty
            except OSError:
                pass
    total = sum(size for _, size, _ in kept)
    for _, size, path in sorted(kept):  # the least recently used first
        if total <= MAX_BYTES:
            break
        removed += _unlink(path)
        total -= size
    return removed


def _scan(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as found:
            return list(found)
    except OSError:
        return []


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


# -- clearing ---------------------------------------------------------------------------


def is_cache_folder(folder: Path) -> bool:
    """Whether `folder` is a decoflow cache (so that `clean` never removes anything else)."""
    try:
        tag = (folder / "CACHEDIR.TAG").read_text(encoding="ascii", errors="replace")
    except OSError:
        return folder.name == DIR_NAME and folder.is_dir()
    return "created by decoflow" in tag


def clear(folder: Path) -> bool:
    """Remove the cache folder; False when there was none."""
    import shutil

    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True
