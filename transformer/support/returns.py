"""Return elimination: make `return` leave an inlined block instead of the whole step.

Inlined code shares the step's function, so a `return` in a decorator (after its yield) or
in the step body must only skip the rest of its own block. Each `return` becomes
`<flag> = True` (plus `break` inside loops) and the statements after it are guarded by
`if not <flag>:`; `try/else` clauses are guarded too. Nested functions are left alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from .code import block, line, statements_of

_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


def contains_return(node: cst.CSTNode) -> bool:
    found = False

    class _V(cst.CSTVisitor):
        def on_visit(self, n: cst.CSTNode) -> bool:
            nonlocal found
            if found or isinstance(n, _SCOPES):
                return False
            if isinstance(n, cst.Return):
                found = True
                return False
            return True

    node.visit(_V())
    return found


def _set(flag: str, value: bool) -> cst.BaseStatement:
    return line(f"{flag} = {value}")


def _is_trivial(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, (cst.Name, cst.Integer, cst.SimpleString, cst.Float))


class ReturnEliminator:
    """Rewrites a statement list so that `return` only leaves that list."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def statements(
        self, stmts: Sequence[cst.BaseStatement], in_loop: bool = False
    ) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, cst.SimpleStatementLine):
                ret_at = next(
                    (j for j, s in enumerate(stmt.body) if isinstance(s, cst.Return)), None
                )
                if ret_at is None:
                    out.append(stmt)
                    continue
                before = [
                    s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT) for s in stmt.body[:ret_at]
                ]
                ret = stmt.body[ret_at]
                assert isinstance(ret, cst.Return)
                lines: list[cst.BaseStatement] = [cst.SimpleStatementLine(body=[s]) for s in before]
                if ret.value is not None and not _is_trivial(ret.value):
                    lines.append(cst.SimpleStatementLine(body=[cst.Expr(ret.value)]))
                lines.append(_set(self.flag, True))
                if in_loop:
                    lines.append(line("break"))
                lines[0] = lines[0].with_changes(leading_lines=stmt.leading_lines)
                out.extend(lines)
                return out
            if not contains_return(stmt):
                out.append(stmt)
                continue
            out.append(self.compound(stmt, in_loop))
            rest = list(stmts[i + 1 :])
            if in_loop:
                if isinstance(stmt, (cst.For, cst.While)):
                    out.append(self._if_flag(line("break")))
                out.extend(self.statements(rest, in_loop))
            elif rest:
                out.append(
                    cst.If(
                        test=cst.UnaryOperation(cst.Not(), cst.Name(self.flag)),
                        body=block(self.statements(rest, in_loop)),
                    )
                )
            return out
        return out

    def _if_flag(self, stmt: cst.BaseStatement) -> cst.If:
        return cst.If(test=cst.Name(self.flag), body=block([stmt]))

    def _suite(self, suite: cst.BaseSuite, in_loop: bool) -> cst.IndentedBlock:
        new = block(self.statements(statements_of(suite), in_loop))
        if isinstance(suite, cst.IndentedBlock):
            new = new.with_changes(header=suite.header, footer=suite.footer)
        return new

    def compound(self, stmt: cst.BaseCompoundStatement, in_loop: bool) -> cst.BaseCompoundStatement:
        if isinstance(stmt, cst.If):
            orelse = stmt.orelse
            if isinstance(orelse, cst.If):
                orelse = self.compound(orelse, in_loop)
            elif isinstance(orelse, cst.Else):
                orelse = orelse.with_changes(body=self._suite(orelse.body, in_loop))
            return stmt.with_changes(body=self._suite(stmt.body, in_loop), orelse=orelse)
        if isinstance(stmt, (cst.For, cst.While)):
            orelse = stmt.orelse
            if orelse is not None:
                orelse = orelse.with_changes(body=self._suite(orelse.body, in_loop))
            return stmt.with_changes(body=self._suite(stmt.body, True), orelse=orelse)
        if isinstance(stmt, (cst.Try, cst.TryStar)):
            handlers = [h.with_changes(body=self._suite(h.body, in_loop)) for h in stmt.handlers]
            orelse = stmt.orelse
            if orelse is not None:
                body = self._suite(orelse.body, in_loop)
                if contains_return(stmt.body) and not in_loop:
                    body = block(
                        [cst.If(test=cst.UnaryOperation(cst.Not(), cst.Name(self.flag)), body=body)]
                    )
                orelse = orelse.with_changes(body=body)
            finalbody = stmt.finalbody
            if finalbody is not None:
                finalbody = finalbody.with_changes(body=self._suite(finalbody.body, in_loop))
            return stmt.with_changes(
                body=self._suite(stmt.body, in_loop),
                handlers=handlers,
                orelse=orelse,
                finalbody=finalbody,
            )
        if isinstance(stmt, cst.With):
            return stmt.with_changes(body=self._suite(stmt.body, in_loop))
        if isinstance(stmt, cst.Match):
            cases = [c.with_changes(body=self._suite(c.body, in_loop)) for c in stmt.cases]
            return stmt.with_changes(cases=cases)
        return stmt
