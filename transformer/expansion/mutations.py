"""What each mutator did, for `decoflow explain` (runs in the expansion child).

Imported by `child.py` (beside it, by path) with `describe` and `mfcompat`: only the standard
library and those two. `MutationRecorder.around` wraps every pre_mutate / mutate call that
Metaflow makes (`mfcompat.watch_mutators`) and records, per call, what it added, removed or
changed on each step's stack and on the flow.
"""

import describe
import mfcompat

_builtin = describe._builtin
_user_object = describe._user_object

#: The parts of a step's stack a mutator may change, as `describe_steps` names them.
PARTS = ("decorators", "wrappers", "mutators")


class MutationRecorder:
    """Each mutator's pre_mutate / mutate, in the order Metaflow runs them, with what it
    changed: every step's stack (and the flow decorators and mutators) is read before and after
    the call, and the objects compared by identity (each kept alive and given a serial number,
    which the static and final descriptions carry too) and by a shallow copy of their
    attributes. Only what changed is described (reading where user code lives is slow)."""

    def __init__(self):
        self.kept = {}  # id -> (serial, object): alive, so ids are not reused
        self.events = []
        self.complete = True  # every call recorded

    def serial(self, obj):
        entry = self.kept.get(id(obj))
        if entry is None:
            entry = self.kept[id(obj)] = (len(self.kept) + 1, obj)
        return entry[0]

    def _stacks(self, cls):
        """{step name (None: the flow): {part: [(serial, object, state)]}}."""
        stacks = {}
        for step in mfcompat.static_steps(cls):
            step = getattr(cls, step.__name__, step)
            stacks[step.__name__] = dict(zip(PARTS, mfcompat.step_parts(step)))
        stacks[None] = {
            "decorators": mfcompat.flow_decorators(cls),
            "mutators": mfcompat.flow_mutators(cls),
        }
        return {
            name: {
                part: [(self.serial(o), o, _state(part, o)) for o in objs]
                for part, objs in parts.items()
            }
            for name, parts in stacks.items()
        }

    def around(self, mutator, hook, mutable, call):
        """Run one mutator hook (`call`) as Metaflow would, recording what it changed.
        Reading the stacks never fails the evaluation: when a call cannot be read, no call
        is reported (explain then names what inserted each decorator, as Metaflow keeps it)."""
        try:
            cls, step = mfcompat.mutable_target(mutable)
            before = self._stacks(cls)
        except Exception:  # noqa: BLE001 - a mutator may leave any state behind
            self.complete = False
            return call()
        result = call()
        try:
            after = self._stacks(cls)
            changes = {}
            for name in sorted(set(before) | set(after), key=str):
                diff = _diff(before.get(name, {}), after.get(name, {}))
                if diff:
                    changes["" if name is None else name] = diff
            if changes or step is not None:
                info = _user_object(mutator)
                info["serial"] = self.serial(mutator)
                self.events.append(
                    {
                        "mutator": info,
                        "hook": hook,
                        "step": step.__name__ if step is not None else None,
                        "changes": changes,
                    }
                )
        except Exception:  # noqa: BLE001 - as above
            self.complete = False
        return result


def _state(part, obj):
    """A shallow copy of what a decorator or mutator was given (to see it changed in place)."""
    if part == "decorators":
        return dict(obj.attributes)
    getter = getattr(obj, "get_args_kwargs", None)
    if getter is None:
        return None
    args, kwargs = getter()
    return list(args), dict(kwargs)


def _same_state(a, b):
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a user value's == may raise
        return True


def _describe_part(part, obj, state=None):
    if part != "decorators":
        return _user_object(obj)
    if state is None:
        return _builtin(obj)
    saved = obj.attributes
    obj.attributes = state  # as it was before the call
    try:
        return _builtin(obj)
    finally:
        obj.attributes = saved


def _item(part, table, serial, state=None):
    return dict(_describe_part(part, table[serial][0], state), part=part, serial=serial)


def _diff(before, after):
    """{"added": [...], "removed": [...], "changed": [[old, new], ...]} of one stack."""
    added, removed, changed = [], [], []
    for part in PARTS:
        old = {k: (o, st) for k, o, st in before.get(part, [])}
        new = {k: (o, st) for k, o, st in after.get(part, [])}

        gone = [_item(part, old, k) for k in old if k not in new]
        came = [_item(part, new, k) for k in new if k not in old]
        for k in new:
            if k in old and not _same_state(old[k][1], new[k][1]):  # changed in place
                if part == "decorators":
                    changed.append([_item(part, old, k, old[k][1]), _item(part, new, k)])
        for one in list(came):  # replaced (OVERRIDE, or removed and added): changed
            match = [g for g in gone if _same_kind(g, one)]
            if match:
                gone.remove(match[0])
                came.remove(one)
                changed.append([match[0], one])
        added += came
        removed += gone
    pairs = (("added", added), ("removed", removed), ("changed", changed))
    return {key: value for key, value in pairs if value}


def _same_kind(a, b):
    if a["part"] == "decorators":
        return a["name"] == b["name"]
    return (a.get("module"), a.get("qualname")) == (b.get("module"), b.get("qualname"))
