"""`--with` specs, read exactly as Metaflow reads them.

`mod.deco:k=v,k2=v2` -> name `mod.deco`, attributes {k: v, k2: v2}. Pairs split at commas
followed by `name=`; each value is parsed as JSON, else int, else float, else kept as a
string (so `cfg={"k": [1, 2]}` stays one value).
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import field
from typing import Any

from .records import frozen

# Metaflow's own step decorators that `--with NAME` may name (the same in 2.15 and 2.19).
BUILTIN_STEP_DECORATORS = frozenset(
    {
        "catch",
        "timeout",
        "environment",
        "secrets",
        "parallel",
        "retry",
        "resources",
        "batch",
        "kubernetes",
        "card",
        "pypi",
        "conda",
    }
)


class SpecError(ValueError):
    """A malformed `--with` spec."""


@frozen
class WithSpec:
    raw: str
    name: str
    attributes: dict[str, Any] = field(compare=False)
    has_attributes: bool

    @property
    def is_builtin(self) -> bool:
        return "." not in self.name and self.name in BUILTIN_STEP_DECORATORS


def parse_value(text: str) -> Any:
    try:
        return json.loads(text.strip().replace('\\"', '"'))
    except json.JSONDecodeError:
        pass
    for convert in (int, float):
        try:
            return convert(text.strip())
        except ValueError:
            pass
    return text.strip()


def parse_spec(raw: str) -> WithSpec:
    name, sep, rest = raw.partition(":")
    name = name.strip()
    if not name or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", name):
        raise SpecError(
            f"--with '{raw}': '{name}' is not a decorator name (expected NAME or module.NAME)"
        )
    attributes: dict[str, Any] = {}
    if rest.strip():
        for pair in re.split(r""",(?=[\s\w]+=)""", rest):
            key, eq, value = pair.partition("=")
            if not eq or not key.strip().isidentifier() or keyword.iskeyword(key.strip()):
                raise SpecError(
                    f"--with '{raw}': '{pair}' is not of the form name=value (name a valid keyword)"
                )
            attributes[key.strip()] = parse_value(value)
    return WithSpec(raw, name, attributes, bool(sep))
