"""Guards: the statements that see what a yield throws in, and code run before the yield.

Metaflow throws the step's failure into the generator at its yield, so the `try` and
`with` statements around a yield see it: a `try` whose body holds a yield (its handlers
catch it), a `try` with a `finally` holding one in its body, handlers or `else`, a `with`
whose body holds one (its `__exit__` sees it). When decorators are stacked, these are
the statements that must step aside for a failure Metaflow does not throw in (a decorator
below failing before its yield): the compiled step guards them.

Whether the decorator runs code before its yield decides whether it can fail that way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field

import libcst as cst

from ...support.names import child_nodes
from ...support.records import frozen
from ...support.source import is_docstring


@frozen
class GuardFacts:
    """The `try`/`try*`/`with` statements around the decorator's yields."""

    guarded: frozenset[cst.CSTNode] = field(repr=False)  # see what a yield throws in
    handlers: frozenset[cst.CSTNode] = field(repr=False)  # of those, handlers see it
    withs: tuple[cst.With, ...] = field(repr=False)  # the guarded `with`s, in source order
    except_star: bool  # a `try/except*` has a yield in its body
    has_pre_code: bool  # code may run before the first yield
    # per guarded statement: the yields its handlers see, and those its `finally` (or a
    # `with`'s exit) sees
    sees: Mapping[cst.CSTNode, tuple[frozenset[cst.CSTNode], frozenset[cst.CSTNode]]] = field(
        default_factory=dict, repr=False
    )


class _TryFinder:
    """Which `try` and `with` statements see what a yield throws in.

    Yields are statements, so only statements are walked (not expressions), nested
    functions and classes excepted."""

    def __init__(self, sites: frozenset[cst.SimpleStatementLine]) -> None:
        self.sites = sites
        self.guarded: set[cst.CSTNode] = set()
        self.handlers: set[cst.CSTNode] = set()
        self.by_handlers: dict[cst.CSTNode, set[cst.CSTNode]] = {}
        self.by_finally: dict[cst.CSTNode, set[cst.CSTNode]] = {}

    def walk(
        self, stmts: Sequence[cst.CSTNode], around: tuple[tuple[str, cst.CSTNode], ...]
    ) -> None:
        for stmt in stmts:
            if stmt in self.sites:
                for part, node in around:
                    self._mark(part, node, stmt)
            elif isinstance(stmt, (cst.Try, cst.TryStar)):
                self.walk(_suite(stmt.body), (*around, ("body", stmt)))
                for handler in stmt.handlers:
                    self.walk(_suite(handler.body), (*around, ("handler", stmt)))
                if stmt.orelse is not None:
                    self.walk(_suite(stmt.orelse.body), (*around, ("else", stmt)))
                if stmt.finalbody is not None:
                    self.walk(_suite(stmt.finalbody.body), around)
            elif isinstance(stmt, cst.With):
                self.walk(_suite(stmt.body), (*around, ("with", stmt)))
            elif isinstance(stmt, cst.BaseCompoundStatement) and not isinstance(
                stmt, (cst.FunctionDef, cst.ClassDef)
            ):
                for block in _blocks(stmt):  # if/elif/else, loops, match
                    self.walk(block, around)

    def _mark(self, part: str, node: cst.CSTNode, site: cst.CSTNode) -> None:
        """Marks `node` guarded when it sees what the yield `site` in its `part` throws."""
        if isinstance(node, cst.With):
            self.guarded.add(node)  # its __exit__ sees what the yield throws
            self.by_finally.setdefault(node, set()).add(site)
            return
        assert isinstance(node, (cst.Try, cst.TryStar))
        sees = False
        if part == "body" and node.handlers:
            self.handlers.add(node)
            self.by_handlers.setdefault(node, set()).add(site)
            sees = True
        if node.finalbody is not None:
            self.by_finally.setdefault(node, set()).add(site)
            sees = True
        if sees:
            self.guarded.add(node)


def _suite(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    return suite.body if isinstance(suite, cst.IndentedBlock) else ()


def _blocks(node: cst.CSTNode) -> list[Sequence[cst.CSTNode]]:
    """The statement blocks directly under a compound statement (an `elif` counts as one
    statement of its own block)."""
    out: list[Sequence[cst.CSTNode]] = []
    for child in child_nodes(node):
        if isinstance(child, cst.BaseSuite):
            out.append(_suite(child))
        elif isinstance(child, cst.BaseCompoundStatement):
            out.append([child])
        elif isinstance(
            child,
            (cst.Else, cst.Finally, cst.ExceptHandler, cst.ExceptStarHandler, cst.MatchCase),
        ):
            out.extend(_blocks(child))
    return out


def _in_source_order(func: cst.FunctionDef, kind: type, nodes: frozenset) -> tuple:
    """The nodes of `kind` among `nodes`, in the order they appear in `func`."""
    found, stack = [], [func.body]
    while stack:
        node = stack.pop()
        if isinstance(node, kind) and node in nodes:
            found.append(node)
        stack.extend(reversed(child_nodes(node)))
    return tuple(found)


def _runs_code_before_yield(
    body: Sequence[cst.CSTNode], sites: frozenset[cst.SimpleStatementLine]
) -> bool:
    """False only when a yield is the first thing the generator can execute."""
    if body and is_docstring(body[0]):
        body = body[1:]
    if not body:
        return True
    first = body[0]
    if first in sites:
        return False
    if isinstance(first, (cst.Try, cst.TryStar)) and isinstance(first.body, cst.IndentedBlock):
        return _runs_code_before_yield(first.body.body, sites)
    return True


def find_guards(func: cst.FunctionDef, sites: Sequence[cst.SimpleStatementLine]) -> GuardFacts:
    """The guard facts of `func`, whose yield statements are `sites`."""
    site_set = frozenset(sites)
    finder = _TryFinder(site_set)
    finder.walk(_suite(func.body), ())
    guarded = frozenset(finder.guarded)
    handlers = frozenset(finder.handlers)
    withs = (
        _in_source_order(func, cst.With, guarded)
        if any(isinstance(n, cst.With) for n in guarded)
        else ()
    )
    except_star = any(isinstance(n, cst.TryStar) for n in handlers)
    body = func.body.body if isinstance(func.body, cst.IndentedBlock) else ()
    return GuardFacts(
        guarded=guarded,
        handlers=handlers,
        withs=withs,
        except_star=except_star,
        has_pre_code=_runs_code_before_yield(body, site_set),
        sees={
            node: (
                frozenset(finder.by_handlers.get(node, ())),
                frozenset(finder.by_finally.get(node, ())),
            )
            for node in guarded
        },
    )
