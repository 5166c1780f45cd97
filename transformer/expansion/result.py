"""What an expansion reports, as plain read-only objects (parsed from the child's JSON)."""

from __future__ import annotations

import os
from pathlib import Path

from ..support.records import frozen


@frozen
class Value:
    """A resolved value: `src` is a Python literal for it, None when it has none (`text`)."""

    src: str | None
    text: str
    #: a function or class at its module's top level: (module, name, file or None)
    ref: tuple[str, str, str | None] | None = None
    #: source that keeps a Config's dicts ConfigValues (`ConfigValue({...})`), if any
    code: str | None = None

    @classmethod
    def of(cls, data: dict) -> Value:
        ref = tuple(data["ref"]) if data.get("ref") else None
        text = data.get("src") or data.get("repr") or ""
        return cls(data.get("src"), text, ref, data.get("code"))


@frozen
class Builtin:
    """A built-in (Metaflow or extension) decorator as Metaflow holds it after mutate."""

    name: str
    attributes: tuple[tuple[str, Value], ...]
    user_attributes: tuple[str, ...]
    statically_defined: bool
    inserted_by: tuple[str, ...] | None
    allow_multiple: bool = False
    serial: int | None = None  # the object's number in the child (what mutators did)

    @classmethod
    def of(cls, data: dict) -> Builtin:
        return cls(
            data["name"],
            tuple((k, Value.of(v)) for k, v in data["attributes"].items()),
            tuple(data.get("user_attributes") or ()),
            bool(data.get("statically_defined")),
            tuple(data["inserted_by"]) if data.get("inserted_by") else None,
            bool(data.get("allow_multiple")),
            data.get("serial"),
        )

    def given(self) -> tuple[tuple[str, Value], ...]:
        """The attributes that differ from the decorator's defaults (what to write out)."""
        return tuple((k, v) for k, v in self.attributes if k in self.user_attributes)

    def spec(self) -> str:
        given = ", ".join(f"{k}={v.text}" for k, v in self.given())
        return f"@{self.name}({given})" if given else f"@{self.name}"


@frozen
class UserObject:
    """A custom step decorator (generator or class), or a flow/step mutator."""

    name: str
    module: str | None
    qualname: str | None
    file: Path | None
    line: int | None
    kind: str  # "generator" | "class"
    args: tuple[Value, ...]
    kwargs: tuple[tuple[str, Value], ...]
    statically_defined: bool
    inserted_by: tuple[str, ...] | None
    is_step_mutator: bool
    serial: int | None = None  # the object's number in the child (what mutators did)

    @classmethod
    def of(cls, data: dict) -> UserObject:
        return cls(
            data.get("name") or "",
            data.get("module"),
            data.get("qualname"),
            Path(data["file"]) if data.get("file") else None,
            data.get("line"),
            data.get("kind") or "class",
            tuple(Value.of(a) for a in data.get("args") or ()),
            tuple((k, Value.of(v)) for k, v in (data.get("kwargs") or {}).items()),
            bool(data.get("statically_defined")),
            tuple(data["inserted_by"]) if data.get("inserted_by") else None,
            bool(data.get("is_step_mutator")),
            data.get("serial"),
        )

    def spec(self) -> str:
        parts = [a.text for a in self.args] + [f"{k}={v.text}" for k, v in self.kwargs]
        short = (self.qualname or self.name).rsplit(".", 1)[-1]
        return f"@{short}({', '.join(parts)})" if parts else f"@{short}"


Item = Builtin | UserObject


def item_of(data: dict) -> Item:
    """A decorator or mutator from a step's or the flow's stack, by the part it is in."""
    return Builtin.of(data) if data.get("part") == "decorators" else UserObject.of(data)


def item_words(item: Item, flow_level: bool = False) -> str:
    """How explain names a decorator or mutator (on a step, or on the flow: `flow_level`)."""
    if isinstance(item, UserObject) and flow_level:
        return f"flow mutator {item.spec()}"
    if isinstance(item, UserObject) and item.is_step_mutator and item.kind == "class":
        return f"step mutator {item.spec()}"
    if flow_level:
        return f"flow decorator {item.spec()}"
    return item.spec()


@frozen
class Mutation:
    """One mutator's `pre_mutate` or `mutate` call, in the order Metaflow made it, and what it
    changed in each step's stack ("" is the flow's own decorators and mutators)."""

    mutator: UserObject
    hook: str  # "pre_mutate" | "mutate"
    step: str | None  # the step a step mutator was given; None for a flow mutator
    added: dict[str, tuple[Item, ...]]
    removed: dict[str, tuple[Item, ...]]
    changed: dict[str, tuple[tuple[Item, Item], ...]]

    @classmethod
    def of(cls, data: dict) -> Mutation:
        changes = data.get("changes") or {}
        return cls(
            UserObject.of(data["mutator"]),
            data.get("hook") or "mutate",
            data.get("step"),
            {s: tuple(item_of(i) for i in c.get("added", ())) for s, c in changes.items()},
            {s: tuple(item_of(i) for i in c.get("removed", ())) for s, c in changes.items()},
            {
                s: tuple((item_of(a), item_of(b)) for a, b in c.get("changed", ()))
                for s, c in changes.items()
            },
        )

    def who(self) -> str:
        """The mutator as Metaflow names it, who added it, and the hook when not mutate."""
        name = ".".join(p for p in (self.mutator.module, self.mutator.qualname) if p)
        words = name or self.mutator.name
        if self.mutator.inserted_by:
            words += f" (added by {self.mutator.inserted_by[0]})"
        if self.hook != "mutate":
            words += f" in {self.hook}"
        return words

    def lines(self, step: str) -> list[str]:
        """What this call did to `step` ("": the flow's decorators and mutators), a line each."""
        by = f" by {self.who()}"
        flow = step == ""
        out = [
            f"changed {item_words(a, flow)} -> {item_words(b, flow)}{by}"
            for a, b in self.changed.get(step, ())
        ]
        out += [f"added {item_words(i, flow)}{by}" for i in self.added.get(step, ())]
        out += [f"removed {item_words(i, flow)}{by}" for i in self.removed.get(step, ())]
        if not out and self.step == step and self.hook == "mutate":
            out.append(f"{self.who()} changed nothing")
        return out

    def serials(self, which: str) -> set[int]:
        table = {"added": self.added, "removed": self.removed}[which]
        found = {i.serial for items in table.values() for i in items}
        if which == "added":
            found |= {b.serial for pairs in self.changed.values() for _, b in pairs}
        else:
            found |= {a.serial for pairs in self.changed.values() for a, _ in pairs}
        return {s for s in found if s is not None}


@frozen
class StepStack:
    """One step's final stack. `wrappers` are innermost first, as Metaflow keeps them."""

    name: str
    line: int | None
    decorators: tuple[Builtin, ...]
    wrappers: tuple[UserObject, ...]
    mutators: tuple[UserObject, ...]

    @classmethod
    def of(cls, name: str, data: dict) -> StepStack:
        return cls(
            name,
            data.get("line"),
            tuple(Builtin.of(d) for d in data.get("decorators") or ()),
            tuple(UserObject.of(w) for w in data.get("wrappers") or ()),
            tuple(UserObject.of(m) for m in data.get("mutators") or ()),
        )


@frozen
class ParameterInfo:
    var: str
    name: str
    is_config: bool
    class_name: str
    module: str
    static: bool
    kwargs: tuple[tuple[str, Value], ...]
    callable_kwargs: tuple[str, ...]

    @classmethod
    def of(cls, data: dict) -> ParameterInfo:
        return cls(
            data["var"],
            data["name"],
            bool(data.get("is_config")),
            data.get("class") or "Parameter",
            data.get("module") or "",
            bool(data.get("static")),
            tuple((k, Value.of(v)) for k, v in (data.get("kwargs") or {}).items()),
            tuple(data.get("callable_kwargs") or ()),
        )


@frozen
class ConfigInfo:
    name: str
    value: Value
    source: dict
    plain: bool

    def describe(self, folder: Path | None = None) -> str:
        """`name from <file>` (the file relative to `folder`, the flow's, as a flow names its
        config files; its name alone without one), `name from --config-value`, ..."""
        kind = self.source.get("kind")
        if kind in ("default-file", "config-file"):
            path = Path(self.source["path"])
            shown = path.name if folder is None else os.path.relpath(path, folder)
            return f"{self.name} from {Path(shown).as_posix()}"
        if kind == "config-value":
            return f"{self.name} from --config-value"
        return f"{self.name} ({kind})"


class Expansion:
    """One flow after configs and mutators, as the child reported it."""

    def __init__(self, data: dict, python: str) -> None:
        self.data = data
        self.python = python
        self.metaflow_version: str = data["metaflow_version"]
        self.flow_name: str = data["flow"]["name"]
        self.flow_line: int | None = data["flow"].get("line")
        self.steps = {n: StepStack.of(n, d) for n, d in data["steps"].items()}
        self.static_steps = {n: StepStack.of(n, d) for n, d in data["static_steps"].items()}
        self.flow_decorators = tuple(Builtin.of(d) for d in data["flow_decorators"])
        self.static_flow_decorators = tuple(
            Builtin.of(d) for d in data.get("static_flow_decorators") or ()
        )
        self.flow_mutators = tuple(UserObject.of(m) for m in data["flow_mutators"])
        self.parameters = tuple(ParameterInfo.of(p) for p in data["parameters"])
        self.static_parameters = tuple(data.get("static_parameters") or ())
        #: what the mutators printed, {"stdout": text, "stderr": text}
        self.printed: dict[str, str] = dict(data.get("printed") or {})
        self.configs = {
            name: ConfigInfo(name, Value.of(c["value"]), c["source"], bool(c.get("plain")))
            for name, c in data["configs"].items()
        }
        self.bases = tuple(data.get("bases") or ())
        recorded = data.get("mutations")
        self.mutations: tuple[Mutation, ...] | None = (
            None if recorded is None else tuple(Mutation.of(m) for m in recorded)
        )

    @property
    def added_parameters(self) -> tuple[ParameterInfo, ...]:
        return tuple(p for p in self.parameters if not p.static)

    @property
    def replaced_parameters(self) -> frozenset[str]:
        """Class members a mutator's `remove_parameter` deleted or `add_parameter(...,
        overwrite=True)` replaced: their declarations must not be written out."""
        kept = {p.var for p in self.parameters if p.static}
        added = {p.var for p in self.added_parameters}
        return frozenset((set(self.static_parameters) - kept) | added)

    def changes(self, step: str) -> list[str]:
        """What mutators did to a step, each call in the order Metaflow made it: each
        decorator (or step mutator) added, removed or changed, and by which mutator, with
        what `--with` added where Metaflow attaches it (after pre_mutate, before mutate);
        then what configs resolved."""
        if self.mutations is None:
            return self._changes_by_inserted_by(step)
        added = set().union(*(m.serials("added") for m in self.mutations))
        removed = set().union(*(m.serials("removed") for m in self.mutations))
        before = self.static_steps.get(step)
        after = self.steps.get(step)
        early = [line for m in self.mutations if m.hook == "pre_mutate" for line in m.lines(step)]
        late = [line for m in self.mutations if m.hook != "pre_mutate" for line in m.lines(step)]
        if after is None:
            return [*early, *late, f"step {step} removed"]
        old: list[Item] = [*before.decorators, *before.wrappers] if before else []
        by_serial = {item.serial: item for item in old}
        final = {item.serial for item in [*after.decorators, *after.wrappers]}
        attached, resolved = [], []
        for item in [*after.decorators, *after.wrappers]:
            if item.serial in added:
                continue
            static = by_serial.get(item.serial)
            if static is None and item.inserted_by:  # a mutator not seen run (made late)
                late.append(f"added {item.spec()} by {item.inserted_by[0]}")
            elif static is None:
                attached.append(f"added {item.spec()} (--with)")
            elif static.spec() != item.spec():
                resolved.append(f"configs resolved: {static.spec()} -> {item.spec()}")
        for item in old:
            if item.serial not in final and item.serial not in removed:
                resolved.append(f"removed {item.spec()}")
        return [*early, *attached, *late, *resolved]

    def flow_changes(self) -> list[str]:
        """What mutators did to the flow's own decorators and mutators, in Metaflow's order."""
        return [line for m in self.mutations or () for line in m.lines("")]

    def _changes_by_inserted_by(self, step: str) -> list[str]:
        """`changes` from the final stack alone (what each object says inserted it)."""
        before = self.static_steps.get(step)
        after = self.steps.get(step)
        if after is None:
            return [f"step {step} removed"]
        lines: list[str] = []
        old_builtins = {d.name: d for d in before.decorators} if before else {}
        new_builtins = {d.name: d for d in after.decorators}
        for deco in after.decorators:
            by = " by " + deco.inserted_by[0] if deco.inserted_by else ""
            old = old_builtins.get(deco.name)
            if old is None:
                lines.append(f"added {deco.spec()}{by or ' (--with)'}")
            elif old.spec() != deco.spec():
                lines.append(f"changed {old.spec()} -> {deco.spec()}{by}")
        for name, old in old_builtins.items():
            if name not in new_builtins:
                lines.append(f"removed {old.spec()}")
        old_wrappers = list(before.wrappers) if before else []
        for wrapper in after.wrappers:
            same = [w for w in old_wrappers if w.spec() == wrapper.spec()]
            if same:
                old_wrappers.remove(same[0])
                continue
            by = " by " + wrapper.inserted_by[0] if wrapper.inserted_by else ""
            written = [  # written on the step, its Config values now resolved
                w
                for w in old_wrappers
                if (w.module, w.qualname) == (wrapper.module, wrapper.qualname)
                and wrapper.statically_defined
                and not by
            ]
            if written:
                old_wrappers.remove(written[0])
                lines.append(f"configs resolved: {written[0].spec()} -> {wrapper.spec()}")
                continue
            lines.append(f"added {wrapper.spec()}{by or ' (--with)'}")
        lines.extend(f"removed {old.spec()}" for old in old_wrappers)
        return lines
