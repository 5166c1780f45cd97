"""Building yields: what the compiled step does where a decorator yielded.

Each yield of the decorator was replaced by a placeholder (`decorator.PLACEHOLDER`);
`Placeholders` puts what the yield does there, as its `YieldRoute` says: count the yield
(and fail as Metaflow does on a second one), reset the setup marker, then run what is
below it, skip it, give `self.next` arguments, replace the step, or ask a runtime helper.
The statement after a yield is marked as the decorator's after-code.
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst

from ...support.code import block, line, string_literal, trailing, with_comment
from ...support.names import child_nodes
from ..analyze import YieldKind
from ..discover import StepSite
from .dead_handlers import HandlerFolder
from .decorator import renamed
from .plan import LayerPlan, YieldRoute


def build_yield(
    plan: LayerPlan,
    route: YieldRoute,
    run_inner: list[cst.BaseStatement],
    site: StepSite,
    flag: str,
) -> list[cst.BaseStatement]:
    """The statements standing for one yield of `plan`'s decorator in step `site`;
    `run_inner` runs what is below the decorator, `flag` is the setup marker."""
    name = plan.layer.info.name
    ys = route.site
    out: list[cst.BaseStatement] = []
    if route.surely_second:  # Metaflow fails the task here, outside every decorator
        if plan.bypass:
            out.append(line(plan.bypass.strip()))
        return [*out, line(_yielded_twice(plan))]
    if route.counts:
        assert plan.yielded is not None
        if route.checks_second:
            out.append(line(f"if {plan.yielded}:\n    {plan.bypass}{_yielded_twice(plan)}"))
        out.append(line(f"{plan.yielded} = True"))
    # What is below starts by setting the marker itself only where it runs right away.
    if route.resets_setup and not (ys.kind is YieldKind.RUN and _starts_with(run_inner, flag)):
        out.append(line(f"{flag} = 0"))
    value = renamed(ys.value, plan) if ys.value is not None else None

    def helper_call(helper: str) -> cst.Call:
        """`helper(self, <value>[, inputs])`, built as nodes (no print-and-parse)."""
        args = [cst.Arg(cst.Name(site.self_name)), cst.Arg(value)]  # type: ignore[arg-type]
        if site.inputs_name and helper != "decoflow_next_with":
            args.append(cst.Arg(cst.Name(site.inputs_name)))
        comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        return cst.Call(
            func=cst.Name(helper),
            args=[a.with_changes(comma=comma) for a in args[:-1]] + [args[-1]],
        )

    kind = ys.kind
    if kind is YieldKind.RUN:
        out.extend(run_inner)  # nothing to run: an empty block gets `pass` where needed
    elif kind is YieldKind.SKIP:
        if out and isinstance(out[-1], cst.SimpleStatementLine):
            out[-1] = trailing(out[-1], f"@{name} skips the step")
        else:
            out.append(trailing(line("pass"), f"@{name} skips the step"))
    elif kind is YieldKind.SKIP_NEXT:
        assert route.helper is not None
        call = cst.SimpleStatementLine(body=[cst.Expr(helper_call(route.helper))])
        out.append(trailing(call, f"@{name} skips the step; self.next gets these"))
    elif kind is YieldKind.REPLACE:
        assert route.helper is not None
        call = cst.SimpleStatementLine(body=[cst.Expr(helper_call(route.helper))])
        out.append(trailing(call, f"@{name} replaces the step"))
    else:
        assert route.helper is not None
        out.append(
            with_comment(
                cst.If(test=helper_call(route.helper), body=block(run_inner or [line("pass")])),
                f"@{name} decides at run time: run, skip or replace the step",
            )
        )
    if ys.target is not None:
        target = renamed(ys.target, plan)
        assign = cst.Assign(targets=[cst.AssignTarget(target)], value=cst.Name("None"))
        out.append(cst.SimpleStatementLine(body=[assign]))
    return out


def lift_skip_notes(stmts: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
    """`stmts` without the `pass` lines that only carry a skip note (`pass  # @d skips the
    step`) where another statement follows in the block: the note becomes a comment line
    above it (`pass` is needed only alone in a block)."""
    out: list[cst.BaseStatement] = []
    held: list[cst.EmptyLine] = []
    for i, stmt in enumerate(stmts):
        if i + 1 < len(stmts) and _is_skip_pass(stmt):
            note = cst.EmptyLine(comment=stmt.trailing_whitespace.comment)  # type: ignore[attr-defined]
            held.extend([*stmt.leading_lines, note])
            continue
        if held:
            stmt = stmt.with_changes(leading_lines=[*held, *stmt.leading_lines])
            held = []
        out.append(stmt)
    return out


def _is_skip_pass(stmt: cst.BaseStatement) -> bool:
    if not (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Pass)
    ):
        return False
    comment = stmt.trailing_whitespace.comment
    return comment is not None and comment.value.endswith(" skips the step")


def _yielded_twice(plan: LayerPlan) -> str:
    """Metaflow's failure for a second yield of the decorator, raised."""
    metaflow_name = plan.layer.use.definition.metaflow_name
    return f"raise decoflow_yielded_twice({string_literal(metaflow_name)}) from None\n"


def _starts_with(stmts: list[cst.BaseStatement], flag: str) -> bool:
    """Whether `stmts` begin by assigning `flag` (entering a `try:` runs nothing): the code
    below then sets the setup marker itself, and no reset is needed."""
    if (
        stmts
        and isinstance(stmts[0], (cst.Try, cst.TryStar))
        and isinstance(stmts[0].body, cst.IndentedBlock)
    ):
        return _starts_with(list(stmts[0].body.body), flag)
    if not stmts or not isinstance(stmts[0], cst.SimpleStatementLine):
        return False
    first = stmts[0].body[0]
    return (
        isinstance(first, cst.Assign)
        and isinstance(first.targets[0].target, cst.Name)
        and first.targets[0].target.value == flag
    )


class Placeholders:
    """Replaces yield placeholders with what each yield does; marks where after-code starts.
    After a placeholder in `ends` (its expansion always raises) the rest of its block is
    left out: it can never run.

    Walks statements only (placeholders are statements), not expressions: cheap."""

    def __init__(
        self,
        expansions: Mapping[str, list[cst.BaseStatement]],
        after_note: str,
        ends: frozenset[str] = frozenset(),
        always_bound: frozenset[str] = frozenset(),
    ) -> None:
        self.expansions = expansions
        self.after_note = after_note
        self.ends = ends
        self.always_bound = always_bound
        self.folder: HandlerFolder | None = None

    def code(self, stmts: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        """The decorator's code `stmts` with its placeholders replaced, and each `try`
        around a yield whose body can no longer raise folded (see `dead_handlers`);
        `always_bound`: names the step binds outside it (its flags)."""
        expanded = [s for stmts_ in self.expansions.values() for s in stmts_]
        self.folder = HandlerFolder([*stmts, *expanded], self.always_bound)
        return self.statements(stmts)

    def _key(self, stmt: cst.CSTNode) -> str | None:
        if (
            isinstance(stmt, cst.SimpleStatementLine)
            and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Expr)
            and isinstance(stmt.body[0].value, cst.Name)
            and stmt.body[0].value.value in self.expansions
        ):
            return stmt.body[0].value.value
        return None

    def statements(self, stmts: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        note_next = False
        for stmt in stmts:
            key = self._key(stmt)
            if key is not None:
                expansion = list(self.expansions[key])
                if stmt.leading_lines and expansion:
                    expansion[0] = expansion[0].with_changes(
                        leading_lines=[*stmt.leading_lines, *expansion[0].leading_lines]
                    )
                out.extend(expansion)
                if key in self.ends:
                    break
                note_next = True
                continue
            done = self._folded(stmt, self._compound(stmt))
            if note_next and done:
                done[0] = with_comment(done[0], self.after_note)
                note_next = False
            out.extend(done)
        return lift_skip_notes(out)

    def _folded(
        self, original: cst.BaseStatement, stmt: cst.BaseStatement
    ) -> list[cst.BaseStatement]:
        """`stmt` (`original` with its placeholders replaced), a `try` around a yield folded
        when its body can no longer raise."""
        if (
            self.folder is not None
            and isinstance(stmt, (cst.Try, cst.TryStar))
            and isinstance(original, (cst.Try, cst.TryStar))
            and self._holds_placeholder(original.body)
        ):
            folded = self.folder.fold(stmt)
            if folded is not None:
                return folded
        return [stmt]

    def _suite(self, suite: cst.BaseSuite) -> cst.BaseSuite:
        if not isinstance(suite, cst.IndentedBlock):
            return suite
        return suite.with_changes(body=self.statements(list(suite.body)) or [line("pass")])

    def _holds_placeholder(self, suite: cst.BaseSuite) -> bool:
        stack: list[cst.CSTNode] = [suite]
        while stack:
            node = stack.pop()
            if isinstance(node, cst.SimpleStatementLine):
                if self._key(node) is not None:
                    return True
            elif not isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.BaseExpression)):
                stack.extend(child_nodes(node))
        return False

    def _compound(self, stmt: cst.BaseStatement) -> cst.BaseStatement:
        if isinstance(stmt, (cst.SimpleStatementLine, cst.FunctionDef, cst.ClassDef)):
            return stmt
        if isinstance(stmt, cst.If):
            orelse = stmt.orelse
            if isinstance(orelse, cst.If):
                orelse = self._compound(orelse)
            elif orelse is not None:
                orelse = orelse.with_changes(body=self._suite(orelse.body))
            return stmt.with_changes(body=self._suite(stmt.body), orelse=orelse)
        if isinstance(stmt, (cst.Try, cst.TryStar)):
            return stmt.with_changes(
                body=self._suite(stmt.body),
                handlers=[h.with_changes(body=self._suite(h.body)) for h in stmt.handlers],
                orelse=stmt.orelse.with_changes(body=self._suite(stmt.orelse.body))
                if stmt.orelse
                else None,
                finalbody=stmt.finalbody.with_changes(body=self._suite(stmt.finalbody.body))
                if stmt.finalbody
                else None,
            )
        if isinstance(stmt, cst.With):
            return stmt.with_changes(body=self._suite(stmt.body))
        if isinstance(stmt, cst.Match):
            cases = [c.with_changes(body=self._suite(c.body)) for c in stmt.cases]
            return stmt.with_changes(cases=cases)
        return stmt  # loops hold no yields (DF304)
