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

The second half brings outputs up to date: `compile_tasks` compiles many flows (in
parallel processes when there are several) and turns every failure into data;
`write_atomic` writes through a temporary file and a rename; `unified_diff` shows a change.
The command line (`decoflow.cli`) decides what to do with them.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from decoflow.transformer.support.records import frozen

from .transformer.support.paths import PYPROJECT, absolute, find_root, interpreter_path

SECTION = "decoflow"
KNOWN_KEYS = (
    "flows", "exclude", "out-dir", "with", "python", "expansion-timeout", "config", "config-value"
)


class ConfigError(Exception):
    """The configuration is missing, unreadable or malformed; the message says which and where."""


@frozen
class ProjectConfig:
    """What `[tool.decoflow]` says, plus where it was found.

    root: the project root (folder of pyproject.toml or .git); config paths are relative to it.
    pyproject: the pyproject.toml read, or None when the root has none.
    flows: the `flows` globs, as written.
    exclude: the `exclude` globs, as written: files they match are not flows.
    out_dir: the `out-dir` value as written, or None.
    with_specs: the `with` specs, in order.
    """

    root: Path
    pyproject: Path | None = None
    flows: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    out_dir: str | None = None
    with_specs: tuple[str, ...] = ()
    python: str | None = None
    expansion_timeout: float | None = None
    configs: tuple[tuple[str, str, str], ...] = ()  # (flow path, NAME, FILE), both absolute
    config_values: tuple[tuple[str, str, str], ...] = ()  # (flow path, NAME, JSON)

    def configs_for(self, flow: Path) -> tuple[tuple, tuple]:
        """(--config pairs, --config-value pairs) configured for one flow file."""
        key = str(absolute(flow))
        return (
            tuple((n, f) for p, n, f in self.configs if p == key),
            tuple((n, v) for p, n, v in self.config_values if p == key),
        )

    @property
    def configured(self) -> bool:
        """Whether any flows are configured."""
        return bool(self.flows)

    def out_path(self) -> Path | None:
        """`out-dir` as an absolute path, or None when not configured."""
        if self.out_dir is None:
            return None
        return absolute(self.root / self.out_dir)


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
    exclude = _string_list(section.get("exclude", []), "exclude", pyproject)
    out_dir = section.get("out-dir")
    if out_dir is not None and (not isinstance(out_dir, str) or not out_dir.strip()):
        raise ConfigError(f"{pyproject}: [tool.decoflow] `out-dir` must be a non-empty string")
    with_specs = _string_list(section.get("with", []), "with", pyproject)
    python = section.get("python")
    if python is not None and (not isinstance(python, str) or not python.strip()):
        raise ConfigError(f"{pyproject}: [tool.decoflow] `python` must be a non-empty string")
    if python is not None and ("/" in python or python.startswith(".")):
        python = str(interpreter_path(root / python))
    timeout = section.get("expansion-timeout")
    number = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    if timeout is not None and (not number or timeout <= 0):
        raise ConfigError(
            f"{pyproject}: [tool.decoflow] `expansion-timeout` must be a positive number"
        )
    configs = _per_flow(section.get("config", {}), "config", pyproject, root, files=True)
    values = _per_flow(
        section.get("config-value", {}), "config-value", pyproject, root, files=False
    )
    return ProjectConfig(
        root=root, pyproject=pyproject, flows=flows, exclude=exclude, out_dir=out_dir,
        with_specs=with_specs, python=python,
        expansion_timeout=None if timeout is None else float(timeout),
        configs=configs, config_values=values,
    )


def _per_flow(table: Any, key: str, where: Path, root: Path, files: bool) -> tuple:
    """`[tool.decoflow.config."flows/a.py"] NAME = "file.json"` (files relative to the root),
    `[tool.decoflow.config-value."flows/a.py"] NAME = '{...}'` (JSON text, or a table)."""
    import json

    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [tool.decoflow] `{key}` must be a table of flow paths")
    out = []
    for flow, names in table.items():
        if not isinstance(names, dict):
            raise ConfigError(
                f"{where}: [tool.decoflow.{key}] {flow!r} must be a table NAME = value"
            )
        if not (root / flow).is_file():  # a misspelt path would be ignored without a word
            raise ConfigError(f"{where}: [tool.decoflow.{key}] {flow!r} names no file")
        path = str(absolute(root / flow))
        for name, value in names.items():
            if files:
                if not isinstance(value, str):
                    raise ConfigError(
                        f"{where}: [tool.decoflow.{key}] {flow!r}: {name} must be a file path"
                    )
                value = str(absolute(root / value))
            elif not isinstance(value, str):
                value = json.dumps(value)
            out.append((path, str(name), value))
    return tuple(out)


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
    an `exclude` glob matches (decorator modules beside the flows, say) and files below the
    output folder are never flows (a compiled flow must not be compiled again).
    """
    out_dir = config.out_path()
    excluded = {m for pattern in config.exclude for m in _matches(config, pattern, "exclude")}
    found: set[Path] = set()
    warnings: list[str] = []
    for pattern in config.flows:
        matches = [
            m
            for m in _matches(config, pattern, "flows")
            if (out_dir is None or not _is_below(m, out_dir)) and m not in excluded
        ]
        if not matches:
            warnings.append(f"{config.pyproject}: flows pattern {pattern!r} matched no files")
        found.update(matches)
    return sorted(found, key=lambda p: p.as_posix()), warnings


def _matches(config: ProjectConfig, pattern: str, key: str) -> list[Path]:
    """The files a glob of `key` matches below the project root."""
    if os.path.isabs(pattern):
        raise ConfigError(
            f"{config.pyproject}: [tool.decoflow] {key} pattern {pattern!r} must be "
            "relative to the folder of pyproject.toml"
        )
    return [
        absolute(match)
        for match in glob.glob(os.path.join(glob.escape(str(config.root)), pattern), recursive=True)
        if os.path.isfile(match)
    ]


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


# -- compiling many files and bringing outputs up to date -----------------------------------


@frozen
class Task:
    """One compile: a flow file (or its text, when read from stdin) and its options."""

    path: Path
    options: Any  # CompileOptions; typed loosely so that this module imports nothing heavy
    text: str | None = None


@frozen
class Outcome:
    """The result of a `Task`: the compiled code, or diagnostics, or an internal error; and
    what the compile read (`Reads`: for the cache of outputs)."""

    code: str | None = None
    diagnostics: tuple[Any, ...] = ()
    internal_error: str | None = None
    warnings: tuple[Any, ...] = ()  # Diagnostics of the compile's CompileWarnings (DF6xx)
    reads: Any = None  # Reads: what the compile read (for the cache)
    deferred: Any = None  # (FlowRequest, CompileOptions): needs expansion, batched (issue 12)

    @property
    def ok(self) -> bool:
        return self.code is not None


def describe_exception(err: BaseException) -> str:
    """`Type: message` on one line."""
    message = " ".join(str(err).split())
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def compile_task(task: Task) -> Outcome:
    """Compile one task, turning every failure into data (safe to run in a worker process).

    `CompileError` becomes its diagnostics; any other exception is a bug in decoflow and
    becomes `internal_error`. (Exceptions are not returned as such: `CompileError` does not
    survive pickling with its diagnostics.)
    """
    import warnings

    from .transformer import CompileError, CompileWarning, Reads
    from .transformer.passes.expand import NeedsExpansion

    reads = Reads()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CompileWarning)
        try:
            if task.text is None:
                from .transformer import compile_file

                code = compile_file(task.path, task.options, reads)
            else:
                from .transformer import compile_source

                code = compile_source(task.text, task.path, task.options, reads)
        except CompileError as err:
            return Outcome(diagnostics=tuple(err.diagnostics))
        except NeedsExpansion as need:
            return Outcome(deferred=(need.request, need.options))
        except Exception as err:  # noqa: BLE001 - reported as an internal error, never a traceback
            return Outcome(internal_error=describe_exception(err))
    found = tuple(w.message.diagnostic for w in caught if isinstance(w.message, CompileWarning))
    return Outcome(code=code, warnings=found, reads=reads)


def _compile_chunk(tasks: Sequence[Task]) -> list[Outcome]:
    return [compile_task(task) for task in tasks]


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: end the worker when the process that started it is gone. A batch
    killed outright (SIGKILL) would otherwise leave its workers waiting for work forever."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="decoflow-parent-watch", daemon=True).start()


def compile_tasks(tasks: Sequence[Task], jobs: int | None = None) -> list[Outcome]:
    """Compile every task; in parallel processes when there are several, results in task order.

    Flows that need Metaflow to evaluate their mutators and configs (issue 12) are set aside
    during the first round, then expanded together in ONE child process, then compiled; what
    they read then includes the Metaflow install that evaluated them (`cache.record_metaflow`:
    its entry in the cache depends on it). A single flow takes the same path, so that its
    expansion is known too.
    """
    _start_child_ahead(tasks)
    from .transformer.passes.expand import obtain

    # Expansions are kept for one batch only: a later batch in the same process (an API
    # caller, the tests) must see edited configs and mutators, and be known to expand.
    obtain.forget()
    try:
        return _compile_expanding(tasks, jobs)
    finally:
        obtain.forget()
        if "decoflow.transformer.expansion.runner" in sys.modules:
            from .transformer.expansion.runner import discard_spare

            discard_spare()  # started ahead for nothing: the real detection said no


#: Words without which a flow cannot need expansion (what `passes/expand/detect.py` looks
#: for); a UserStepDecorator counts only beside a `mutate`/`pre_mutate` (a dual class).
_MAY_EXPAND = re.compile(rb"\b(?:FlowMutator|StepMutator|Config|config_expr)\b")
_DUAL = re.compile(rb"\bUserStepDecorator\b")
_MUTATE = re.compile(rb"\bdef\s+(?:pre_)?mutate\b")
_LOCAL_IMPORT = re.compile(rb"^[ \t]*(?:from[ \t]+\.?|import[ \t]+)([A-Za-z_]\w*)", re.M)


def may_need_expansion(path: Path, text: str | None = None) -> bool:
    """A cheap textual guess (no parsing) whether a flow needs Metaflow to evaluate it: one of
    the words of mutators and configs in the flow or in a module beside it that it imports.
    Only used to start the Metaflow child early; `passes/expand/detect.py` decides."""
    try:
        data = path.read_bytes() if text is None else text.encode("utf-8", "replace")
    except OSError:
        return False
    texts = [data]
    for name in dict.fromkeys(_LOCAL_IMPORT.findall(data)):
        local = name.decode()
        for candidate in (path.parent / f"{local}.py", path.parent / local / "__init__.py"):
            try:
                texts.append(candidate.read_bytes())
            except OSError:
                continue
            break
    return any(
        _MAY_EXPAND.search(t) or (_DUAL.search(t) and _MUTATE.search(t)) for t in texts
    )


def _start_child_ahead(tasks: Sequence[Task]) -> None:
    """When a flow of the batch looks like it needs expansion, start the Metaflow child now:
    it imports Metaflow (~0.7 s) while this process imports libcst and compiles."""
    if os.environ.get("DECOFLOW_NO_PRESTART"):
        return
    for task in tasks:
        if may_need_expansion(task.path, task.text):
            from .transformer.expansion.interpreter import choose_python
            from .transformer.expansion.runner import prestart

            python, _ = choose_python(task.options.python)
            if python:
                prestart(python)
            return


def _compile_expanding(tasks: Sequence[Task], jobs: int | None) -> list[Outcome]:
    from .transformer.passes import expand

    expand.DEFER = True
    try:
        outcomes = _compile_tasks(tasks, jobs)
    finally:
        expand.DEFER = False
    deferred = [i for i, outcome in enumerate(outcomes) if outcome.deferred is not None]
    if not deferred:
        return outcomes
    from .transformer.support.paths import display_path, find_root

    first = outcomes[deferred[0]].deferred[1]

    def display(path: Path) -> str:
        root = (first.project_root or find_root(path.parent)).resolve()
        return display_path(path, root)

    expand.preload([outcomes[i].deferred for i in deferred], display)
    from .cache import record_metaflow

    for i in deferred:
        outcomes[i] = compile_task(tasks[i])
        if outcomes[i].reads is not None:
            record_metaflow(outcomes[i].reads, tasks[i].options.python)
    return outcomes


def _compile_tasks(tasks: Sequence[Task], jobs: int | None = None) -> list[Outcome]:
    """Compile every task; in parallel processes when there are several, results in task order.

    `jobs` caps the number of processes (default: the number of CPUs). The first file is
    compiled here, before the worker processes start: where processes are forked, each of
    them begins with the compiler imported and the decorator modules that file uses parsed
    and analysed (a batch of flows sharing decorators parses each of them once). The rest go
    to the workers in chunks, a few per worker, to keep the traffic between processes low.
    """
    workers = min(len(tasks), jobs or os.cpu_count() or 1)
    if workers <= 1:
        return _compile_chunk(tasks)
    outcomes = [compile_task(tasks[0])]
    rest = list(tasks[1:])

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    size = max(1, len(rest) // (workers * 4))
    chunks = [rest[i : i + size] for i in range(0, len(rest), size)]
    methods = multiprocessing.get_all_start_methods()
    context = (
        multiprocessing.get_context("fork")
        if "fork" in methods and sys.platform != "darwin"
        else None
    )
    try:
        executor = ProcessPoolExecutor(
            max_workers=min(workers, len(chunks)),
            mp_context=context,
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
    except (OSError, NotImplementedError, ImportError):  # no process support: compile here
        return outcomes + _compile_chunk(rest)
    with executor:
        futures = [executor.submit(_compile_chunk, chunk) for chunk in chunks]
        for future, chunk in zip(futures, chunks):
            try:
                outcomes.extend(future.result())
            except BrokenProcessPool as err:
                outcomes.extend(
                    Outcome(internal_error=describe_exception(err) or "worker died") for _ in chunk
                )
            except Exception as err:  # noqa: BLE001 - e.g. an unpicklable result
                outcomes.extend(Outcome(internal_error=describe_exception(err)) for _ in chunk)
    return outcomes


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_bytes_or_none(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a temporary file in the same folder, then a rename.

    A process killed at any point leaves the old content or the new, never a partial file
    (the rename is atomic). Like black, the data is not fsync'ed: that would guard against a
    machine crash, not an interrupted run, and would cost a disk flush per file of a batch.
    An existing file keeps its permission bits; a new one gets the usual ones (0666 less the
    umask).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.decoflow-tmp"
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def unified_diff(old: bytes | None, new: bytes, label: str) -> str:
    """A unified diff (`--- a/<label>`, `+++ b/<label>`) from `old` (None: missing) to `new`.

    Undecodable bytes survive as surrogate escapes: encode the result with
    `errors="surrogateescape"`.
    """
    import difflib

    def lines(data: bytes) -> list[str]:
        return data.decode("utf-8", errors="surrogateescape").splitlines(keepends=True)

    fromfile = "/dev/null" if old is None else f"a/{label}"
    diff = difflib.unified_diff(lines(old or b""), lines(new), fromfile, f"b/{label}")
    out = []
    for line in diff:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)
