"""Cheap facts about the flow's steps, read with Python's own (C) parser.

libcst visitors are pure Python; for questions that need no node identity (which names a
step uses, whether it returns early) `ast` answers in a fraction of the time.
"""

from __future__ import annotations

import ast

from .names import bound_or_read_names
from .records import frozen


@frozen
class StepFacts:
    """What the step's own code uses: its names, and whether it returns early."""

    names: frozenset[str]
    has_return: bool


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _returns(func: ast.FunctionDef) -> bool:
    stack: list[ast.AST] = list(func.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            return True
        if isinstance(node, _SCOPES):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def step_facts(tree: ast.Module | None) -> dict[tuple[str, str], StepFacts]:
    """(class name, method name) -> facts, for every method of every top-level class of the
    flow as Python's parser read it (None: no facts; the slower visitors will answer)."""
    if tree is None:
        return {}
    out: dict[tuple[str, str], StepFacts] = {}
    for cls in tree.body:
        if isinstance(cls, ast.ClassDef):
            for item in cls.body:
                if isinstance(item, ast.FunctionDef):
                    # Not `bound_or_read_names(item) - {item.name}`: that would also drop
                    # every use of the step's own name inside it (`start = ...` in `start`).
                    parts = (*item.decorator_list, item.args, *item.body)
                    names = set().union(*(bound_or_read_names(part) for part in parts))
                    out[(cls.name, item.name)] = StepFacts(frozenset(names), _returns(item))
    return out
