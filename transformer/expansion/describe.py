"""What the expansion child reports: the expanded flow read into JSON (runs in the child).

Imported by `child.py` (beside it, by path) in the interpreter being compiled for: only the
standard library and `mfcompat`. `describe(...)` gives, per step, the final stack (built-ins
with their attributes, user step decorators and step mutators with module, qualname and
arguments, what inserted each), the flow decorators and mutators, the parameters and the
configs; `encode` turns any value into Python literal source when it round-trips.
"""

import ast
import functools
import inspect
import os
import sys
from collections.abc import Mapping

import mfcompat

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
    delayed = mfcompat.delayed_text(value)
    if delayed is not None:  # a Config value before configs are resolved (the static view)
        return {"src": None, "repr": delayed}
    try:
        plain = _plain(value)
        src = repr(plain)
        if ast.literal_eval(src) != plain:
            raise Unrenderable("round trip")
        out = {"src": src, "value": _jsonable(plain)}
        if _has_config_value(value):  # a Config's dict: attribute access works on it
            out["code"] = _code(value)
        return out
    except (Unrenderable, ValueError, SyntaxError, RecursionError):
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - a user object's repr may fail
            text = f"<{type(value).__name__}>"
        ref = _reference(value)
        if ref is not None:  # written as its name, imported from its module
            return {"src": None, "repr": text, "ref": ref}
        return {"src": None, "repr": text}


def _is_config_value(value):
    kind = type(value)
    return kind.__name__ == "ConfigValue" and kind.__module__.startswith("metaflow.")


def _has_config_value(value):
    if _is_config_value(value):
        return True
    if isinstance(value, Mapping):
        return any(_has_config_value(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_config_value(v) for v in value)
    return False


def _code(value):
    """Source for `value`, a ConfigValue written `ConfigValue({...})` (it wraps what it
    holds again when read)."""
    if _is_config_value(value):
        return f"ConfigValue({_plain(value)!r})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_code(k)}: {_code(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_code(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(f"{_code(v)}, " for v in value) + ")"
    return repr(_plain(value))


def _reference(value):
    """[module, name, file] of a function or class defined at its module's top level (and
    still bound there), else None."""
    if not (inspect.isfunction(value) or inspect.isclass(value)):
        return None
    module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", "")
    if not module or "." in name or "<" in name:
        return None
    if getattr(sys.modules.get(module), name, None) is not value:
        return None
    return [module, name, where(value)[0]]


# --- where user code lives ---------------------------------------------------------------------


def where(obj):
    """(absolute file, first line) of a class or function's source, or (None, None)."""
    target = inspect.unwrap(obj) if callable(obj) else obj
    try:
        return _where(target)
    except TypeError:  # unhashable
        return _where.__wrapped__(target)


@functools.lru_cache(maxsize=4096)
def _where(target):
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
    file, line = where(target)
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


def describe_steps(step_functions, recorder=None):
    out = {}
    for step in step_functions:
        built, wrappers, mutators = mfcompat.step_parts(step)
        out[step.__name__] = {
            "line": where(step)[1],
            "decorators": [_tagged(recorder, d, _builtin(d)) for d in built],
            "wrappers": [_tagged(recorder, w, _user_object(w)) for w in wrappers],
            "mutators": [_tagged(recorder, m, _user_object(m)) for m in mutators],
        }
    return out


def _tagged(recorder, obj, info):
    if recorder is not None:
        info["serial"] = recorder.serial(obj)
    return info


def _is_config(param):
    return bool(getattr(param, "IS_CONFIG_PARAMETER", False))


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
                "is_config": _is_config(param),
                "class": type(param).__name__,
                "module": type(param).__module__,
                # declared on the class: the same object (a mutator's overwrite is not);
                # a Config's value replaces it on the class, so only its name counts
                "static": var in static_vars
                and (static_vars[var] == id(param) or _is_config(param)),
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


def describe(flow, static_steps, static_flow_decos, static_vars, request, version, recorder=None):
    cls = flow.__class__
    return {
        "mutations": recorder.events if recorder is not None and recorder.complete else None,
        "flow": {"name": cls.__name__, "file": where(cls)[0], "line": where(cls)[1]},
        "metaflow_version": version,
        "static_steps": static_steps,
        "steps": describe_steps(mfcompat.steps(flow), recorder),
        "step_order": [step.__name__ for step in mfcompat.steps(flow)],
        "static_flow_decorators": static_flow_decos,
        "flow_decorators": [
            _tagged(recorder, d, _builtin(d)) for d in mfcompat.flow_decorators(cls)
        ],
        "flow_mutators": [
            _tagged(recorder, m, _user_object(m)) for m in mfcompat.flow_mutators(cls)
        ],
        "parameters": describe_parameters(cls, static_vars),
        "configs": describe_configs(cls, request),
        "static_parameters": sorted(static_vars),
        "bases": [
            {"module": b.__module__, "qualname": b.__qualname__, "file": where(b)[0]}
            for b in cls.__mro__[1:]
            if b.__module__ not in ("builtins",) and not b.__module__.startswith("metaflow")
        ],
    }


def static_state(cls, recorder=None):
    steps = describe_steps(mfcompat.static_steps(cls), recorder)
    flow_decos = [_tagged(recorder, d, _builtin(d)) for d in mfcompat.flow_decorators(cls)]
    static_vars = {var: id(param) for var, param in mfcompat.parameters(cls)}
    return steps, flow_decos, static_vars
