"""Hygiene: fresh names that read naturally and collide with nothing already in scope."""

from __future__ import annotations

import ast
import builtins
import dataclasses
import keyword
import re

import libcst as cst

BUILTINS = frozenset(dir(builtins))


class NameAllocator:
    """Hands out names not in `reserved`: the preferred name if free, else prefixed, else
    numbered."""

    def __init__(self, reserved: set[str] | frozenset[str]) -> None:
        self.taken = set(reserved)

    def claim(self, preferred: str, prefix: str | None = None) -> str:
        candidates = [preferred]
        if prefix and not preferred.startswith(prefix + "_"):
            candidates.append(f"{prefix}_{preferred}")
        for name in candidates:
            if self._free(name):
                self.taken.add(name)
                return name
        base = candidates[-1]
        n = 2
        while not self._free(f"{base}_{n}"):
            n += 1
        self.taken.add(f"{base}_{n}")
        return f"{base}_{n}"

    def reserve(self, name: str) -> None:
        self.taken.add(name)

    def is_free(self, name: str) -> bool:
        return name not in self.taken and not keyword.iskeyword(name)

    _free = is_free


#: Fields that never hold a name (whitespace, parentheses, commas...): not walked.
_NO_NAMES = (
    "whitespace",
    "lpar",
    "rpar",
    "comma",
    "semicolon",
    "leading_lines",
    "lines_after_decorators",
    "header",
    "footer",
    "trailing_whitespace",
)
_FIELDS: dict[type, tuple[str, ...]] = {}


def child_nodes(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The child nodes of `node` that may hold names, read from its fields.

    libcst's `visit` (and `children`) rebuilds every node it passes; a read-only walk that
    only collects does not need that and is several times faster on the same tree."""
    fields = _FIELDS.get(type(node))
    if fields is None:
        fields = _FIELDS[type(node)] = tuple(
            f.name for f in dataclasses.fields(node) if not f.name.startswith(_NO_NAMES)
        )
    out: list[cst.CSTNode] = []
    for name in fields:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            out.append(value)
        elif isinstance(value, (list, tuple)):
            out.extend(v for v in value if isinstance(v, cst.CSTNode))
    return out


def name_nodes(node: cst.CSTNode) -> list[cst.Name]:
    """Every variable-like Name node in a piece of code (not attribute or keyword names)."""
    found: list[cst.Name] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            found.append(current)
        elif isinstance(current, (cst.Attribute, cst.Arg)):
            stack.append(current.value)
        else:
            stack.extend(child_nodes(current))
    return found


def names_in(node: cst.CSTNode) -> set[str]:
    return {n.value for n in name_nodes(node)}


_IDENTIFIER = re.compile(r"[^\W\d]\w*")


def identifiers_in_text(text: str) -> set[str]:
    """Every identifier-like word in source text (also in strings and comments): a cheap
    superset of the names a module uses, for reserving names."""
    return set(_IDENTIFIER.findall(text))


#: What binds a name in `except ... as name` and in match patterns (Python 3.10+).
_CAPTURES = tuple(
    getattr(ast, n) for n in ("ExceptHandler", "MatchAs", "MatchStar") if hasattr(ast, n)
)
_MAPPING_PATTERN = getattr(ast, "MatchMapping", ())


def bound_or_read_names(node: ast.AST) -> set[str]:
    """Every name the code under `node` could read or bind as a variable: names,
    parameters, definitions, imports, `global`s, exception and match captures. Attribute and
    keyword names are not variables and collide with nothing."""
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.arg):
            found.add(sub.arg)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(sub.name)
        elif isinstance(sub, ast.alias):
            found.add(sub.asname or sub.name.split(".")[0])
        elif isinstance(sub, (ast.Global, ast.Nonlocal)):
            found.update(sub.names)
        elif isinstance(sub, _CAPTURES) and sub.name:
            found.add(sub.name)
        elif isinstance(sub, _MAPPING_PATTERN) and sub.rest:
            found.add(sub.rest)
    return found


def variable_names(tree: ast.Module) -> set[str]:
    """`bound_or_read_names` of a module, and the strings that are identifiers
    (`globals()["NAME"]`): what a name given to new module-level code must avoid."""
    found = bound_or_read_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.isidentifier():
                found.add(node.value)
    return found


def attribute_uses(node: cst.CSTNode) -> dict[str, set[str]]:
    """For each plain name, the attributes read from it (`registry.note` -> {registry: {note}}).
    A name also used bare (passed around) maps to None-containing sets: see `Carrier`."""
    uses: dict[str, set[str]] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Attribute) and isinstance(current.value, cst.Name):
            uses.setdefault(current.value.value, set()).add(current.attr.value)
        elif isinstance(current, cst.Name):
            uses.setdefault(current.value, set()).add(
                ""
            )  # "" = used as a value, not only via attributes
        else:
            stack.extend(child_nodes(current))
    return uses
