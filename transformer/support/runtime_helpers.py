"""The runtime helpers a compiled flow uses, to be emitted into it."""

from __future__ import annotations

import re
from functools import lru_cache

import libcst as cst
from decoflow.runtime import HELPERS_PATHS

from .names import identifiers_in_text

_TOP_LEVEL_DEF = re.compile(r"^(?:def|class) (\w+)", flags=re.MULTILINE)


@lru_cache(maxsize=1)
def _helper_texts() -> dict[str, str]:
    """Each helper's source text, in file order (read, not parsed: a compile parses only the
    helpers it emits)."""
    out: dict[str, str] = {}
    for path in HELPERS_PATHS:  # helpers.py, then classes.py (class-based decorators)
        text = path.read_text(encoding="utf-8")
        starts = [(m.group(1), m.start()) for m in _TOP_LEVEL_DEF.finditer(text)]
        ends = [start for _, start in starts[1:]] + [len(text)]
        out.update(
            {name: text[start:end].rstrip() + "\n" for (name, start), end in zip(starts, ends)}
        )
    return out


def helper_names() -> frozenset[str]:
    """Names of all helpers."""
    return frozenset(_helper_texts())


def helper_texts(wanted: set[str]) -> list[tuple[str, str]]:
    """The wanted helpers and those they call, in the order of helpers.py: (name, source).
    The output takes their text as written (render.Verbatim), without parsing it."""
    return list(_texts(frozenset(wanted)))


def helper_definitions(wanted: set[str]) -> list[cst.FunctionDef]:
    """The wanted helpers and those they call, parsed (for code that rewrites them)."""
    return list(_definitions(frozenset(wanted)))


@lru_cache(maxsize=64)
def _texts(wanted: frozenset[str]) -> tuple[tuple[str, str], ...]:
    texts = _helper_texts()
    needed: set[str] = set()
    stack = list(wanted)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        stack.extend(n for n in identifiers_in_text(texts[name]) if n in texts and n != name)
    return tuple((name, text) for name, text in texts.items() if name in needed)


@lru_cache(maxsize=64)
def _definitions(wanted: frozenset[str]) -> tuple[cst.FunctionDef, ...]:
    out = []
    for _, text in _texts(wanted):
        stmt = cst.parse_statement(text)
        assert isinstance(stmt, (cst.FunctionDef, cst.ClassDef))
        out.append(stmt)
    return tuple(out)
