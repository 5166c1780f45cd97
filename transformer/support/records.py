"""`@frozen`: a frozen dataclass without the cost of writing its methods from source.

The facts passed between passes are frozen dataclasses. On Python 3.11, `dataclass(frozen=True)`
writes six methods per class (`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`,
`__delattr__`), each compiled from source with `exec`: ~15 ms for decoflow's classes, paid by
every process before it compiles anything (the latency measure, docs/performance.md).

`frozen` lets `dataclass` collect the fields (and write no method), then gives every class the
same shared methods, which read the class's fields once and keep them. What a caller sees is
a frozen dataclass's behaviour: `dataclasses.fields`/`replace`/`asdict` work; `__init__`
takes the fields positionally or by name, with their defaults and default factories;
equality and hashing use the fields with `compare=True`, in order, and only between
instances of the same class; `repr` shows the fields with `repr=True`; assigning or deleting
an attribute raises `dataclasses.FrozenInstanceError`. A class may still define its own
`__repr__`, `__eq__` or `__hash__`; its own `__init__`, `__setattr__` or `__delattr__` is
refused (a frozen dataclass refuses the last two; none of decoflow's classes needs the first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T", bound=type)

#: Per class: a function giving the tuple of its compared fields' values.
_COMPARED: dict[type, Callable[[Any], tuple[Any, ...]]] = {}
#: Per class: the names of the fields its repr shows.
_SHOWN: dict[type, tuple[str, ...]] = {}


def frozen(cls: T) -> T:
    """Make `cls` a frozen dataclass (see the module docstring)."""
    own = cls.__dict__
    for name in ("__init__", "__setattr__", "__delattr__"):
        if name in own:
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    explicit_hash = own.get("__hash__") is not None
    cls = dataclass(init=False, eq=False, repr=False)(cls)
    type.__setattr__(cls, "__init__", _init_for(cls))
    type.__setattr__(cls, "__setattr__", _setattr)
    type.__setattr__(cls, "__delattr__", _delattr)
    if "__repr__" not in own:
        type.__setattr__(cls, "__repr__", _repr)
    if "__eq__" not in own:
        type.__setattr__(cls, "__eq__", _eq)
    if not explicit_hash:
        type.__setattr__(cls, "__hash__", _hash)
    return cls


def _compared(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    get = _COMPARED.get(cls)
    if get is None:
        names = [f.name for f in fields(cls) if f.compare]
        if len(names) > 1:
            get = attrgetter(*names)
        elif names:
            only = attrgetter(names[0])
            get = lambda record: (only(record),)  # noqa: E731
        else:
            get = lambda record: ()  # noqa: E731
        _COMPARED[cls] = get
    return get


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        get = _compared(self.__class__)
        return get(self) == get(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(_compared(self.__class__)(self))


def _repr(self: Any) -> str:
    cls = self.__class__
    names = _SHOWN.get(cls)
    if names is None:
        names = _SHOWN[cls] = tuple(f.name for f in fields(cls) if f.repr)
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
    return f"{cls.__qualname__}({shown})"


def _init_for(cls: type) -> Callable[..., None]:
    """`__init__` of `cls`: its fields in order, positionally or by name."""
    taken = [f for f in fields(cls) if f.init]
    names = tuple(f.name for f in taken)
    known = frozenset(names)
    defaults = {f.name: f.default for f in taken if f.default is not MISSING}
    factories = {f.name: f.default_factory for f in taken if f.default_factory is not MISSING}
    owner = cls.__qualname__
    count = len(names)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > count:
            raise TypeError(
                f"{owner}.__init__() takes {count + 1} positional arguments "
                f"but {len(args) + 1} were given"
            )
        values = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in known:
                raise TypeError(f"{owner}.__init__() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{owner}.__init__() got multiple values for argument {name!r}")
            values[name] = value
        for name in names:
            if name in values:
                value = values[name]
            elif name in defaults:
                value = defaults[name]
            elif name in factories:
                value = factories[name]()
            else:
                raise TypeError(f"{owner}.__init__() missing required argument: {name!r}")
            object.__setattr__(self, name, value)

    __init__.__qualname__ = f"{owner}.__init__"
    return __init__


def _setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")
