"""Cheap facts about the flow's steps, read with Python's own (C) parser.

libcst visitors are pure Python; for questions that need no node identity (which names a
step uses, whether it returns early) `ast` answers in a fraction of the time.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class StepFacts:
    """What the step's own code uses: its names, and whether it returns early."""

    names: frozenset[str]
    has_return: bool


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _names(node: ast.AST) -> set[str]:
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.arg):
            out.add(sub.arg)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(sub.name)
        elif isinstance(sub, ast.alias):
            out.add((sub.asname or sub.name).split(".")[0])
        elif isinstance(sub, (ast.Global, ast.Nonlocal)):
            out.update(sub.names)
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            out.add(sub.name)
        elif isinstance(sub, (ast.MatchAs, ast.MatchStar)) and sub.name:
            out.add(sub.name)
    return out


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
                    # Not `_names(item) - {item.name}`: that would also drop every use of
                    # the step's own name inside it (`start = ...` in step `start`).
                    parts = (*item.decorator_list, item.args, *item.body)
                    names = set().union(*(_names(part) for part in parts))
                    out[(cls.name, item.name)] = StepFacts(frozenset(names), _returns(item))
    return out
