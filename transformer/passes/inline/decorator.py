"""Building one decorator's code for a step: renamed, its yields marked, its guards built.

One traversal of the decorator's body does all three (a libcst traversal rebuilds every
node, so one is cheaper than three): the shared `Renamer` renames, and this pass replaces
each yield statement with a placeholder (`yields.Placeholders` later puts what the yield
does there), drops the decorator's own `global` statements (the step declares them once,
at its top) and guards the statements the analysis marked (see `guards`).

Steps that rename a decorator the same way share one result: nodes are immutable.
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst

from ...support.code import statements_of
from ...support.memo import NodeMemo
from ...support.rename import Renamer
from ...support.source import is_docstring
from ..analyze import GeneratorInfo
from .guards import guarded_try, guarded_try_star, spelled_out_with
from .plan import LayerPlan

PLACEHOLDER = "__decoflow_yield_{}__"


def renamer(info: GeneratorInfo, locals_: Mapping[str, str], globals_: Mapping[str, str]):
    """The arguments of a `Renamer` for the decorator's code as it reads in a step."""
    names = info.names
    aliases = {
        alias: locals_[local]
        for alias, local in names.local_aliases.items()
        if locals_.get(local, local) != local
    }
    refs = ((names.local_refs, locals_), (names.global_refs, globals_))
    return refs, aliases, {**globals_, **locals_}


class InStep(Renamer):
    """Decorator code as it reads in a step: renamed, and each `inspect.getsource(<a
    step>)` call replaced by the constant holding that step's source (see `carry`)."""

    def __init__(self, plan: LayerPlan) -> None:
        refs, aliases, items = renamer(plan.layer.info, plan.locals, plan.layer.globals)
        super().__init__(refs, aliases=aliases, items=items)
        self.sources = dict(plan.layer.sources)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        constant = self.sources.get(original)  # the step's source, as natively
        if constant is None:
            return updated
        return cst.Name(constant, lpar=updated.lpar, rpar=updated.rpar)


class DecoratorCode(InStep):
    """Renames a decorator's names, marks its yields with placeholders, guards its
    statements."""

    def __init__(self, plan: LayerPlan) -> None:
        super().__init__(plan)
        info = plan.layer.info
        guard = plan.guard
        self.info = info
        self.sites = {s.stmt: s.index for s in info.sites}
        self.guard = guard
        # each guarded `with` -> the names of its items' parts
        self.with_names = dict(guard.withs) if guard else {}

    def leave_Global(
        self, original: cst.Global, updated: cst.Global
    ) -> cst.Global | cst.RemovalSentinel:
        # The decorator's own `global` moves to the top of the step (Python wants it before
        # any use of the name there, and another decorator above may use it first).
        return cst.RemoveFromParent() if original in self.info.global_statements else updated

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement:
        index = self.sites.get(original)
        if index is None:
            return updated
        return cst.SimpleStatementLine(
            body=[cst.Expr(cst.Name(PLACEHOLDER.format(index)))],
            leading_lines=updated.leading_lines,
        )

    def leave_With(
        self, original: cst.With, updated: cst.With
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        if original not in self.with_names:
            return updated
        return spelled_out_with(updated, self.guard, self.with_names[original])  # type: ignore[arg-type]

    def leave_Try(self, original: cst.Try, updated: cst.Try) -> cst.Try:
        guard = self.guard
        if guard is None or original not in guard.handlers | guard.finals:
            return updated
        return guarded_try(updated, guard, original in guard.handlers, original in guard.finals)

    def leave_TryStar(
        self, original: cst.TryStar, updated: cst.TryStar
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        guard = self.guard
        if guard is None:
            return updated
        if original in guard.handlers:
            return guarded_try_star(updated, guard)
        if original in guard.finals:
            return guarded_try(updated, guard, False, True)
        return updated


_CODE: NodeMemo[list[cst.BaseStatement]] = NodeMemo()
_PIECES: NodeMemo[cst.CSTNode] = NodeMemo()


def _renaming(plan: LayerPlan) -> tuple:
    layer = plan.layer
    return (tuple(sorted(plan.locals.items())), tuple(sorted(layer.globals.items())), layer.sources)


def decorator_code(plan: LayerPlan) -> list[cst.BaseStatement]:
    """The decorator's statements as the step runs them: renamed, with yield placeholders
    and guards, without its docstring (it documents the decorator; inlined it is noise)."""
    info = plan.layer.info

    def compute() -> list[cst.BaseStatement]:
        code = info.func.body.visit(DecoratorCode(plan))
        stmts = statements_of(code)  # type: ignore[arg-type]
        if stmts and is_docstring(stmts[0]):
            stmts = stmts[1:]
        return stmts

    return list(_CODE.get(info.func, (*_renaming(plan), plan.guard), compute))


def renamed(node: cst.CSTNode, plan: LayerPlan) -> cst.CSTNode:
    """A piece of the decorator (a yield's value or target) with its names as in the step."""

    def compute() -> cst.CSTNode:
        return node.visit(InStep(plan))

    return _PIECES.get(node, _renaming(plan), compute)
