"""Control flow: how many yields each path of the decorator may have reached.

Metaflow sends into the generator once: a path that finishes without yielding, or reaches
a second yield, fails the task. A tiny abstract interpreter walks the statements with the
set of yield counts (0, 1, or 2 meaning "two or more") that may hold at each point, and
tells which yields may be a second one and whether the generator may finish without one.
A yield reached twice on every ordinary path is refused (DF308); one that can never be
reached too (DF301).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import libcst as cst

from ...support.diagnostics import NEVER_YIELDS, YIELDS_TWICE, CompileError, Location
from ...support.records import frozen


@frozen
class FlowFacts:
    """What the yield counts say about the decorator as a whole and about each yield."""

    may_not_yield: bool  # some path finishes (or returns) without yielding
    maybe_second: frozenset[cst.SimpleStatementLine]  # yields another may have preceded
    # yields another preceded on every path (reached only through an exception, else DF308):
    # Metaflow fails the task there, whatever the yield says
    surely_second: frozenset[cst.SimpleStatementLine] = frozenset()


@dataclass
class _Flow:
    """The yield counts leaving a statement normally, by `return`, and by an exception."""

    normal: set[int]
    returned: set[int]
    raised: set[int]


class _FlowAnalysis:
    """Walks statements with the yield counts that may hold before each."""

    def __init__(self, sites: Sequence[cst.SimpleStatementLine]) -> None:
        self.sites = frozenset(sites)
        self.at_site: dict[cst.SimpleStatementLine, set[int]] = {}
        self.normally: dict[cst.SimpleStatementLine, set[int]] = {}  # without an exception
        self._handling = 0

    def block(self, stmts: Sequence[cst.CSTNode], states: set[int]) -> _Flow:
        flow = _Flow(set(states), set(), set())
        for stmt in stmts:
            if not flow.normal:
                break
            step = self.stmt(stmt, flow.normal)
            flow.normal = step.normal
            flow.returned |= step.returned
            flow.raised |= step.raised
        return flow

    @staticmethod
    def body_of(node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
        body = getattr(node, "body", None)
        if isinstance(body, cst.IndentedBlock):
            return tuple(body.body)
        if isinstance(body, cst.SimpleStatementSuite):
            return (cst.SimpleStatementLine(body=body.body),)
        return ()

    def stmt(self, stmt: cst.CSTNode, states: set[int]) -> _Flow:
        if isinstance(stmt, cst.SimpleStatementLine):
            return self._simple(stmt, states)
        if isinstance(stmt, cst.If):
            then = self.block(self.body_of(stmt), states)
            if isinstance(stmt.orelse, cst.If):
                other = self.stmt(stmt.orelse, states)
            elif stmt.orelse is not None:
                other = self.block(self.body_of(stmt.orelse), states)
            else:
                other = _Flow(set(states), set(), set(states))
            return _Flow(
                then.normal | other.normal,
                then.returned | other.returned,
                then.raised | other.raised,
            )
        if isinstance(stmt, (cst.For, cst.While)):
            body = self.block(self.body_of(stmt), states)
            orelse = (
                self.block(self.body_of(stmt.orelse), states)
                if stmt.orelse
                else _Flow(set(), set(), set())
            )
            return _Flow(
                set(states) | body.normal | orelse.normal,
                body.returned | orelse.returned,
                body.raised | orelse.raised | set(states),
            )
        if isinstance(stmt, (cst.Try, cst.TryStar)):  # try/except and try/except*
            return self._try(stmt, states)
        if isinstance(stmt, cst.With):
            body = self.block(self.body_of(stmt), states)
            return _Flow(body.normal, body.returned, body.raised)
        if isinstance(stmt, cst.Match):
            # `case _:` or `case name:` without a guard, last: some case always runs
            last = stmt.cases[-1]
            irrefutable = (
                last.guard is None
                and isinstance(last.pattern, cst.MatchAs)
                and last.pattern.pattern is None
            )
            normal = set() if irrefutable else set(states)
            returned: set[int] = set()
            raised = set(states)
            for case in stmt.cases:
                c = self.block(self.body_of(case), states)
                normal |= c.normal
                returned |= c.returned
                raised |= c.raised
            return _Flow(normal, returned, raised)
        return _Flow(set(states), set(), set(states))

    def _simple(self, stmt: cst.SimpleStatementLine, states: set[int]) -> _Flow:
        if stmt in self.sites:
            self.at_site.setdefault(stmt, set()).update(states)
            if not self._handling:
                self.normally.setdefault(stmt, set()).update(states)
            after = {min(s + 1, 2) for s in states}
            return _Flow(after, set(), after)  # what is thrown in arrives after the yield
        for small in stmt.body:
            if isinstance(small, cst.Return):
                return _Flow(set(), set(states), set(states))
            if isinstance(small, (cst.Raise, cst.Break, cst.Continue)):
                return _Flow(set(), set(), set(states))
        return _Flow(set(states), set(), set(states))

    def _try(self, stmt: cst.Try | cst.TryStar, states: set[int]) -> _Flow:
        body = self.block(self.body_of(stmt), states)
        normal: set[int] = set()
        returned = set(body.returned)
        raised = set(body.raised)
        for handler in stmt.handlers:
            self._handling += 1
            h = self.block(self.body_of(handler), body.raised)
            self._handling -= 1
            normal |= h.normal
            returned |= h.returned
            raised |= h.raised
        if stmt.orelse is not None:
            e = self.block(self.body_of(stmt.orelse), body.normal)
            normal |= e.normal
            returned |= e.returned
            raised |= e.raised
        else:
            normal |= body.normal
        if stmt.finalbody is not None:
            f = self.block(self.body_of(stmt.finalbody), normal | returned | raised)
            if not f.normal:
                return _Flow(set(), f.returned, f.raised | raised)
            raised |= f.raised
        return _Flow(normal, returned, raised)


def follow_flow(
    func: cst.FunctionDef,
    sites: Sequence[tuple[cst.SimpleStatementLine, cst.Yield]],
    label: str,
    where: Location,
    locate: Callable[[cst.Yield], Location],
) -> FlowFacts:
    """The flow facts of `func` whose yield statements are `sites` (in source order), or
    the problem: a yield never reached (DF301), or reached twice on one path (DF308)."""
    flow = _FlowAnalysis([stmt for stmt, _ in sites])
    body = tuple(func.body.body) if isinstance(func.body, cst.IndentedBlock) else ()
    result = flow.block(body, {0})
    if not any(flow.at_site.values()):
        raise CompileError([NEVER_YIELDS(f"{label} can never reach its yield", where)])
    for stmt, y in sites:
        states = flow.normally.get(stmt, set())  # reached only through an exception: run time
        if states and 0 not in states:
            message = f"{label} yields twice on one path; a decorator must yield exactly once"
            raise CompileError([YIELDS_TWICE(message, locate(y))])
    return FlowFacts(
        may_not_yield=0 in (result.normal | result.returned),
        maybe_second=frozenset(
            stmt for stmt, _ in sites if any(s >= 1 for s in flow.at_site.get(stmt, set()))
        ),
        surely_second=frozenset(
            stmt for stmt, _ in sites if flow.at_site.get(stmt) and 0 not in flow.at_site[stmt]
        ),
    )
