"""Differential harness: run flows on real Metaflow and compare what they did.

A run happens in a subprocess of a chosen Python interpreter (so a flow can be run on
Metaflow 2.19 and on an older Metaflow in another virtual environment), with the local
datastore and local metadata in a private temporary folder:

    USERNAME=tester METAFLOW_DEFAULT_DATASTORE=local METAFLOW_DEFAULT_METADATA=local \
    METAFLOW_DATASTORE_SYSROOT_LOCAL=<tmp> PYTHONPATH=<flow folder> \
    python FLOW.py --no-pylint run --max-workers N          # cwd = the flow's folder (N=2)

The results are then read back with the Client API, again in a subprocess of the same
interpreter and environment, and turned into plain JSON-able data: for every task its
success, the lines it printed and its artifacts in a canonical form. `assert_same`
compares two such outcomes and raises an `AssertionError` with a readable report.

Metaflow names source lines in some messages (`line 40: Condition variable ...`, the
`str()` of a bad `self.next`). A compiled flow has other line numbers by construction, so
`source_line_map` maps each compiled line back to the original line holding the same code,
and the comparison (`compiled_lines=`) reads the compiled run's messages through that map: a
line it cannot map is a real difference.

Public API: `TaskOutcome`, `RunOutcome`, `run_flow`, `assert_same` (and `diff_outcomes`),
`source_line_map`, `map_source_lines`, `flow_class_name`, `flow_env`, `read_results`,
`old_python`, `metaflow_version`.
"""

from __future__ import annotations

import ast
import difflib
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent

#: How long a single flow run (or the results reader) may take before it is killed.
RUN_TIMEOUT_S = 300

#: A task is identified by its step name and the indices of the foreach splits above it,
#: so that the tasks of two runs line up whatever task ids Metaflow handed out.
TaskKey = tuple[str, tuple[int, ...]]

#: Maps a printed line to its comparable form; returning None drops the line.
LineNormalizer = Callable[[str], Optional[str]]


class HarnessError(RuntimeError):
    """The harness itself could not do its job (not a difference between two runs)."""


@dataclass(frozen=True)
class TaskOutcome:
    """What one task did, as seen through the Client API.

    `artifacts` maps each artifact name (without `_`-prefixed ones and `name`) to its
    canonical JSON-able value (see `_READER` for the encoding). `error` is the last
    exception line (`Type: message`, type without its module) found in the task's stderr
    when the task failed, else None.
    """

    step: str
    foreach_indices: tuple[int, ...]
    pathspec: str
    successful: bool
    stdout: tuple[str, ...]
    artifacts: Mapping[str, Any]
    error: str | None = None

    @property
    def key(self) -> TaskKey:
        """The task's identity across runs: (step name, foreach indices)."""
        return (self.step, self.foreach_indices)


@dataclass(frozen=True)
class RunOutcome:
    """What one `python FLOW.py run` did: exit code, console, and every task's outcome.

    `run_found` is False when no run was recorded at all (e.g. the flow failed to import
    or its graph was rejected); `tasks` is then empty.
    """

    flow_file: Path
    flow_name: str
    python: str
    returncode: int
    console: str
    run_found: bool
    tasks: Mapping[TaskKey, TaskOutcome] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """True when the `run` command exited with status 0."""
        return self.returncode == 0

    def task(self, step: str, *indices: int) -> TaskOutcome:
        """The task of `step` at the given foreach indices (KeyError if absent)."""
        return self.tasks[(step, tuple(indices))]

    def describe(self) -> str:
        """A one-line summary used in reports."""
        state = "succeeded" if self.succeeded else f"FAILED (exit {self.returncode})"
        return f"{self.flow_file} on {self.python}: {state}, {len(self.tasks)} task(s)"


# --------------------------------------------------------------------------------------
# Finding the flow class without importing the flow


def flow_class_name(flow_file: Path | str) -> str:
    """The name of the FlowSpec subclass defined in `flow_file`, found by parsing it.

    A class counts when one of its bases is `FlowSpec` (`FlowSpec`, `metaflow.FlowSpec`,
    `mf.FlowSpec`, ...) or another class of the file that counts. When several count, the
    one instantiated in the file (`MyFlow()` in the `__main__` block) wins, else the last.
    """
    # bytes: Python applies the file's own encoding (cookie or BOM), as when it runs it
    tree = ast.parse(Path(flow_file).read_bytes(), filename=str(flow_file))
    classes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    flows: list[str] = []
    changed = True
    while changed:
        changed = False
        for cls in classes:
            if cls.name in flows:
                continue
            for base in cls.bases:
                base_name = (
                    base.id
                    if isinstance(base, ast.Name)
                    else base.attr
                    if isinstance(base, ast.Attribute)
                    else None
                )
                if base_name == "FlowSpec" or (base_name in flows and base_name != cls.name):
                    flows.append(cls.name)
                    changed = True
                    break
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    if not flows:  # a flow based on a class from another module: the one instantiated
        flows = [cls.name for cls in classes if cls.bases and cls.name in called]
    if not flows:
        raise HarnessError(f"{flow_file}: no class deriving from FlowSpec found")
    instantiated = [name for name in flows if name in called]
    return (instantiated or flows)[-1]


# --------------------------------------------------------------------------------------
# Interpreters


@functools.cache
def metaflow_version(python: str) -> str:
    """The Metaflow version importable by `python` (HarnessError if there is none)."""
    proc = subprocess.run(
        [python, "-c", "import metaflow; print(metaflow.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
    )
    if proc.returncode != 0:
        raise HarnessError(f"{python} cannot import metaflow:\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


def old_python() -> str:
    """The interpreter with the old Metaflow (2.15.x) that compiled flows must also run on.

    `$DECOFLOW_OLD_PYTHON`, else `<repo>/.venv-mf215/bin/python`. Raises AssertionError
    (so a test using it fails, never skips) when it is missing or has no Metaflow.
    """
    configured = os.environ.get("DECOFLOW_OLD_PYTHON")
    python = configured or str(REPO_ROOT / ".venv-mf215" / "bin" / "python")
    origin = "$DECOFLOW_OLD_PYTHON" if configured else "the default location"
    if not Path(python).exists():
        raise AssertionError(
            f"old-Metaflow interpreter not found at {python} ({origin}). "
            "Run `make venv-old` to create .venv-mf215 with metaflow==2.15.21, "
            "or point DECOFLOW_OLD_PYTHON at a python that has it."
        )
    try:
        version = metaflow_version(python)
    except HarnessError as err:
        raise AssertionError(
            f"{err}\nRun `make venv-old` (or fix DECOFLOW_OLD_PYTHON) to get metaflow==2.15.21."
        ) from None
    if not version.startswith("2.15."):
        raise AssertionError(
            f"{python} ({origin}) has Metaflow {version}, expected 2.15.x; run `make venv-old`."
        )
    return python


# --------------------------------------------------------------------------------------
# Running a flow and reading its results


def _clean_env() -> dict[str, str]:
    """The current environment without anything that could redirect Metaflow or Python."""
    drop_prefixes = ("METAFLOW_", "PYTHON", "VIRTUAL_ENV", "__PYVENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes)}


def flow_env(flow_dir: Path, sysroot: Path) -> dict[str, str]:
    """The environment a flow (and its results reader) runs with."""
    env = _clean_env()
    env.update(
        USERNAME="tester",
        METAFLOW_DEFAULT_DATASTORE="local",
        METAFLOW_DEFAULT_METADATA="local",
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(sysroot),
        # An empty Metaflow home: no user configuration or profile can leak in.
        METAFLOW_HOME=str(sysroot / "mfhome"),
        PYTHONPATH=str(flow_dir),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONIOENCODING="utf-8",
        PYTHONHASHSEED="0",
    )
    return env


def run_flow(
    flow_file: Path | str,
    *,
    python: str,
    workdir: Path | str,
    extra_args: Sequence[str] = (),
    sysroot: Path | str | None = None,
    pythonpath: Sequence[Path | str] = (),
    max_workers: int = 2,
    top_args: Sequence[str] = (),
) -> RunOutcome:
    """Run `flow_file` with `python` and read back every task through the Client API.

    The datastore and metadata live in a fresh folder under `workdir`, or in `sysroot` when
    given (so consecutive runs can see each other, e.g. for memoization). `extra_args` are
    added after `run --max-workers N` (e.g. `("--with", "mod.deco")`); one worker runs the
    tasks one after the other, so which ran before a failure does not depend on timing.
    `top_args` go before `run` (Metaflow's top-level options: `--config NAME FILE`,
    `--config-value NAME JSON`).
    """
    flow_file = Path(flow_file).resolve()
    flow_dir = flow_file.parent
    flow_name = flow_class_name(flow_file)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    if sysroot is None:
        sysroot = Path(tempfile.mkdtemp(prefix="mfroot-", dir=workdir)).resolve()
    sysroot = Path(sysroot).resolve()
    (sysroot / "mfhome").mkdir(parents=True, exist_ok=True)
    env = flow_env(flow_dir, sysroot)
    if pythonpath:  # more folders to import from (decorator packages), after the flow's own
        more = (str(Path(p).resolve()) for p in pythonpath)
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], *more])
    cmd = [
        python, flow_file.name, "--no-pylint", *top_args,
        "run", "--max-workers", str(max_workers), *extra_args,
    ]
    try:
        proc = subprocess.run(
            cmd,
            cwd=flow_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as err:
        console = (err.output or b"").decode("utf-8", "replace")
        raise HarnessError(
            f"{' '.join(cmd)} timed out after {RUN_TIMEOUT_S}s\n{_tail(console)}"
        ) from None
    console = proc.stdout.decode("utf-8", "replace")
    run_found, tasks = read_results(python, flow_dir, env, flow_name)
    return RunOutcome(
        flow_file=flow_file,
        flow_name=flow_name,
        python=python,
        returncode=proc.returncode,
        console=console,
        run_found=run_found,
        tasks=tasks,
    )


# The results reader: runs in the flow's interpreter, writes JSON to argv[2].
# Canonical values:
#   None, bool, int, str, finite float  -> themselves
#   list                                -> JSON list (order kept)
#   tuple                               -> {"<tuple>": [...]}
#   dict and subclasses                 -> {"<dict>": type name, "items": [[k, v], ...]}
#                                          (sorted by key; OrderedDict keeps its order)
#   defaultdict                         -> same, plus "default": factory name
#   set / frozenset                     -> {"<set>"/"<frozenset>": sorted [...]}
#   namedtuple                          -> {"<namedtuple>": name, "fields": {...}}
#   bytes, non-finite float, type, enum -> tagged
#   other objects                       -> {"<object>": qualified class name (no module),
#                                           "state": canonical __dict__ / slots / repr}
#   unreadable artifact                 -> {"<unreadable>": exception type name}
_READER = r"""
import enum, json, math, re, sys, types
from collections import OrderedDict, defaultdict

flow_name, out_path = sys.argv[1], sys.argv[2]
_ADDR = re.compile(r" at 0x[0-9a-fA-F]+")


def _qual(obj):
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)


def _sort_key(value):
    return json.dumps(value, sort_keys=True)


def canon(value, seen=(), depth=0):
    if depth > 60:
        return {"<too-deep>": type(value).__name__}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return {"<enum>": type(value).__qualname__ + "." + value.name}
    if isinstance(value, int) and type(value) in (int, bool):
        return value
    if isinstance(value, float) and type(value) is float:
        return value if math.isfinite(value) else {"<float>": repr(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"<" + type(value).__name__ + ">": bytes(value).hex()}
    if isinstance(value, type):
        return {"<type>": _qual(value)}
    if id(value) in seen:
        return {"<cycle>": type(value).__name__}
    seen = seen + (id(value),)
    sub = lambda v: canon(v, seen, depth + 1)  # noqa: E731
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {"<namedtuple>": type(value).__qualname__,
                "fields": {f: sub(getattr(value, f)) for f in value._fields}}
    if type(value) is list:
        return [sub(v) for v in value]
    if type(value) is tuple:
        return {"<tuple>": [sub(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        tag = "<frozenset>" if isinstance(value, frozenset) else "<set>"
        return {tag: sorted((sub(v) for v in value), key=_sort_key)}
    if isinstance(value, dict):
        items = [[sub(k), sub(v)] for k, v in value.items()]
        if not isinstance(value, OrderedDict):
            items.sort(key=lambda kv: _sort_key(kv[0]))
        out = {"<dict>": type(value).__qualname__, "items": items}
        if isinstance(value, defaultdict):
            factory = value.default_factory
            out["default"] = None if factory is None else _qual(factory)
        return out
    if isinstance(value, (list, tuple)):
        return {"<" + type(value).__qualname__ + ">": [sub(v) for v in value]}
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return {"<callable>": _qual(value)}
    state = getattr(value, "__dict__", None)
    if isinstance(state, dict):
        return {"<object>": type(value).__qualname__, "state": sub(dict(state))}
    slots = [s for c in type(value).__mro__ for s in getattr(c, "__slots__", ())]
    if slots:
        return {"<object>": type(value).__qualname__,
                "state": sub({s: getattr(value, s) for s in slots if hasattr(value, s)})}
    return {"<object>": type(value).__qualname__, "repr": _ADDR.sub("", repr(value))}


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?:: (.*))?$")
_NOT_EXC = {"Traceback", "During", "The", "Task", "Internal"}


def last_error(stderr):
    found = None
    for line in stderr.splitlines():
        m = _EXC_LINE.match(line.rstrip())
        if not m or line.startswith((" ", "\t")):
            continue
        name = m.group(1)
        if name in _NOT_EXC or name.startswith("<"):
            continue
        if m.group(2) is None and not re.search(
            r"(Error|Exception|Exit|Interrupt|Iteration)$", name
        ):
            continue
        msg = m.group(2)
        found = name.rsplit(".", 1)[-1] + ("" if msg is None else ": " + msg)
    return found


def main():
    from metaflow import Flow, namespace
    from metaflow.exception import MetaflowNotFound

    namespace(None)
    try:
        run = Flow(flow_name).latest_run
    except MetaflowNotFound:
        run = None
    result = {"run_found": run is not None, "tasks": []}
    if run is not None:
        for step in run:
            for task in step:
                try:
                    stack = task["_foreach_stack"].data or []
                    indices = [int(frame.index) for frame in stack]
                except Exception:
                    indices = []
                artifacts = {}
                for art in task:
                    name = art.id
                    if name.startswith("_") or name == "name":
                        continue
                    try:
                        artifacts[name] = canon(art.data)
                    except Exception as err:
                        artifacts[name] = {"<unreadable>": type(err).__name__}
                stdout = task.stdout or ""
                successful = bool(task.successful)
                error = None if successful else last_error(task.stderr or "")
                result["tasks"].append({
                    "step": step.id,
                    "indices": indices,
                    "pathspec": task.pathspec,
                    "task_id": task.id,
                    "successful": successful,
                    "stdout": stdout.splitlines(),
                    "artifacts": artifacts,
                    "error": error,
                })
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


main()
"""


def read_results(
    python: str, flow_dir: Path, env: Mapping[str, str], flow_name: str
) -> tuple[bool, dict[TaskKey, TaskOutcome]]:
    """Read every task of the latest run of `flow_name` in a subprocess of `python`.

    `env` must point Metaflow at the run's datastore (see `flow_env`). Returns (whether a
    run was found, the tasks by key).
    """
    fd, name = tempfile.mkstemp(prefix="decoflow-results-", suffix=".json")
    os.close(fd)
    out_path = Path(name)
    try:
        return _read_results_into(python, flow_dir, env, flow_name, out_path)
    finally:
        out_path.unlink(missing_ok=True)


def _read_results_into(
    python: str, flow_dir: Path, env: Mapping[str, str], flow_name: str, out_path: Path
) -> tuple[bool, dict[TaskKey, TaskOutcome]]:
    try:
        proc = subprocess.run(
            [python, "-c", _READER, flow_name, str(out_path)],
            cwd=flow_dir,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise HarnessError(f"reading results of {flow_name} timed out") from None
    if proc.returncode != 0 or not out_path.stat().st_size:
        raise HarnessError(
            f"reading results of {flow_name} with {python} failed (exit {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    data = json.loads(out_path.read_text(encoding="utf-8"))
    raw = sorted(data["tasks"], key=lambda t: (t["step"], t["indices"], _int_or_str(t["task_id"])))
    tasks: dict[TaskKey, TaskOutcome] = {}
    for item in raw:
        step = item["step"]
        indices = tuple(item["indices"])
        # Two tasks with the same key (should not happen): keep both, distinguishable.
        n = 1
        while (step, indices) in tasks:
            n += 1
            step = f"{item['step']}#{n}"
        tasks[(step, indices)] = TaskOutcome(
            step=step,
            foreach_indices=indices,
            pathspec=item["pathspec"],
            successful=item["successful"],
            stdout=tuple(item["stdout"]),
            artifacts=item["artifacts"],
            error=item["error"],
        )
    return data["run_found"], tasks


def _int_or_str(value: str) -> tuple[int, Any]:
    return (0, int(value)) if str(value).isdigit() else (1, str(value))


# --------------------------------------------------------------------------------------
# Comparing two runs


def shape(value: Any) -> Any:
    """The shape of a canonical value: containers and keys kept, leaves replaced by types.

    Used for volatile artifacts such as timings: `{"wait": [12, 13]}` and `{"wait": [9, 8]}`
    have the same shape, `{"wait": [12]}` does not.
    """
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, dict):
        if "items" in value and "<dict>" in value:
            out = dict(value)
            out["items"] = [[k, shape(v)] for k, v in value["items"]]
            return out
        return {
            k: (v if k.startswith("<") and isinstance(v, str) else shape(v))
            for k, v in value.items()
        }
    return f"<{type(value).__name__}>"


def task_label(key: TaskKey) -> str:
    """`step` or `step[i,j]` for foreach tasks."""
    step, indices = key
    return f"{step}[{','.join(map(str, indices))}]" if indices else step


def _render(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _tail(text: str, lines: int = 40) -> str:
    body = text.rstrip().splitlines()
    cut = body[-lines:]
    prefix = [f"    ... ({len(body) - lines} earlier lines)"] if len(body) > lines else []
    return "\n".join(prefix + ["    " + line for line in cut])


#: How Metaflow names a source line: `str()` of a MetaflowException that has one
#: (`line 40: ...`), and its console headline (`... detected on line 40:`).
SOURCE_LINE = re.compile(r"\bline (\d+):")


def source_line_map(compiled_file: Path | str, originals: Iterable[Path | str]) -> dict[int, int]:
    """Each line of `compiled_file` that holds code copied from `originals`: its line there.

    A compiled line maps to an original line (of the flow or of a decorator module) holding
    the same code, indentation aside. When several original lines hold it, the one whose
    neighbours match the compiled line's neighbours over the longest stretch wins; a tie
    between different line numbers, like code found nowhere (decoflow's own lines, renamed
    code), leaves the line unmapped. The original file is not kept: Metaflow's messages name
    a line without its file.
    """
    compiled = [ln.strip() for ln in Path(compiled_file).read_text(encoding="utf-8").splitlines()]
    sources = [
        [ln.strip() for ln in Path(f).read_text(encoding="utf-8").splitlines()] for f in originals
    ]
    where: dict[str, list[tuple[int, int]]] = {}
    for f, lines in enumerate(sources):
        for j, text in enumerate(lines):
            if text and not text.startswith("#"):
                where.setdefault(text, []).append((f, j))

    def stretch(i: int, f: int, j: int) -> int:
        lines, n = sources[f], 0
        for step in (-1, 1):
            k = 1
            while (
                0 <= i + step * k < len(compiled)
                and 0 <= j + step * k < len(lines)
                and compiled[i + step * k] == lines[j + step * k]
            ):
                k += 1
            n += k - 1
        return n

    out: dict[int, int] = {}
    for i, text in enumerate(compiled):
        candidates = where.get(text)
        if not candidates:
            continue
        scored = [(stretch(i, f, j), j) for f, j in candidates]
        best = max(score for score, _ in scored)
        numbers = {j for score, j in scored if score == best}
        if len(numbers) == 1:
            out[i + 1] = numbers.pop() + 1
    return out


def map_source_lines(text: str, line_map: Mapping[int, int]) -> str:
    """`text` (from a compiled run) with each source line Metaflow names replaced by the
    original line it maps to; an unmapped one is marked so that it never equals a native
    line."""

    def one(m: re.Match[str]) -> str:
        number = int(m.group(1))
        if number in line_map:
            return f"line {line_map[number]}:"
        return f"line {number} (compiled; no original line):"

    return SOURCE_LINE.sub(one, text)


def diff_outcomes(
    native: RunOutcome,
    compiled: RunOutcome,
    *,
    normalize_line: LineNormalizer | None = None,
    volatile_artifacts: Iterable[str] = (),
    compare_errors: bool = True,
    compiled_lines: Mapping[int, int] | None = None,
) -> list[str]:
    """Every difference between two runs, as human-readable paragraphs (empty: same).

    With `compiled_lines` (see `source_line_map`), the source lines named in the compiled
    run's failures and printed lines are read as the original lines they map to.
    """
    norm = normalize_line or (lambda line: line)
    if compiled_lines is not None:
        compiled = _with_lines_mapped(compiled, compiled_lines)
    volatile = set(volatile_artifacts)
    problems: list[str] = []

    if native.succeeded != compiled.succeeded:
        problems.append(
            f"run outcome differs: native {'succeeded' if native.succeeded else 'failed'} "
            f"(exit {native.returncode}), compiled "
            f"{'succeeded' if compiled.succeeded else 'failed'} (exit {compiled.returncode})"
        )
    if native.run_found != compiled.run_found:
        problems.append(f"run recorded: native {native.run_found}, compiled {compiled.run_found}")

    only_native = sorted(set(native.tasks) - set(compiled.tasks))
    only_compiled = sorted(set(compiled.tasks) - set(native.tasks))
    if only_native:
        problems.append(
            "tasks only in the native run: " + ", ".join(task_label(k) for k in only_native)
        )
    if only_compiled:
        problems.append(
            "tasks only in the compiled run: " + ", ".join(task_label(k) for k in only_compiled)
        )

    for key in sorted(set(native.tasks) & set(compiled.tasks)):
        a, b = native.tasks[key], compiled.tasks[key]
        label = f"task {task_label(key)} (native {a.pathspec}, compiled {b.pathspec})"
        if a.successful != b.successful:
            problems.append(
                f"{label}: successful differs: native {a.successful}, compiled {b.successful}"
                + (f"\n    native error: {a.error}" if a.error else "")
                + (f"\n    compiled error: {b.error}" if b.error else "")
            )
        elif compare_errors and not a.successful:
            ea = None if a.error is None else norm(a.error)
            eb = None if b.error is None else norm(b.error)
            if ea != eb:
                problems.append(
                    f"{label}: failure differs:\n    native:   {ea}\n    compiled: {eb}"
                )
        la = [n for n in map(norm, a.stdout) if n is not None]
        lb = [n for n in map(norm, b.stdout) if n is not None]
        if la != lb:
            diff = difflib.unified_diff(la, lb, "native stdout", "compiled stdout", lineterm="")
            problems.append(f"{label}: stdout differs:\n" + "\n".join("    " + d for d in diff))
        names_a, names_b = set(a.artifacts), set(b.artifacts)
        if names_a - names_b:
            problems.append(
                f"{label}: artifacts missing in compiled: {', '.join(sorted(names_a - names_b))}"
            )
        if names_b - names_a:
            problems.append(
                f"{label}: extra artifacts in compiled: {', '.join(sorted(names_b - names_a))}"
                + "".join(
                    f"\n    {n} = {_render(b.artifacts[n])[:300]}"
                    for n in sorted(names_b - names_a)
                )
            )
        for name in sorted(names_a & names_b):
            va, vb = a.artifacts[name], b.artifacts[name]
            how = "value"
            if name in volatile:
                va, vb, how = shape(va), shape(vb), "shape"
            if va != vb:
                problems.append(
                    f"{label}: artifact {name!r} {how} differs:\n"
                    f"    native:   {_render(va)[:2000]}\n    compiled: {_render(vb)[:2000]}"
                )
    return problems


def _with_lines_mapped(outcome: RunOutcome, line_map: Mapping[int, int]) -> RunOutcome:
    tasks = {
        key: replace(
            task,
            stdout=tuple(map_source_lines(ln, line_map) for ln in task.stdout),
            error=None if task.error is None else map_source_lines(task.error, line_map),
        )
        for key, task in outcome.tasks.items()
    }
    return replace(outcome, tasks=tasks)


def assert_same(
    native: RunOutcome,
    compiled: RunOutcome,
    *,
    normalize_line: LineNormalizer | None = None,
    volatile_artifacts: Iterable[str] = (),
    compare_errors: bool = True,
    compiled_lines: Mapping[int, int] | None = None,
) -> None:
    """Raise AssertionError describing every difference between two runs of a flow.

    Compared: exit success, whether a run was recorded, the set of tasks, each task's
    success (and, for failed tasks, the final exception line unless `compare_errors` is
    False), its stdout lines (after `normalize_line`, which may return None to drop a
    line) and its artifacts (values, or only the shape for names in `volatile_artifacts`).
    `compiled_lines`: see `diff_outcomes`.
    """
    problems = diff_outcomes(
        native,
        compiled,
        normalize_line=normalize_line,
        volatile_artifacts=volatile_artifacts,
        compare_errors=compare_errors,
        compiled_lines=compiled_lines,
    )
    if not problems:
        return
    report = [
        f"{len(problems)} difference(s) between the native and the compiled run",
        f"  native:   {native.describe()}",
        f"  compiled: {compiled.describe()}",
        "",
        *("- " + p for p in problems),
        "",
        "native console (tail):",
        _tail(native.console),
        "compiled console (tail):",
        _tail(compiled.console),
    ]
    raise AssertionError("\n".join(report))


if __name__ == "__main__":  # pragma: no cover - a debugging aid
    outcome = run_flow(sys.argv[1], python=sys.executable, workdir=tempfile.mkdtemp())
    print(outcome.describe())
    for key, task in outcome.tasks.items():
        print(task_label(key), task.successful, task.error, list(task.stdout), task.artifacts)
