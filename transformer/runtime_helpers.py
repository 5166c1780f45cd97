"""Pass 6: select the runtime helpers a compiled flow uses, to be emitted into it."""

from __future__ import annotations

import re
from functools import lru_cache

import libcst as cst
from decoflow.runtime import HELPERS_PATH

from .names import names_in


@lru_cache(maxsize=1)
def _helpers() -> dict[str, cst.FunctionDef]:
    module = cst.parse_module(HELPERS_PATH.read_text(encoding="utf-8"))
    return {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}


@lru_cache(maxsize=1)
def helper_names() -> frozenset[str]:
    """Names of all helpers (read from the file's text: no parse needed to reserve them)."""
    return frozenset(re.findall(r"^def (\w+)", HELPERS_PATH.read_text(encoding="utf-8"), flags=re.MULTILINE))


def helper_definitions(wanted: set[str]) -> list[cst.FunctionDef]:
    """The wanted helpers and those they call, in the order of helpers.py."""
    return list(_definitions(frozenset(wanted)))


@lru_cache(maxsize=64)
def _definitions(wanted: frozenset[str]) -> tuple[cst.FunctionDef, ...]:
    helpers = _helpers()
    needed: set[str] = set()
    stack = list(wanted)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        stack.extend(n for n in names_in(helpers[name]) if n in helpers and n != name)
    return tuple(helpers[n].with_changes(leading_lines=[]) for n in helpers if n in needed)
