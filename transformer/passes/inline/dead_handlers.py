"""A decorator's `try` around a yield whose body became code that cannot raise.

When what runs at the yield is nothing (a step whose body is only `pass`, a step with no
code before its `self.next`, a skip), a decorator's `try: yield / except ...: ...` compiles
to `try: pass / except ...: ...`: its handlers can never run. The statement then does what
its `else` and `finally` do, in the same order:

* `try: B / except ...: H / else: E / finally: F` is `try: B; E / finally: F` (an error in
  `E` never reached the handlers anyway, and `F` still runs after it, raised or not);
* without `finally` it is `B; E`.

Only the handlers go, and only when that cannot change what any name means: a name the
handlers bind (`except ... as err`, an assignment) and the rest of the decorator's code
reads stays local to the step only because of that binding, unless it is bound there too
(removing it would turn a read that fails with `UnboundLocalError` into a global lookup).
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Union

import libcst as cst

from ...support.code import block, statements_of
from ...support.names import name_nodes

TryNode = Union[cst.Try, cst.TryStar]
_PASS_BLOCK = cst.IndentedBlock(body=[cst.SimpleStatementLine([cst.Pass()])])


def cannot_raise(stmts: Sequence[cst.BaseStatement]) -> bool:
    """Whether `stmts` is only `pass` and names set to a literal (`x_yielded = True`)."""
    for stmt in stmts:
        if not isinstance(stmt, cst.SimpleStatementLine):
            return False
        for small in stmt.body:
            if isinstance(small, cst.Pass):
                continue
            if (
                isinstance(small, cst.Assign)
                and all(isinstance(t.target, cst.Name) for t in small.targets)
                and _is_literal(small.value)
            ):
                continue
            return False
    return True


def _is_literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.Name):
        return node.value in ("True", "False", "None")
    return isinstance(node, (cst.Integer, cst.SimpleString))


def is_bare_pass(stmt: cst.BaseStatement) -> bool:
    """A `pass` with no comment of its own (above it or after it)."""
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Pass)
        and all(e.comment is None for e in stmt.leading_lines)
        and stmt.trailing_whitespace.comment is None
    )


def _code(nodes: Iterable[cst.CSTNode]) -> str:
    """Source of statements and handlers (a handler as a `try` of its own, so that its
    `as` name reads as a binding)."""
    parts = []
    for node in nodes:
        if isinstance(node, cst.ExceptHandler):
            node = cst.Try(body=_PASS_BLOCK, handlers=[node])
        elif isinstance(node, cst.ExceptStarHandler):
            node = cst.TryStar(body=_PASS_BLOCK, handlers=[node])
        parts.append(cst.Module(body=[node]).code)  # type: ignore[list-item]
    return "".join(parts)


def bindings(code: str) -> Counter[str]:
    """How many times each name is bound in `code`'s own scope: not in the functions,
    classes and lambdas it defines, nor by comprehension targets (their names are their
    own), but by `:=` inside a comprehension (that binds in the enclosing scope)."""
    found: Counter[str] = Counter()
    stack: list[ast.AST] = [ast.parse(code)]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            found[node.id] += 1
        elif isinstance(node, ast.ExceptHandler) and node.name:
            found[node.name] += 1
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                found[(alias.asname or alias.name).split(".")[0]] += 1
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] += 1
            stack.extend(node.decorator_list)  # evaluated here, like defaults and bases
            if isinstance(node, ast.ClassDef):
                stack.extend([*node.bases, *node.keywords])
            else:
                stack.extend([*node.args.defaults, *filter(None, node.args.kw_defaults)])
            continue
        elif isinstance(node, ast.Lambda):
            stack.extend([*node.args.defaults, *filter(None, node.args.kw_defaults)])
            continue
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.NamedExpr) and isinstance(inner.target, ast.Name):
                    found[inner.target.id] += 1
            continue
        elif type(node).__name__ in ("MatchAs", "MatchStar") and getattr(node, "name", None):
            found[node.name] += 1  # type: ignore[attr-defined]
        stack.extend(ast.iter_child_nodes(node))
    return found


class HandlerFolder:
    """Folds the tries of one decorator's code (as expanded) whose handlers cannot run.

    `code` is all of that code: a name the dropped handlers bind must be read nowhere
    else in it, or be bound elsewhere in it too."""

    def __init__(self, code: Sequence[cst.BaseStatement], always_bound: frozenset[str]) -> None:
        self._code = code
        self._always_bound = always_bound  # names the step binds outside `code` anyway
        self._read: Counter[str] | None = None
        self._bound: Counter[str] | None = None

    def _counts(self) -> tuple[Counter[str], Counter[str]]:
        if self._read is None or self._bound is None:
            self._read = Counter(n.value for s in self._code for n in name_nodes(s))
            self._bound = bindings(_code(self._code))
        return self._read, self._bound

    def fold(self, node: TryNode) -> list[cst.BaseStatement] | None:
        """What `node` does without its handlers, or None when they may run or matter."""
        body = statements_of(node.body)
        if not node.handlers or not cannot_raise(body) or not self._names_kept(node):
            return None
        kept = [s for s in body if not is_bare_pass(s)]
        if node.orelse is not None:
            kept.extend(statements_of(node.orelse.body))
        if node.finalbody is not None:
            kept = [cst.Try(body=block(kept), finalbody=node.finalbody)]
        if kept:
            kept[0] = kept[0].with_changes(
                leading_lines=[*node.leading_lines, *kept[0].leading_lines]
            )
        elif any(e.comment is not None for e in node.leading_lines):
            kept = [cst.SimpleStatementLine([cst.Pass()], leading_lines=node.leading_lines)]
        self._dropped(node)
        return kept

    def _names_kept(self, node: TryNode) -> bool:
        """Dropping the handlers leaves every name of the code as local as it was."""
        handlers = list(node.handlers)
        bound = bindings(_code(handlers))
        if not bound:
            return True
        read_all, bound_all = self._counts()
        read_here = Counter(n.value for h in handlers for n in name_nodes(h))
        for name, times in bound.items():
            if name in self._always_bound or bound_all[name] > times:
                continue  # bound elsewhere too: local either way
            if read_all[name] > read_here[name]:
                return False  # read elsewhere: local only because of the handlers
        return True

    def _dropped(self, node: TryNode) -> None:
        """Counts what the dropped handlers bound and read as gone from the code."""
        if self._read is None or self._bound is None:
            return
        handlers = list(node.handlers)
        self._bound -= bindings(_code(handlers))
        self._read -= Counter(n.value for h in handlers for n in name_nodes(h))
