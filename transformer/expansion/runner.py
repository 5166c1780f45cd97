"""Parent side of expansion: one child process (`child.py`) per batch of flows.

The child runs in the interpreter being compiled for, in each flow's folder, and reports
per flow on a pipe of its own (never stdout: what mutators print goes to a file per flow,
shown afterwards as Metaflow would show it). A flow that hangs is stopped by an alarm in
the child; a child that does not answer past the timeout is killed and a new one takes the
remaining flows.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..support.diagnostics import NOT_IMPORTABLE, CompileError, Diagnostic, Location
from ..support.records import frozen
from .failures import failure_diagnostic, unsupported
from .interpreter import choose_python

if TYPE_CHECKING:
    from .result import Expansion

# Imported where used, not here: `prestart` runs before the compiler is imported, and what
# this module imports delays the start of the Metaflow child (json, select, shutil,
# tempfile and `.result` are needed only once it runs; see `_make_tmp`).

CHILD = Path(__file__).with_name("child.py")
DEFAULT_TIMEOUT = 60.0
GRACE = 5.0  # past the child's own alarm, before the parent kills it

@frozen
class ExpansionOptions:
    """How mutators and configs are evaluated (part of what a compiled output depends on).

    python: the interpreter whose Metaflow evaluates them (`--python`); None = the running
        one, when it has metaflow >= 2.16.
    configs: `--config NAME FILE` pairs; config_values: `--config-value NAME JSON` pairs.
    timeout: seconds one flow's evaluation may take.
    """

    python: str | None = None
    configs: tuple[tuple[str, str], ...] = ()
    config_values: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT


@frozen
class FlowRequest:
    """One flow to expand. `blame`: where to point when no Metaflow can evaluate it (the first
    mutator or config use found statically) and `blame_name` (e.g. `@robust_flow`)."""

    path: Path
    source: str | None = None  # the text compiled, run in place of the file on disk
    configs: tuple[tuple[str, str], ...] = ()
    config_values: tuple[tuple[str, str], ...] = ()
    with_specs: tuple[str, ...] = ()
    search_path: tuple[str, ...] = ()
    flow_class: str | None = None
    blame: Location | None = None
    blame_name: str = "a mutator"

    def payload(self) -> dict:
        return {
            "path": str(self.path),
            "source": self.source,
            "configs": [list(p) for p in self.configs],
            "config_values": [list(p) for p in self.config_values],
            "with": list(self.with_specs),
            "search_path": list(self.search_path),
            "flow_class": self.flow_class,
        }


@dataclass
class Outcome:
    """Per request: the expansion or the diagnostics, and what the flow's code printed."""

    request: FlowRequest
    expansion: Expansion | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    printed: str = ""


def show_printed(request: FlowRequest, text: str) -> None:
    """What the flow's code printed while evaluated: on stderr, as it came (stdout may be the
    compiled flow)."""
    if text:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()


class _Child:
    """One child process; it imports Metaflow at once, then waits for its request (`send`),
    so it can be started ahead (`prestart`) while the parent is still compiling."""

    def __init__(self, python: str, tmp: str) -> None:
        read_fd, write_fd = os.pipe()
        self.tmp = tmp
        self.log = open(os.path.join(tmp, "child.txt"), "wb")  # noqa: SIM115 - closed in close()
        env = dict(os.environ)
        env.setdefault("USERNAME", env.get("USER") or "decoflow")
        env["PYTHONUNBUFFERED"] = "1"
        try:
            self.proc = subprocess.Popen(
                [python, str(CHILD), str(write_fd), tmp],
                stdin=subprocess.PIPE,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                env=env,
            )
        except BaseException:
            os.close(read_fd)
            self.log.close()
            raise
        finally:
            os.close(write_fd)
        self.fd = read_fd
        self.buffer = b""

    def send(self, requests: list[FlowRequest], timeout: float) -> None:
        """The request: one JSON line (the child reads a line, not to end of file: a forked
        worker holding the pipe's other end cannot keep it waiting)."""
        import json

        payload = {"flows": [r.payload() for r in requests], "timeout": timeout}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(payload).encode() + b"\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def next_message(self, deadline: float | None) -> dict | None:
        """The next JSON line, or None at end of stream; raises TimeoutError past deadline."""
        import json
        import select

        while b"\n" not in self.buffer:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.fd], [], [], wait)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self, kill: bool = False, reap: bool = True) -> int | None:
        """End the child (`kill`: at once) and close its pipes; its exit code. `reap=False`
        (with `kill`): do not wait for it to be gone, `reap` it later (returns None)."""
        if kill and self.proc.poll() is None:
            self.proc.kill()
        code = self.reap() if reap else None
        os.close(self.fd)
        self.log.close()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        return code

    def reap(self) -> int:
        """Wait for the child to be gone (killing it when it does not end within 10 s)."""
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


#: Children killed once every answer was in, not yet reaped, with their folders and the
#: process that started them: `reap_ended` (the end of the batch, the next `expand`, exit).
_ENDING: list[tuple[_Child, str, int]] = []


def _make_tmp() -> str:
    """A new private folder for a child's files, as `tempfile.mkdtemp` makes it; without
    importing tempfile (and shutil, ~2 ms before the child starts) on POSIX when nothing
    has imported it (so nothing set `tempfile.tempdir`) and the first usual folder works."""
    if os.name == "posix" and "tempfile" not in sys.modules:
        base = os.environ.get("TMPDIR") or os.environ.get("TEMP") or os.environ.get("TMP")
        path = os.path.join(os.path.abspath(base or "/tmp"), "decoflow-expand-")
        try:
            path += os.urandom(6).hex()
            os.mkdir(path, 0o700)
            return path
        except OSError:
            pass
    import tempfile

    return tempfile.mkdtemp(prefix="decoflow-expand-")


def reap_ended() -> None:
    """Reap the children that `expand(reap_later=True)` killed and remove their folders
    (in the process that started them; a forked worker only forgets its copies)."""
    if not _ENDING:
        return
    import shutil

    while _ENDING:
        child, tmp, owner = _ENDING.pop()
        if owner == os.getpid():
            child.reap()
            shutil.rmtree(tmp, ignore_errors=True)


#: Children started ahead by `prestart`, by interpreter (at most one each; this process only).
_SPARE: dict[str, _Child] = {}
_SPARE_OWNER: list[int] = []


def prestart(python: str) -> None:
    """Start a child for `python` now: it imports Metaflow while this process goes on
    compiling. The next `expand` for that interpreter takes it; `discard_spare` (also at
    exit) ends it when no flow turned out to need it. Failing to start is not an error here:
    `expand` starts one (and reports) as before."""
    if python in _SPARE:
        return
    tmp = _make_tmp()
    try:
        _SPARE[python] = _Child(python, tmp)
    except OSError:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        return
    if not _SPARE_OWNER:
        _SPARE_OWNER.append(os.getpid())
        atexit.register(discard_spare)


def discard_spare() -> None:
    """At the end of a batch: end (and reap) the children started ahead and not used, and
    reap those `expand` killed (`reap_ended`); nothing in a forked worker."""
    reap_ended()
    if _SPARE_OWNER and _SPARE_OWNER[0] != os.getpid():
        return
    import shutil

    while _SPARE:
        _, child = _SPARE.popitem()
        child.close(kill=True)
        shutil.rmtree(child.tmp, ignore_errors=True)


def expand(
    requests: list[FlowRequest],
    options: ExpansionOptions,
    display: Callable[[Path], str] = lambda p: p.name,
    show: Callable[[FlowRequest, str], None] = show_printed,
    reap_later: bool = False,
    idle: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Evaluate each flow's configs and mutators with Metaflow's code; one child per batch.

    The child is killed as soon as every answer is in. `reap_later` (a batch, which calls
    `discard_spare` at its end): it is not waited for (a child with Metaflow loaded takes
    ~5 ms to be gone) and its folder stays until `reap_ended` (end of the batch, the next
    `expand`, or exit); otherwise both happen before this returns. `idle`: called once, as
    soon as the first child has the request, for work to do while it evaluates."""
    reap_ended()
    outcomes = [Outcome(r) for r in requests]
    if not requests:
        return outcomes
    python, why = choose_python(options.python)
    if python is None:
        for outcome in outcomes:
            outcome.diagnostics.append(unsupported(outcome.request, why, display))
        return outcomes
    pending = list(range(len(requests)))
    import shutil  # here, while the child may still be importing Metaflow: off the wait

    spare = _SPARE.pop(python, None) if _SPARE_OWNER == [os.getpid()] else None
    tmp = spare.tmp if spare is not None else _make_tmp()
    later: list[_Child] = []
    try:
        while pending:
            pending = _run_batch(
                python, requests, outcomes, pending, options, display, show, tmp, spare,
                later if reap_later else None, idle,
            )
            spare = idle = None
    finally:
        if spare is not None:
            spare.close(kill=True)
        if later:
            if not _ENDING_OWNER:
                _ENDING_OWNER.append(os.getpid())
                atexit.register(reap_ended)
            _ENDING.extend((child, tmp, os.getpid()) for child in later)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return outcomes


#: Whether `reap_ended` is registered to run at exit (once per process).
_ENDING_OWNER: list[int] = []


def _run_batch(
    python, requests, outcomes, pending, options, display, show, tmp, spare=None, later=None,
    idle=None,
) -> list[int]:
    """Run one child over `pending` (`spare`: one started ahead, else a new one); returns the
    indices left when it had to be killed. `later`: a child killed once every answer is in
    is added to it, not reaped. `idle`: called once the child has the request."""
    from .result import Expansion

    batch = [requests[i] for i in pending]
    try:
        child = spare if spare is not None else _Child(python, tmp)
        child.send(batch, options.timeout)
    except OSError as err:
        for i in pending:
            why = f"{python} cannot be started ({err.strerror or err})"
            outcomes[i].diagnostics.append(unsupported(requests[i], why, display))
        return []
    if idle is not None:
        idle()
    current: int | None = None
    started = time.monotonic()
    done: set[int] = set()
    killed = finished = False
    try:
        while True:
            if current is None:  # starting up (importing metaflow) or between flows
                deadline = time.monotonic() + max(options.timeout, 30.0) + GRACE
            else:
                deadline = started + options.timeout + GRACE
            try:
                message = child.next_message(deadline)
            except TimeoutError:
                killed = True
                break
            if message is None:
                break
            event = message.get("event")
            if event == "unsupported":
                for i in pending:
                    outcomes[i].diagnostics.append(
                        unsupported(requests[i], message.get("message", ""), display)
                    )
                    done.add(i)
                break
            if event == "start":
                current = pending[message["index"]]
                started = time.monotonic()
            elif event == "done":
                index = pending[message["index"]]
                outcome = outcomes[index]
                outcome.printed = _read(os.path.join(tmp, f"out-{message['index']}.txt"))
                show(outcome.request, outcome.printed)
                if message.get("ok"):
                    outcome.expansion = Expansion(message, python)
                else:
                    outcome.diagnostics.append(
                        failure_diagnostic(outcome.request, message, display, options.timeout)
                    )
                done.add(index)
                current = None
                if len(done) == len(pending):
                    # Every answer is in: do not wait for the child to wind down (its
                    # interpreter's exit costs ~0.1 s); it is killed and reaped below.
                    finished = True
                    break
    finally:
        if finished and later is not None:
            code = child.close(kill=True, reap=False)
            later.append(child)
        else:
            code = child.close(kill=killed or finished)
    if current is not None and current not in done:
        request = requests[current]
        local = pending.index(current)
        printed = _read(os.path.join(tmp, f"out-{local}.txt"))
        outcomes[current].printed = printed
        show(request, printed)
        if killed:
            result = {"timeout": True, "phase": "mutate", "frames": []}
            outcomes[current].diagnostics.append(
                failure_diagnostic(request, result, display, options.timeout)
            )
        else:
            outcomes[current].diagnostics.append(
                NOT_IMPORTABLE(
                    f"the Metaflow process evaluating this flow ended abruptly (exit code {code})"
                    + _tail(os.path.join(tmp, "child.txt")),
                    request.blame or Location(display(request.path)),
                )
            )
        done.add(current)
    left = [i for i in pending if i not in done]
    if left and current is None and not killed:
        # The child died between flows (or before the first): report, do not loop forever.
        for i in left:
            outcomes[i].diagnostics.append(
                NOT_IMPORTABLE(
                    f"the Metaflow process ({python}) ended before evaluating this flow "
                    f"(exit code {code})" + _tail(os.path.join(tmp, "child.txt")),
                    requests[i].blame or Location(display(requests[i].path)),
                )
            )
        return []
    return left


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _tail(path: str) -> str:
    text = _read(path).strip()
    if not text:
        return ""
    return ": " + " | ".join(text.splitlines()[-3:])


def expand_or_raise(
    requests: list[FlowRequest], options: ExpansionOptions, display=lambda p: p.name
) -> list[Expansion]:
    """`expand`, raising one CompileError with every diagnostic when any flow failed."""
    outcomes = expand(requests, options, display)
    diagnostics = [d for o in outcomes for d in o.diagnostics]
    if diagnostics:
        raise CompileError(diagnostics)
    return [o.expansion for o in outcomes]  # type: ignore[misc]
