"""The expansion child: run as `PYTHON child.py RESULT_FD OUT_DIR` with a JSON request on stdin.

It runs in the environment being compiled for (any Python with metaflow >= 2.16), imports
only the standard library, `mfcompat` (beside it) and what the flows import. For each flow
it writes JSON lines on RESULT_FD: {"event": "start", "index": i} before evaluating it, then
{"event": "done", "index": i, ...}. Whatever the flow, its decorators and its mutators print
(on stdout or stderr, from Python or C) goes to OUT_DIR/out-<i>.txt, never on RESULT_FD.
"""

import ast
import inspect
import json
import os
import signal
import sys
import traceback
from collections.abc import Mapping

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mfcompat  # noqa: E402

sys.path.remove(HERE)
sys.modules.pop("mfcompat", None)
sys.modules["_decoflow_mfcompat"] = mfcompat

PHASES = ("import", "configs", "pre_mutate", "flow_decorators", "with", "mutate", "describe")


class FlowTimeout(BaseException):
    """Raised by the alarm when a flow's evaluation takes longer than allowed."""


# --- values ---------------------------------------------------------------------------------


class Unrenderable(Exception):
    pass


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    raise Unrenderable(type(value).__name__)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def encode(value):
    """{"src": Python literal source, "value": JSON form} or {"src": None, "repr": ...}."""
    try:
        plain = _plain(value)
        src = repr(plain)
        if ast.literal_eval(src) != plain:
            raise Unrenderable("round trip")
        return {"src": src, "value": _jsonable(plain)}
    except (Unrenderable, ValueError, SyntaxError, RecursionError):
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - a user object's repr may fail
            text = f"<{type(value).__name__}>"
        return {"src": None, "repr": text}


# --- where user code lives ---------------------------------------------------------------------


def _where(obj):
    target = inspect.unwrap(obj) if callable(obj) else obj
    try:
        file = inspect.getsourcefile(target)
        line = inspect.getsourcelines(target)[1]
    except (TypeError, OSError):
        file, line = None, None
    return (os.path.abspath(file) if file else None), line


def _code_object(obj):
    """module, qualname, file, line of a mutator / decorator object (its class or generator)."""
    gen = mfcompat.wrapper_generator(obj)
    target = gen if gen is not None else type(obj)
    file, line = _where(target)
    return {
        "module": getattr(target, "__module__", None),
        "qualname": getattr(target, "__qualname__", None),
        "file": file,
        "line": line,
        "kind": "generator" if gen is not None else "class",
    }


def _inserted(obj):
    by = getattr(obj, "inserted_by", None)
    return list(by) if by else None


def _builtin(deco):
    attrs = dict(deco.attributes)
    defaults = dict(getattr(deco, "defaults", {}) or {})
    user = set(getattr(deco, "_user_defined_attributes", set()) or ())
    user |= {k for k, v in attrs.items() if k in defaults and v != defaults[k]}
    user |= {k for k in attrs if k not in defaults}
    return {
        "name": deco.name,
        "attributes": {k: encode(v) for k, v in attrs.items()},
        "user_attributes": sorted(str(k) for k in user),
        "statically_defined": bool(getattr(deco, "statically_defined", False)),
        "inserted_by": _inserted(deco),
        "allow_multiple": bool(getattr(deco, "allow_multiple", False)),
    }


def _user_object(obj):
    from metaflow import StepMutator

    args, kwargs = [], {}
    getter = getattr(obj, "get_args_kwargs", None)
    if getter is not None:
        args, kwargs = getter()
    else:
        args = list(getattr(obj, "_args", []) or [])
        kwargs = dict(getattr(obj, "_kwargs", {}) or {})
    info = _code_object(obj)
    info.update(
        {
            "name": getattr(obj, "decorator_name", None) or type(obj).__name__,
            "args": [encode(a) for a in args],
            "kwargs": {str(k): encode(v) for k, v in kwargs.items()},
            "statically_defined": bool(getattr(obj, "statically_defined", False)),
            "inserted_by": _inserted(obj),
            "is_step_mutator": isinstance(obj, StepMutator),
        }
    )
    return info


def describe_steps(step_functions):
    out = {}
    for step in step_functions:
        built, wrappers, mutators = mfcompat.step_parts(step)
        out[step.__name__] = {
            "line": _where(step)[1],
            "decorators": [_builtin(d) for d in built],
            "wrappers": [_user_object(w) for w in wrappers],
            "mutators": [_user_object(m) for m in mutators],
        }
    return out


def describe_parameters(cls, static_vars):
    out = []
    for var, param in mfcompat.parameters(cls):
        kwargs = dict(getattr(param, "kwargs", {}) or {})
        kind = kwargs.get("type")
        typed = {}
        if kind in (str, int, float, bool):
            typed["type"] = {"src": kind.__name__, "value": kind.__name__}
        elif kind is not None and type(kind).__name__ == "JSONTypeClass":
            typed["type"] = {"src": "JSONType", "value": "JSONType", "import": "metaflow"}
        encoded = {k: encode(v) for k, v in kwargs.items() if not callable(v)}
        encoded.update(typed)
        out.append(
            {
                "var": var,
                "name": param.name,
                "is_config": bool(getattr(param, "IS_CONFIG_PARAMETER", False)),
                "class": type(param).__name__,
                "module": type(param).__module__,
                "static": var in static_vars,
                "kwargs": encoded,
                "callable_kwargs": sorted(
                    k for k, v in kwargs.items() if callable(v) and k not in typed
                ),
            }
        )
    return out


def describe_configs(cls, request):
    values = mfcompat.config_values(cls)
    given_files = dict(request.get("configs") or [])
    given_values = dict(request.get("config_values") or [])
    out = {}
    for _, param in mfcompat.parameters(cls):
        if not getattr(param, "IS_CONFIG_PARAMETER", False):
            continue
        name = param.name
        default = param.kwargs.get("default")
        is_file = bool(getattr(param, "_default_is_file", False))
        if name in given_values:
            source = {"kind": "config-value", "text": given_values[name]}
        elif name in given_files:
            source = {"kind": "config-file", "path": os.path.abspath(given_files[name])}
        elif is_file and isinstance(default, str):
            source = {"kind": "default-file", "path": os.path.abspath(default)}
        elif callable(default):
            source = {"kind": "default-function"}
        elif default is not None:
            source = {"kind": "default-value"}
        else:
            source = {"kind": "none"}
        out[name] = {
            "value": encode(values.get(name)),
            "source": source,
            "plain": bool(param.kwargs.get("plain", False)),
        }
    return out


def describe(flow, static_steps, static_flow_decos, static_vars, request, version):
    cls = flow.__class__
    return {
        "flow": {"name": cls.__name__, "file": _where(cls)[0], "line": _where(cls)[1]},
        "metaflow_version": version,
        "static_steps": static_steps,
        "steps": describe_steps(mfcompat.steps(flow)),
        "step_order": [step.__name__ for step in mfcompat.steps(flow)],
        "static_flow_decorators": static_flow_decos,
        "flow_decorators": [_builtin(d) for d in mfcompat.flow_decorators(cls)],
        "flow_mutators": [_user_object(m) for m in mfcompat.flow_mutators(cls)],
        "parameters": describe_parameters(cls, static_vars),
        "configs": describe_configs(cls, request),
        "bases": [
            {"module": b.__module__, "qualname": b.__qualname__, "file": _where(b)[0]}
            for b in cls.__mro__[1:]
            if b.__module__ not in ("builtins",) and not b.__module__.startswith("metaflow")
        ],
    }


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
    if False:
        return True
    stdlib = os.path.dirname(os.path.abspath(os.__file__))
    return path.startswith(stdlib + os.sep) and "site-packages" not in path


def failure(exc, phase):
    frames = []
    owner = None
    tb = exc.__traceback__
    while tb is not None:
        if not _ours(tb.tb_frame.f_code.co_filename):
            this = tb.tb_frame.f_locals.get("self")
            owner = None if this is None else f"{type(this).__name__}.{tb.tb_frame.f_code.co_name}"
        tb = tb.tb_next
    for summary in traceback.extract_tb(exc.__traceback__):
        if _ours(summary.filename):
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
    }


# --- one flow -----------------------------------------------------------------------------------


def _static_state(cls):
    steps = describe_steps(mfcompat.static_steps(cls))
    flow_decos = [_builtin(d) for d in mfcompat.flow_decorators(cls)]
    static_vars = [var for var, _ in mfcompat.parameters(cls)]
    return steps, flow_decos, static_vars


def evaluate(request, index, version):
    path = os.path.abspath(request["path"])
    stem = os.path.splitext(os.path.basename(path))[0]
    phase = "import"
    module_name = stem if stem not in sys.modules else f"_decoflow_flow_{index}_{stem}"
    cls = None
    try:
        module, classes = mfcompat.load_flow(path, module_name)
        wanted = request.get("flow_class")
        if wanted:
            classes = [c for c in classes if c.__name__ == wanted]
        if len(classes) != 1:
            names = ", ".join(c.__name__ for c in classes) or "none"
            message = f"expected one FlowSpec class in the file, found {names}"
            return {"ok": False, "phase": "import", "type": "NoFlow", "timeout": False,
                    "frames": [], "message": message}
        cls = classes[0]
        static_steps, static_flow_decos, static_vars = _static_state(cls)
        with mfcompat.flow_context(cls):
            phase = "configs"
            options = mfcompat.resolve_configs(
                cls, request.get("configs") or [], request.get("config_values") or []
            )
            phase = "pre_mutate"
            flow = mfcompat.pre_mutate(cls, options)
            phase = "flow_decorators"
            mfcompat.init_flow_decorators(flow)
            phase = "with"
            mfcompat.attach_with(flow, request.get("with") or [])
            phase = "mutate"
            mfcompat.mutate(flow)
            phase = "describe"
            result = describe(flow, static_steps, static_flow_decos, static_vars, request, version)
        result["ok"] = True
        return result
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, even SystemExit
        result = failure(exc, phase)
        if cls is not None:
            result["flow"] = {"name": cls.__name__, "line": _where(cls)[1]}
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

    request = json.load(sys.stdin)
    try:
        version = mfcompat.check()
    except mfcompat.Unsupported as exc:
        send({"event": "unsupported", "message": str(exc), "python": sys.executable})
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


if __name__ == "__main__":
    main()
