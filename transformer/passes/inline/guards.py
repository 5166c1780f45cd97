"""Building guards: a decorator's `try`/`with` statements that step aside for a failure
Metaflow would not throw into it (see `setup` for when, and `Guard` for the names).

Each function takes a statement of the decorator's code (already renamed) and returns it
guarded; `decorator.DecoratorCode` calls them for the statements the analysis marked.
"""

from __future__ import annotations

from typing import TypeVar

import libcst as cst

from ...support.code import block, comment_line, line, statements_of, trailing
from .plan import Guard

TryNode = TypeVar("TryNode", cst.Try, cst.TryStar)


def spelled_out_with(
    node: cst.With, guard: Guard, names: tuple[tuple[str, ...], ...]
) -> cst.FlattenSentinel[cst.BaseStatement]:
    """`with` around the yield, spelled out (PEP 343) so that its `__exit__` can step aside
    when a decorator below fails before its yield, as Metaflow never throws that in. Each
    item of `with a, b:` is spelled out, outermost first (an unguarded `b` could swallow
    the failure that `a` must not see); `names` has the names of each item's parts."""
    stmts = statements_of(node.body)
    for item, item_names in reversed(list(zip(node.items, names))):
        stmts = _spelled_out(item, stmts, item_names, guard)
    note = comment_line("with ...: (spelled out by decoflow)")
    stmts[0] = stmts[0].with_changes(leading_lines=[*node.leading_lines, note])
    return cst.FlattenSentinel(stmts)


def _spelled_out(
    item: cst.WithItem, body: list[cst.BaseStatement], names: tuple[str, ...], guard: Guard
) -> list[cst.BaseStatement]:
    """`with item: body` as PEP 343 writes it, its exit skipped while `setting_up` says a
    decorator below is still setting up."""
    mgr, exited, exc = names
    enter = f"type({mgr}).__enter__({mgr})"
    stmts: list[cst.BaseStatement] = [
        cst.SimpleStatementLine(
            body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(mgr))], value=item.item)]
        )
    ]
    if item.asname is not None:
        entered = cst.Assign(
            targets=[cst.AssignTarget(item.asname.name)], value=cst.parse_expression(enter)
        )
        stmts.append(cst.SimpleStatementLine(body=[entered]))
    else:
        stmts.append(line(enter))
    stmts.append(line(f"{exited} = False"))
    # The call to `__exit__`, one argument a line (as black keeps a call with a trailing
    # comma): on one line it runs far past the line length.
    args = "".join(f"    {a},\n" for a in (mgr, f"type({exc})", exc, f"{exc}.__traceback__"))
    exit_ = f"type({mgr}).__exit__(\n{args})"
    handler = block(
        [
            line(f"{exited} = True"),
            line(f"if {guard.below_setting_up} or not {exit_}:\n    raise\n"),
        ]
    )
    stmts.append(
        cst.Try(
            body=block(body),
            handlers=[
                cst.ExceptHandler(
                    body=handler, type=cst.Name("BaseException"), name=cst.AsName(cst.Name(exc))
                )
            ],
            finalbody=cst.Finally(
                body=block(
                    [line(f"if not {exited}:\n    type({mgr}).__exit__({mgr}, None, None, None)\n")]
                )
            ),
        )
    )
    return stmts


def guarded_try(node: TryNode, guard: Guard, handlers_see_it: bool, final_sees_it: bool) -> TryNode:
    """Handlers step aside (re-raise) and `finally` does not run while a decorator below
    is still setting up, as Metaflow never throws that failure into this one.
    `handlers_see_it`, `final_sees_it`: such a failure may reach them (else they stay)."""
    handlers = list(node.handlers)
    if handlers_see_it:
        reraise = line(f"if {guard.below_setting_up}:\n    raise\n")
        handlers = [h.with_changes(body=block([reraise, *statements_of(h.body)])) for h in handlers]
    finalbody = _settled_finally(node, guard) if final_sees_it else node.finalbody
    return node.with_changes(handlers=handlers, finalbody=finalbody)


def guarded_try_star(node: cst.TryStar, guard: Guard) -> cst.FlattenSentinel[cst.BaseStatement]:
    """`try/except*` with a yield in its body. A bare `raise` in an `except*` handler would
    re-raise a failure of a decorator below wrapped in an ExceptionGroup, so that failure
    is kept aside before the handlers can match it, and raised as it was after the
    statement."""
    kept, caught = guard.star
    inner = cst.Try(
        body=block(statements_of(node.body)),
        handlers=[
            cst.ExceptHandler(
                body=block([line(f"if {guard.settled}:\n    raise\n"), line(f"{kept} = {caught}")]),
                type=cst.Name("BaseException"),
                name=cst.AsName(cst.Name(caught)),
            )
        ],
    )
    # The handlers stay as written (the failure below never reaches them); the body has
    # "finished" when it was kept aside, so `else` needs the same guard as `finally`.
    orelse = node.orelse
    if orelse is not None:
        orelse = orelse.with_changes(body=_when_settled(orelse.body, guard))
    return cst.FlattenSentinel(
        [
            trailing(line(f"{kept} = None"), "a failure of a decorator below, kept from except*"),
            node.with_changes(
                body=block([inner]), orelse=orelse, finalbody=_settled_finally(node, guard)
            ),
            line(f"if {kept} is not None:\n    raise {kept}\n"),
        ]
    )


def _settled_finally(node: cst.Try | cst.TryStar, guard: Guard) -> cst.Finally | None:
    if node.finalbody is None:
        return None
    return node.finalbody.with_changes(body=_when_settled(node.finalbody.body, guard))


def _when_settled(suite: cst.BaseSuite, guard: Guard) -> cst.IndentedBlock:
    """`suite` run only when no decorator below is still setting up."""
    test = cst.parse_expression(guard.settled)
    return block([cst.If(test=test, body=block(statements_of(suite)))])
