"""The expansion child: run as `PYTHON child.py RESULT_FD OUT_DIR` with a JSON request on stdin.

It runs in the environment being compiled for (any Python with metaflow >= 2.16), imports
only the standard library, `mfcompat`, `describe` and `mutations` (beside it) and what the
flows import. This module runs the stages and keeps each flow apart; `describe` reads the
result, `mutations` records what each mutator did. For each flow
it writes JSON lines on RESULT_FD: {"event": "start", "index": i} before evaluating it, then
{"event": "done", "index": i, ...}. Whatever the flow, its decorators and its mutators print
(on stdout or stderr, from Python or C) goes to OUT_DIR/out-<i>.txt, never on RESULT_FD.
"""

import json
import os
import signal
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import describe  # noqa: E402 - beside this file; imports mfcompat
import mfcompat  # noqa: E402
import mutations  # noqa: E402 - beside this file; imports describe

# Out of the way of the flows' own modules of the same names.
sys.path.remove(HERE)
for _name, _module in (("mfcompat", mfcompat), ("describe", describe), ("mutations", mutations)):
    sys.modules.pop(_name, None)
    sys.modules["_decoflow_" + _name] = _module

PHASES = ("import", "configs", "pre_mutate", "flow_decorators", "with", "mutate", "describe")


class FlowTimeout(BaseException):
    """Raised by the alarm when a flow's evaluation takes longer than allowed."""


# --- failures -----------------------------------------------------------------------------


def _ours(filename):
    if not filename:
        return True
    path = os.path.abspath(filename)
    mf = None
    if "metaflow" in sys.modules:
        mf = os.path.dirname(os.path.abspath(sys.modules["metaflow"].__file__))
    if path.startswith(HERE + os.sep):
        return True
    if mf and path.startswith(mf + os.sep):
        return True
    stdlib = os.path.dirname(os.path.abspath(os.__file__))
    return path.startswith(stdlib + os.sep) and "site-packages" not in path


def _evaluated_expression(frame):
    """The expression of the `config_expr(...)` (or Config attribute) that Metaflow's
    DelayEvaluator is evaluating in `frame`, else None."""
    this = frame.f_locals.get("self")
    if frame.f_code.co_name != "__call__" or type(this).__name__ != "DelayEvaluator":
        return None
    expr = getattr(this, "_config_expr", None)
    return expr if isinstance(expr, str) else None


def _source_file(filename):
    """A frame that is code read from a file (not `eval`'d text such as `<string>`)."""
    return not (filename.startswith("<") and filename.endswith(">"))


def failure(exc, phase):
    frames = []
    owner = None
    expression = None
    tb = exc.__traceback__
    while tb is not None:
        expression = _evaluated_expression(tb.tb_frame) or expression
        if not _ours(tb.tb_frame.f_code.co_filename):
            this = tb.tb_frame.f_locals.get("self")
            if this is not None:  # the innermost method (a helper it calls names no owner)
                owner = f"{type(this).__name__}.{tb.tb_frame.f_code.co_name}"
        tb = tb.tb_next
    for summary in traceback.extract_tb(exc.__traceback__):
        if _ours(summary.filename) or not _source_file(summary.filename):
            continue
        frames.append(
            {
                "file": os.path.abspath(summary.filename),
                "line": summary.lineno,
                "col": (getattr(summary, "colno", None) or 0) + 1,
                "function": summary.name,
                "code": summary.line,
            }
        )
    if isinstance(exc, SyntaxError) and exc.filename:
        frames.append(
            {"file": os.path.abspath(exc.filename), "line": exc.lineno or 1,
             "col": exc.offset or 1, "function": "<module>", "code": (exc.text or "").strip()}
        )
    if isinstance(exc, SystemExit):
        message = f"called sys.exit({exc.code!r})"
    elif isinstance(exc, FlowTimeout):
        message = str(exc)
    else:
        text = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        headline = getattr(exc, "headline", None)
        if headline and headline not in text:
            text = f"{headline}: {text}"
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return {
        "ok": False,
        "phase": phase,
        "type": type(exc).__name__,
        "message": message,
        "timeout": isinstance(exc, FlowTimeout),
        "frames": frames,
        "owner": owner,
        "expression": expression,
    }


# --- what the mutators print ---------------------------------------------------------------------


class _Printed:
    """What is printed while the mutators run, stdout and stderr apart (`texts`), then
    passed on to the flow's output file (where the parent shows it). Natively every process
    that loads the flow runs the mutators again and prints this: each task too."""

    def __init__(self):
        self.texts = {"stdout": "", "stderr": ""}
        self.saved = ()
        self.files = ()

    def __enter__(self):
        import tempfile

        _flush()
        self.saved = os.dup(1), os.dup(2)
        self.files = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        os.dup2(self.files[0].fileno(), 1)
        os.dup2(self.files[1].fileno(), 2)
        return self

    def __exit__(self, *exc_info):
        _flush()
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)
        for key, file in zip(("stdout", "stderr"), self.files):
            file.seek(0)
            data = file.read()
            file.close()
            os.write(1, data)
            self.texts[key] = data.decode("utf-8", "replace")
        return False


def _flush():
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a user may have replaced the streams
        pass


# --- one flow -----------------------------------------------------------------------------------


def evaluate(request, index, version):
    path = os.path.abspath(request["path"])
    stem = os.path.splitext(os.path.basename(path))[0]
    phase = "import"
    module_name = stem if stem not in sys.modules else f"_decoflow_flow_{index}_{stem}"
    cls = None
    try:
        module, classes = mfcompat.load_flow(path, module_name, request.get("source"))
        wanted = request.get("flow_class")
        if wanted:
            classes = [c for c in classes if c.__name__ == wanted]
        if len(classes) != 1:
            names = ", ".join(c.__name__ for c in classes) or "none"
            message = f"expected one FlowSpec class in the file, found {names}"
            return {"ok": False, "phase": "import", "type": "NoFlow", "timeout": False,
                    "frames": [], "message": message}
        cls = classes[0]
        recorder = mutations.MutationRecorder()
        static_steps, static_flow_decos, static_vars = describe.static_state(cls, recorder)
        with mfcompat.flow_context(cls), mfcompat.watch_mutators(recorder.around):
            phase = "configs"
            options = mfcompat.resolve_configs(
                cls, request.get("configs") or [], request.get("config_values") or []
            )
            with _Printed() as printed:  # natively printed again by every process
                phase = "pre_mutate"
                flow = mfcompat.pre_mutate(cls, options)
                phase = "flow_decorators"
                mfcompat.init_flow_decorators(flow)
                phase = "with"
                mfcompat.attach_with(flow, request.get("with") or [])
                phase = "mutate"
                mfcompat.mutate(flow)
            phase = "describe"
            result = describe.describe(
                flow, static_steps, static_flow_decos, static_vars, request, version, recorder
            )
            result["printed"] = printed.texts
        result["ok"] = True
        return result
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, even SystemExit
        result = failure(exc, phase)
        if cls is not None:
            result["flow"] = {"name": cls.__name__, "line": describe.where(cls)[1]}
        return result


def _forget_modules(before, folder):
    for name in list(sys.modules):
        if name in before:
            continue
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None) or ""
        if name.startswith("_decoflow_flow_") or os.path.abspath(file).startswith(folder + os.sep):
            del sys.modules[name]


def _alarm(seconds):
    def ring(signum, frame):
        raise FlowTimeout(f"did not finish within {seconds:g}s (the expansion timeout)")

    if hasattr(signal, "SIGALRM") and seconds:
        signal.signal(signal.SIGALRM, ring)
        signal.setitimer(signal.ITIMER_REAL, seconds)


def _disarm():
    if hasattr(signal, "SIGALRM"):
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_one(request, index, version, out_dir, timeout):
    path = os.path.abspath(request["path"])
    folder = os.path.dirname(path)
    before = set(sys.modules)
    cwd = os.getcwd()
    saved_path = list(sys.path)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    out_path = os.path.join(out_dir, f"out-{index}.txt")
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    try:
        os.chdir(folder)
        sys.path[:0] = [folder] + list(request.get("search_path") or [])
        _alarm(timeout)
        try:
            return evaluate(request, index, version)
        finally:
            _disarm()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - a user may have replaced the streams
            pass
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        os.close(saved_fds[0])
        os.close(saved_fds[1])
        os.chdir(cwd)
        sys.path[:] = saved_path
        _forget_modules(before, folder)


def main():
    result_fd = int(sys.argv[1])
    out_dir = sys.argv[2]
    channel = os.fdopen(result_fd, "w")

    def send(payload):
        channel.write(json.dumps(payload) + "\n")
        channel.flush()

    # Metaflow is imported before the request is read: a child started ahead imports it
    # while the parent is still compiling.
    try:
        version = mfcompat.check()
    except mfcompat.Unsupported as exc:
        send({"event": "unsupported", "message": str(exc), "python": sys.executable})
        return
    request = json.loads(sys.stdin.readline() or "null")
    if request is None:  # the parent discarded it (no flow needed it)
        return
    send({"event": "ready", "metaflow_version": version, "python": sys.executable})
    timeout = request.get("timeout")
    for index, item in enumerate(request["flows"]):
        send({"event": "start", "index": index})
        result = run_one(item, index, version, out_dir, timeout)
        result.update({"event": "done", "index": index})
        try:
            send(result)
        except (TypeError, ValueError) as exc:
            send({"event": "done", "index": index, "ok": False, "phase": "describe",
                  "type": "TypeError", "timeout": False, "frames": [],
                  "message": f"cannot report the expanded flow: {exc}"})
    # The last answer is sent: end now, without the interpreter's slow wind-down (the
    # parent stops reading after the last answer and would kill it anyway).
    channel.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
