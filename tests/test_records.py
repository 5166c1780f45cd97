"""`@frozen` (transformer/support/records.py) behaves as `@dataclass(frozen=True)`: each check
runs on a class made both ways and compares what they do."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, asdict, dataclass, field, fields, replace
from typing import Any

import pytest
from decoflow.transformer.support.records import frozen


def _classes(make: Any) -> dict[str, type]:
    """The same three classes, made with `make` (`frozen` or a frozen dataclass)."""

    @make
    class Point:
        """Two compared fields and one that neither compares nor shows."""

        x: int
        y: int = 0
        note: str = field(default="", compare=False, repr=False)
        tags: tuple[str, ...] = field(default=())

    @make
    class Labelled(Point):
        """A subclass adding a field."""

        label: str = "a"

    @make
    class Single:
        """One compared field: equality and hashing still go by a tuple."""

        value: object
        cache: dict[str, int] = field(default_factory=dict, compare=False)

    return {"Point": Point, "Labelled": Labelled, "Single": Single}


class Ours:
    """Holds the classes made with `frozen` (so that pickle finds them as `Ours.Point`)."""


class Theirs:
    """Holds the classes made as frozen dataclasses."""


def _register(holder: type, classes: dict[str, type]) -> dict[str, type]:
    for name, cls in classes.items():
        cls.__qualname__ = f"{holder.__name__}.{name}"
        setattr(holder, name, cls)
    return classes


OURS = _register(Ours, _classes(frozen))
THEIRS = _register(Theirs, _classes(dataclass(frozen=True)))


def _both(name: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    return OURS[name](*args, **kwargs), THEIRS[name](*args, **kwargs)


def _shown(record: object) -> str:
    """The repr without the holder's name."""
    return repr(record).split(".", 1)[1]


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("Point", (1,), {}),
        ("Point", (1, 2), {"note": "n", "tags": ("t",)}),
        ("Labelled", (1, 2), {"label": "b"}),
        ("Single", ("v",), {}),
        ("Single", ((1, 2),), {"cache": {"k": 1}}),
    ],
)
def test_repr_fields_asdict_as_a_frozen_dataclass(name: str, args: tuple, kwargs: dict) -> None:
    ours, theirs = _both(name, *args, **kwargs)
    assert _shown(ours) == _shown(theirs)
    assert [f.name for f in fields(ours)] == [f.name for f in fields(theirs)]
    assert asdict(ours) == asdict(theirs)
    first = fields(ours)[0].name
    assert _shown(replace(ours, **{first: 9})) == _shown(replace(theirs, **{first: 9}))
    assert replace(ours, **{first: 9}) != ours
    again = pickle.loads(pickle.dumps(ours))
    assert again == ours and type(again) is type(ours) and _shown(again) == _shown(ours)
    with pytest.raises(FrozenInstanceError):
        again.x = 1


@pytest.mark.parametrize(
    ("name", "left", "right"),
    [
        ("Point", ((1, 2), {}), ((1, 2), {})),
        ("Point", ((1, 2), {"note": "a"}), ((1, 2), {"note": "b"})),  # note is not compared
        ("Point", ((1, 2), {}), ((1, 3), {})),
        ("Point", ((1, 2), {"tags": ("a",)}), ((1, 2), {"tags": ("b",)})),
        ("Labelled", ((1, 2), {"label": "a"}), ((1, 2), {"label": "b"})),
        ("Single", (("v",), {"cache": {"a": 1}}), (("v",), {})),
        ("Single", (("v",), {}), (("w",), {})),
    ],
)
def test_equality_and_hashing_as_a_frozen_dataclass(name: str, left: tuple, right: tuple) -> None:
    ours_l, theirs_l = _both(name, *left[0], **left[1])
    ours_r, theirs_r = _both(name, *right[0], **right[1])
    assert (ours_l == ours_r) == (theirs_l == theirs_r)
    assert (ours_l != ours_r) == (theirs_l != theirs_r)
    if ours_l == ours_r:
        assert hash(ours_l) == hash(ours_r)
        assert len({ours_l, ours_r}) == 1
    else:
        assert len({ours_l, ours_r}) == 2


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("Point", (), {}),  # x is required
        ("Point", (1, 2, "n", (), "extra"), {}),  # too many positional arguments
        ("Point", (1,), {"x": 2}),  # x given twice
        ("Point", (1,), {"z": 2}),  # no such field
        ("Labelled", (), {"label": "b"}),
    ],
)
def test_bad_arguments_are_refused_as_a_frozen_dataclass_refuses_them(
    name: str, args: tuple, kwargs: dict
) -> None:
    with pytest.raises(TypeError):
        THEIRS[name](*args, **kwargs)
    with pytest.raises(TypeError):
        OURS[name](*args, **kwargs)


def test_arguments_by_position_or_name_and_fresh_default_factories() -> None:
    assert OURS["Labelled"](1, label="z", y=3) == OURS["Labelled"](x=1, y=3, label="z")
    assert _shown(OURS["Labelled"](1, 2, "n", ("t",), "b")) == _shown(
        THEIRS["Labelled"](1, 2, "n", ("t",), "b")
    )
    first, second = OURS["Single"](1), OURS["Single"](1)
    assert first.cache == {} and first.cache is not second.cache


def test_instances_of_different_classes_are_never_equal() -> None:
    point, labelled = OURS["Point"](1, 2), OURS["Labelled"](1, 2)
    assert point != labelled and labelled != point
    assert OURS["Point"](1, 2) != (1, 2)


@pytest.mark.parametrize("classes", [OURS, THEIRS], ids=["frozen", "dataclass"])
def test_assigning_or_deleting_after_init_is_refused(classes: dict[str, type]) -> None:
    point = classes["Point"](1, 2)
    with pytest.raises(FrozenInstanceError):
        point.x = 3
    with pytest.raises(FrozenInstanceError):
        point.other = 3  # not a field either
    with pytest.raises(FrozenInstanceError):
        del point.y
    assert (point.x, point.y) == (1, 2)


def test_a_class_keeps_its_own_repr_eq_and_hash_and_may_not_define_setattr_or_init() -> None:
    @frozen
    class Own:
        """Defines what `frozen` would otherwise give it."""

        value: int

        def __repr__(self) -> str:
            return "own"

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return 7

    assert repr(Own(1)) == "own" and Own(1) == Own(2) and hash(Own(1)) == 7

    with pytest.raises(TypeError, match="__setattr__"):

        @frozen
        class Settable:
            """A frozen class may not define its own `__setattr__`."""

            value: int

            def __setattr__(self, name: str, value: object) -> None:
                object.__setattr__(self, name, value)

    with pytest.raises(TypeError, match="__init__"):

        @frozen
        class Initialised:
            """A class of `frozen` gets its `__init__` from its fields."""

            value: int

            def __init__(self, value: int) -> None:
                object.__setattr__(self, "value", value)
