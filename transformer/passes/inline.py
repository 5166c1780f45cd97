"""Pass 5: rewrite one step: inline each custom decorator's code around the step body.

For a step `@a @b @step def s(self): BODY; self.next(...)` the result is a's code with its
yield replaced by b's code, whose yield is replaced by BODY, followed by the step's own
literal `self.next(...)`. Around that simple idea sit the rules that keep Metaflow's meaning:

* names: a decorator's locals keep their names unless that would capture or shadow anything
  (then `<decorator>_<name>`); its `flow` parameter reads as the step's `self` where that is
  safe; `step_name`, `inputs` and `attributes` become plain assignments;
* `return`: only leaves the decorator's (or the body's) block (see `returns`);
* yields: what each yield says (run, skip, skip with `self.next` arguments, replace, decided
  at run time) is written out, with the runtime helpers for transitions; a decorator whose
  yields reach the body from several places calls one local function instead of copying it;
* failure routing: an inner decorator's *before* code failing must fail the task without
  reaching the outer decorators' `except`/`finally` (Metaflow does not throw it into them):
  when that can happen, a `setting_up` marker says whose before-code runs, and the outer
  handlers step aside for it;
* run-time checks where Metaflow has them: a second yield, or none, fails the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import libcst as cst

from ..support.code import block, comment_line, line, statements_of, trailing, with_comment
from ..support.memo import NodeMemo
from ..support.names import NameAllocator, child_nodes, names_in
from ..support.returns import ReturnEliminator, contains_return
from ..support.source import is_docstring
from ..support.step_facts import StepFacts
from .analyze import GeneratorInfo, YieldKind, YieldSite
from .discover import DecoratorUse, StepSite

PLACEHOLDER = "__decoflow_yield_{}__"


def _has_arguments(next_line: cst.BaseStatement) -> bool:
    """A transition with arguments (foreach=, condition=, num_parallel=) reads artifacts."""
    call = next_line.body[0].value  # type: ignore[attr-defined]
    return any(arg.keyword is not None for arg in call.args) or any(
        isinstance(arg.value, cst.Dict) for arg in call.args
    )


def yields_again(info: GeneratorInfo) -> bool:
    """Whether the decorator may reach a second yield at run time."""
    return any(s.maybe_second for s in info.sites)


def miscounts(info: GeneratorInfo) -> bool:
    """Whether the decorator may reach no yield or a second one at run time (Metaflow then
    fails the task outside every decorator)."""
    return info.may_not_yield or yields_again(info)


def fails_past_outer(info: GeneratorInfo) -> bool:
    """Whether code of this decorator may fail where the decorators above it must not see it:
    its before-code, or a yield count going wrong."""
    return info.has_pre_code or miscounts(info)


def unused_params(info: GeneratorInfo) -> set[str]:
    """Parameters the decorator never reads: nothing is bound for them."""
    param_nodes = {id(p.name) for p in info.func.params.params}
    read = {n for i, n in info.local_refs.items() if i not in param_nodes}
    return {p for p in info.params if p not in read}


def is_next_call(stmt: cst.BaseStatement, self_name: str) -> bool:
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1):
        return False
    expr = stmt.body[0]
    if not (isinstance(expr, cst.Expr) and isinstance(expr.value, cst.Call)):
        return False
    func = expr.value.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value == "next"
        and isinstance(func.value, cst.Name)
        and func.value.value == self_name
    )


@dataclass(frozen=True)
class Layer:
    """One decorator use on the step, with its analysis, at `level` (1 = outermost)."""

    use: DecoratorUse
    info: GeneratorInfo
    level: int
    globals: dict[str, str]  # its module-level names -> output names
    sources: tuple[tuple[int, str], ...] = ()  # id of an inspect.getsource call -> constant


@dataclass(frozen=True)
class Guard:
    """How a decorator's handlers, `finally` and `with` exits step aside while a decorator
    below it is still setting up (`flag > level`), with the names its spelled-out statements
    use (claimed fresh for the step)."""

    level: int
    flag: str
    withs: tuple[tuple[tuple[str, ...], ...], ...] = ()  # per `with` around a yield, per item: manager, exited, error
    star: tuple[str, ...] = ("", "")  # for `try/except*` around a yield: the failure kept aside, as caught

    @property
    def below_setting_up(self) -> str:
        return f"{self.flag} > {self.level}"

    @property
    def settled(self) -> str:
        return f"{self.flag} <= {self.level}"


TryNode = TypeVar("TryNode", cst.Try, cst.TryStar)


class _DecoratorPass(cst.CSTTransformer):
    """Renames a decorator's names, marks its yields with placeholders, guards its handlers."""

    def __init__(self, layer: Layer, locals_: dict[str, str], guard: Guard | None) -> None:
        self.info = layer.info
        self.locals = locals_
        self.globals = layer.globals
        self.sources = dict(layer.sources)
        self.site_ids = {id(s.stmt): s.index for s in layer.info.sites}
        self.guard = guard
        # id of each `with` around a yield -> the names of its items
        self.with_names = dict(zip((id(w) for w in guarded_withs(self.info)), guard.withs)) if guard else {}

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        local = self.info.local_refs.get(id(original))
        if local is not None:
            return updated.with_changes(value=self.locals.get(local, local))
        glob = self.info.global_refs.get(id(original))
        if glob is not None:
            new = self.globals.get(glob, glob)
            return cst.Dict(elements=[]) if new == "{}" else updated.with_changes(value=new)
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        constant = self.sources.get(id(original))  # the step's source, as natively
        if constant is None:
            return updated
        return cst.Name(constant, lpar=updated.lpar, rpar=updated.rpar)

    def leave_ImportAlias(self, original: cst.ImportAlias, updated: cst.ImportAlias) -> cst.ImportAlias:
        local = self.info.local_aliases.get(id(original))
        if local is not None and self.locals.get(local, local) != local:
            return updated.with_changes(asname=cst.AsName(cst.Name(self.locals[local])))
        return updated

    def leave_Global(
        self, original: cst.Global, updated: cst.Global
    ) -> cst.Global | cst.RemovalSentinel:
        # The decorator's own `global` moves to the top of the step (Python wants it before
        # any use of the name there, and another decorator above may use it first).
        return cst.RemoveFromParent() if id(original) in self.info.global_statements else updated

    def leave_NameItem(self, original: cst.NameItem, updated: cst.NameItem) -> cst.NameItem:
        name = original.name.value
        new = self.locals.get(name) or self.globals.get(name)
        return updated.with_changes(name=cst.Name(new)) if new and new != "{}" else updated

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement:
        index = self.site_ids.get(id(original))
        if index is None:
            return updated
        return cst.SimpleStatementLine(
            body=[cst.Expr(cst.Name(PLACEHOLDER.format(index)))], leading_lines=updated.leading_lines
        )

    def leave_With(
        self, original: cst.With, updated: cst.With
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        """`with` around the yield, spelled out (PEP 343) so that its `__exit__` can step aside
        when a decorator below fails before its yield, as Metaflow never throws that in. Each
        item of `with a, b:` is spelled out, outermost first (an unguarded `b` could swallow
        the failure that `a` must not see)."""
        if self.guard is None or id(original) not in self.info.guarded_trys:
            return updated
        stmts = statements_of(updated.body)
        for item, item_names in reversed(list(zip(updated.items, self.with_names[id(original)]))):
            stmts = self._spelled_out(item, stmts, item_names)
        stmts[0] = stmts[0].with_changes(
            leading_lines=[*updated.leading_lines, comment_line("with ...: (spelled out by decoflow)")]
        )
        return cst.FlattenSentinel(stmts)

    def _spelled_out(
        self, item: cst.WithItem, body: list[cst.BaseStatement], names: tuple[str, ...]
    ) -> list[cst.BaseStatement]:
        """`with item: body` as PEP 343 writes it, its exit skipped while `setting_up` says a
        decorator below is still setting up."""
        assert self.guard is not None
        mgr, exited, exc = names
        enter = f"type({mgr}).__enter__({mgr})"
        stmts: list[cst.BaseStatement] = [
            cst.SimpleStatementLine(body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(mgr))], value=item.item)])
        ]
        if item.asname is not None:
            stmts.append(
                cst.SimpleStatementLine(
                    body=[cst.Assign(targets=[cst.AssignTarget(item.asname.name)], value=cst.parse_expression(enter))]
                )
            )
        else:
            stmts.append(line(enter))
        stmts.append(line(f"{exited} = False"))
        handler = block(
            [
                line(f"{exited} = True"),
                line(
                    f"if {self.guard.below_setting_up} or not type({mgr}).__exit__({mgr}, type({exc}), {exc}, {exc}.__traceback__):\n"
                    "    raise\n"
                ),
            ]
        )
        stmts.append(
            cst.Try(
                body=block(body),
                handlers=[
                    cst.ExceptHandler(body=handler, type=cst.Name("BaseException"), name=cst.AsName(cst.Name(exc)))
                ],
                finalbody=cst.Finally(
                    body=block([line(f"if not {exited}:\n    type({mgr}).__exit__({mgr}, None, None, None)\n")])
                ),
            )
        )
        return stmts

    def leave_Try(self, original: cst.Try, updated: cst.Try) -> cst.Try:
        return self._guarded_try(original, updated)

    def leave_TryStar(
        self, original: cst.TryStar, updated: cst.TryStar
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        """`try/except*` around a yield. A bare `raise` in an `except*` handler would re-raise
        a failure of a decorator below wrapped in an ExceptionGroup, so that failure is kept
        aside before the handlers can match it, and raised as it was after the statement."""
        guard = self.guard
        if guard is None or id(original) not in self.info.handler_trys:
            return self._guarded_try(original, updated)
        kept, caught = guard.star
        inner = cst.Try(
            body=block(statements_of(updated.body)),
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
        orelse = updated.orelse
        if orelse is not None:
            orelse = orelse.with_changes(body=self._when_settled(orelse.body))
        return cst.FlattenSentinel(
            [
                trailing(line(f"{kept} = None"), "a failure of a decorator below, kept from except*"),
                updated.with_changes(body=block([inner]), orelse=orelse, finalbody=self._settled_finally(updated)),
                line(f"if {kept} is not None:\n    raise {kept}\n"),
            ]
        )

    def _guarded_try(self, original: TryNode, updated: TryNode) -> TryNode:
        """Handlers step aside (re-raise) and `finally` does not run while a decorator below
        is still setting up, as Metaflow never throws that failure into this one."""
        guard = self.guard
        if guard is None or id(original) not in self.info.guarded_trys:
            return updated
        handlers = list(updated.handlers)
        if id(original) in self.info.handler_trys:
            reraise = line(f"if {guard.below_setting_up}:\n    raise\n")
            handlers = [h.with_changes(body=block([reraise, *statements_of(h.body)])) for h in handlers]
        return updated.with_changes(handlers=handlers, finalbody=self._settled_finally(updated))

    def _settled_finally(self, node: cst.Try | cst.TryStar) -> cst.Finally | None:
        return None if node.finalbody is None else node.finalbody.with_changes(body=self._when_settled(node.finalbody.body))

    def _when_settled(self, suite: cst.BaseSuite) -> cst.IndentedBlock:
        """`suite` run only when no decorator below is still setting up."""
        assert self.guard is not None
        test = cst.parse_expression(self.guard.settled)
        return block([cst.If(test=test, body=block(statements_of(suite)))])


_PASS_CACHE: NodeMemo[list[cst.BaseStatement]] = NodeMemo()
_RENAMED: NodeMemo[cst.CSTNode] = NodeMemo()


def _renaming(layer: Layer, locals_: dict[str, str]) -> tuple:
    return (tuple(sorted(locals_.items())), tuple(sorted(layer.globals.items())), layer.sources)


_MARKED: NodeMemo[tuple[cst.CSTNode, ...]] = NodeMemo()


def _marked(info: GeneratorInfo, kind: type, ids: frozenset[int]) -> tuple[cst.CSTNode, ...]:
    """The statements of `kind` in the decorator whose ids are in `ids`, in source order
    (walked once per decorator: every step it decorates asks)."""

    def compute() -> tuple[cst.CSTNode, ...]:
        found, stack = [], [info.func.body]
        while stack:
            node = stack.pop()
            if isinstance(node, kind) and id(node) in ids:
                found.append(node)
            stack.extend(reversed(child_nodes(node)))
        return tuple(found)

    return _MARKED.get(info.func, (kind, ids), compute)


def guarded_withs(info: GeneratorInfo) -> tuple[cst.With, ...]:
    """The `with` statements around a yield, which are spelled out, in source order."""
    return _marked(info, cst.With, info.guarded_trys)  # type: ignore[return-value]


def guards_except_star(info: GeneratorInfo) -> bool:
    """Whether a `try/except*` has a yield in its body (its handlers see the step's failure)."""
    return bool(_marked(info, cst.TryStar, info.handler_trys))


def decorator_code(layer: Layer, locals_: dict[str, str], guard: Guard | None) -> list[cst.BaseStatement]:
    """The decorator's statements, renamed, with yield placeholders and guards. Steps that
    rename it the same way share one result (nodes are immutable)."""

    def compute() -> list[cst.BaseStatement]:
        code = layer.info.func.body.visit(_DecoratorPass(layer, locals_, guard))
        stmts = statements_of(code)  # type: ignore[arg-type]
        if stmts and is_docstring(stmts[0]):  # documents the decorator; inlined it would be noise
            stmts = stmts[1:]
        return stmts

    return list(_PASS_CACHE.get(layer.info.func, (*_renaming(layer, locals_), guard), compute))


def renamed(node: cst.CSTNode, layer: Layer, locals_: dict[str, str]) -> cst.CSTNode:
    """A piece of the decorator (a yield's value or target) with its names as in this step;
    shared by the steps that rename it the same way."""
    return _RENAMED.get(node, _renaming(layer, locals_), lambda: node.visit(_DecoratorPass(layer, locals_, None)))  # type: ignore[return-value]


class _Placeholders:
    """Replaces yield placeholders with what each yield does; marks where after-code starts.

    Walks statements only (placeholders are statements), not expressions: cheap."""

    def __init__(self, expansions: dict[str, list[cst.BaseStatement]], after_note: str) -> None:
        self.expansions = expansions
        self.after_note = after_note

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
                note_next = True
                continue
            stmt = self._compound(stmt)
            if note_next:
                stmt = with_comment(stmt, self.after_note)
                note_next = False
            out.append(stmt)
        return out

    def _suite(self, suite: cst.BaseSuite) -> cst.BaseSuite:
        if not isinstance(suite, cst.IndentedBlock):
            return suite
        return suite.with_changes(body=self.statements(list(suite.body)) or [line("pass")])

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
                orelse=stmt.orelse.with_changes(body=self._suite(stmt.orelse.body)) if stmt.orelse else None,
                finalbody=stmt.finalbody.with_changes(body=self._suite(stmt.finalbody.body)) if stmt.finalbody else None,
            )
        if isinstance(stmt, cst.With):
            return stmt.with_changes(body=self._suite(stmt.body))
        if isinstance(stmt, cst.Match):
            return stmt.with_changes(cases=[c.with_changes(body=self._suite(c.body)) for c in stmt.cases])
        return stmt  # loops hold no yields (DF304)


class StepRewriter:
    """Builds the compiled step from its body and its layers of decorators."""

    def __init__(
        self,
        site: StepSite,
        layers: list[Layer],
        module_names: set[str],
        runtime: set[str],
        facts: StepFacts | None = None,
    ) -> None:
        self.site = site
        self.layers = layers
        self.runtime = runtime  # names of runtime helpers used (filled in)
        if facts is None:
            facts = StepFacts(frozenset(names_in(site.func.body)), any(contains_return(s) for s in statements_of(site.func.body)))
        self.body_has_return = facts.has_return
        step_names = set(facts.names) | set(site.params)
        self.module_names = module_names
        self.alloc = NameAllocator(step_names | module_names)
        # Names each decorator reads from outside itself (its module's names, as renamed, and
        # builtins): no local of another decorator inlined in this step may shadow them.
        self.decorator_names = [
            {layer.globals.get(n, n) for n in layer.info.names - layer.info.local_names}
            for layer in layers
        ]
        self.step_level: set[str] = set()  # flags read outside nested run-functions
        self.assigned_inside: set[str] = set()  # step-level flags the step's own code assigns
        self._plan_setup_tracking()
        self.step_name_var = self._plan_shared_step_name(step_names | module_names)

    # -- setup tracking ------------------------------------------------------------------

    def _plan_setup_tracking(self) -> None:
        guarded = [layer.level for layer in self.layers if layer.info.guarded_trys]
        self.track_from: int | None = None
        self.flag = ""
        if not guarded:
            return
        lowest = min(guarded)
        if any(layer.level > lowest and fails_past_outer(layer.info) for layer in self.layers) or any(
            layer.info.guarded_trys and yields_again(layer.info) for layer in self.layers
        ):
            self.track_from = lowest
            self.flag = self._claim_step("setting_up")

    def _shares_step_name(self, layer: Layer) -> bool:
        param = layer.info.params[0]
        return param not in unused_params(layer.info) and param not in layer.info.reassigned

    def _plan_shared_step_name(self, taken: set[str]) -> str | None:
        """One `step_name = "<step>"` for every decorator that reads its step-name parameter."""
        sharing = [layer for layer in self.layers if self._shares_step_name(layer)]
        if not sharing:
            return None
        preferred = [layer.info.params[0] for layer in sharing] + ["step_name"]

        def free(name: str) -> bool:
            if name in taken or name in self.alloc.taken:
                return False
            for layer in self.layers:
                own = {layer.info.params[0]} if layer in sharing and layer.info.params[0] == name else set()
                own |= unused_params(layer.info)  # never bound in the output
                if name in (layer.info.local_names | layer.info.bound_anywhere) - own:
                    return False
                if name in self.decorator_names[layer.level - 1]:
                    return False
            return True

        for name in preferred:
            if free(name):
                self.alloc.reserve(name)
                self.step_level.add(name)
                return name
        return None

    def _claim(self, alloc: NameAllocator, *preferred: str) -> tuple[str, ...]:
        """Fresh names for code the step gains (reserved for the whole step)."""
        names = tuple(alloc.claim(p) for p in preferred)
        for claimed in names:
            self.alloc.reserve(claimed)
        return names

    def _claim_step(self, preferred: str) -> str:
        reserved = set().union(*self.decorator_names) if self.decorator_names else set()
        reserved |= {n for layer in self.layers for n in layer.info.local_names}
        alloc = NameAllocator(self.alloc.taken | reserved)
        name = alloc.claim(preferred, prefix="decoflow")
        self.alloc.reserve(name)
        self.step_level.add(name)
        return name

    def _tracks(self, layer: Layer) -> bool:
        return self.track_from is not None and layer.level > self.track_from and layer.info.has_pre_code

    def _starts_tracked(self, stmts: list[cst.BaseStatement]) -> bool:
        """Whether inner code begins by setting the marker itself (then no reset is needed)."""
        if stmts and isinstance(stmts[0], (cst.Try, cst.TryStar)) and isinstance(stmts[0].body, cst.IndentedBlock):
            return self._starts_tracked(list(stmts[0].body.body))  # entering `try:` runs nothing
        if not stmts or not isinstance(stmts[0], cst.SimpleStatementLine):
            return False
        first = stmts[0].body[0]
        return (
            isinstance(first, cst.Assign)
            and isinstance(first.targets[0].target, cst.Name)
            and first.targets[0].target.value == self.flag
        )

    def _guard_level(self, layer: Layer) -> int | None:
        if self.track_from is None or not layer.info.guarded_trys:
            return None
        if any(other.level > layer.level and fails_past_outer(other.info) for other in self.layers):
            return layer.level
        if yields_again(layer.info):  # a second yield leaves the generator suspended: its
            return layer.level  # own handlers, `finally` and `with` exits never run
        return None

    def _bypasses(self, layer: Layer) -> bool:
        """Whether an error Metaflow raises outside `layer` must make the guarded decorators
        (above it, and its own) step aside: their handlers re-raise, `finally` is skipped."""
        return self.track_from is not None and layer.level >= self.track_from

    def _bypass(self, layer: Layer) -> str:
        """The statement (and the indentation after it) that does so, or nothing."""
        return f"{self.flag} = {len(self.layers) + 1}\n    " if self._bypasses(layer) else ""

    def _assigns_flag(self, layer: Layer) -> bool:
        return self._tracks(layer) or (self._bypasses(layer) and miscounts(layer.info))

    # -- the step --------------------------------------------------------------------------

    def rewrite(self) -> cst.FunctionDef:
        func = self.site.func
        stmts = statements_of(func.body)
        head: list[cst.BaseStatement] = []
        if stmts and is_docstring(stmts[0]):
            head.append(stmts.pop(0))
        tail: list[cst.BaseStatement] = []
        if stmts and is_next_call(stmts[-1], self.site.self_name):
            tail.append(stmts.pop())
        core = stmts
        body_flag = None
        if self.body_has_return:
            body_flag = self._claim_step("step_returned")
            self.assigned_inside.add(body_flag)
            core = ReturnEliminator(body_flag).statements(core)
        if tail and _has_arguments(tail[0]):
            # Natively `self.next(...)` runs inside the body: it counts the foreach splits or
            # picks the switch case before the decorators' after code runs, and a decorator's
            # `except` sees its failure (a missing foreach list, say). Take the transition
            # there; the literal last statement (Metaflow's graph) then does nothing. The
            # step calls `self.next` itself, so that Metaflow's message for a bad transition
            # names the step's line, as natively (not a line of a helper).
            self.runtime.add("decoflow_next_done")
            done = line(f"decoflow_next_done({self.site.self_name})")
            core = [*core, tail[0].with_changes(leading_lines=[]), done]
        if core:
            core[0] = with_comment(core[0], f"step {self.site.name}: its own code")
        inner = self._own_code(core)
        for layer in reversed(self.layers):
            inner = self._layer(layer, inner)
        prologue: list[cst.BaseStatement] = []
        declared = sorted({layer.globals.get(g, g) for layer in self.layers for g in layer.info.declared_globals})
        if declared:
            prologue.append(line(f"global {', '.join(declared)}"))
        if self.track_from is not None:
            prologue.append(trailing(line(f"{self.flag} = 0"), "decoflow: whose before-code runs (1: outermost)"))
        if self.step_name_var:
            prologue.append(line(f'{self.step_name_var} = "{self.site.name}"'))
        if body_flag:
            prologue.append(line(f"{body_flag} = False"))
        prologue.extend(self._step_prologue())
        body = [*head, *prologue, *inner]
        if body_flag and tail:
            body.append(line(f"if {body_flag}:\n    return  # as in the original: no self.next() was reached\n"))
        body.extend(tail)
        old = func.body
        new_block = block(body)
        if isinstance(old, cst.IndentedBlock):
            new_block = new_block.with_changes(header=old.header, footer=old.footer)
        return func.with_changes(body=new_block, decorators=self._kept_decorators())

    def _own_code(self, core: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        """The step's own code as the innermost layer wraps it (class layers add to it)."""
        return core

    def _step_prologue(self) -> list[cst.BaseStatement]:
        """More statements at the top of the step (class layers add to it)."""
        return []

    def _kept_decorators(self) -> list[cst.Decorator]:
        custom = {id(layer.use.node) for layer in self.layers}
        kept: list[cst.Decorator] = []
        carry: list[cst.EmptyLine] = []
        for dec in self.site.func.decorators:
            if id(dec) in custom:
                carry.extend(line_ for line_ in dec.leading_lines if line_.comment is not None)
                continue
            if carry:
                dec = dec.with_changes(leading_lines=[*carry, *dec.leading_lines])
                carry = []
            kept.append(dec)
        return kept

    # -- one decorator ---------------------------------------------------------------------

    def _layer(self, layer: Layer, inner: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        info = layer.info
        name = info.name
        others = set().union(*(n for i, n in enumerate(self.decorator_names) if i != layer.level - 1))
        alloc = NameAllocator(self.alloc.taken | others | set(layer.globals.values()))
        self_name = self.site.self_name
        inputs_name = self.site.inputs_name
        p_step, p_flow, p_inputs = info.params[0], info.params[1], info.params[2]
        p_attrs = info.param(3)
        used = set(info.params) - unused_params(info)
        locals_: dict[str, str] = {}
        bindings: list[cst.BaseStatement] = []

        def substitutable(param: str, by: str) -> bool:
            """Can `param` be written as `by` everywhere it is read, without being captured?"""
            return (
                param not in info.reassigned
                and (by == param or by not in info.shadowed_at_reads.get(param, frozenset()))
                and by not in info.global_names
            )

        if substitutable(p_flow, self_name):
            locals_[p_flow] = self_name
        if self.step_name_var and self._shares_step_name(layer):
            locals_[p_step] = self.step_name_var
        if inputs_name is not None and substitutable(p_inputs, inputs_name):
            locals_[p_inputs] = inputs_name
        unused = unused_params(info)
        for local in sorted(info.local_names):
            if local in locals_:
                continue
            if local in unused:
                locals_[local] = local  # never read: nothing is bound, nothing to collide with
                continue
            locals_[local] = alloc.claim(local, prefix=name)
        for local, new_name in locals_.items():
            if local not in unused:
                self.alloc.reserve(new_name)
        if p_step in used and not (self.step_name_var and self._shares_step_name(layer)):
            bindings.append(line(f'{locals_[p_step]} = "{self.site.name}"'))
        if p_flow in used and locals_[p_flow] != self_name:
            bindings.append(line(f"{locals_[p_flow]} = {self_name}"))
        if p_inputs in used and locals_[p_inputs] != inputs_name:
            bindings.append(line(f"{locals_[p_inputs]} = {inputs_name or 'None'}"))
        if p_attrs is not None and p_attrs in used:
            bindings.append(
                cst.SimpleStatementLine(
                    body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(locals_[p_attrs]))], value=self._attributes(layer))]
                )
            )

        guard = None
        level = self._guard_level(layer)
        if level is not None:
            withs = tuple(
                tuple(self._claim(alloc, f"{name}_with", f"{name}_with_exited", f"{name}_with_error") for _ in w.items)
                for w in guarded_withs(info)
            )
            star = self._claim(alloc, f"{name}_setup_failure", f"{name}_failure") if guards_except_star(info) else ("", "")
            guard = Guard(level, self.flag, withs, star)
        stmts = decorator_code(layer, locals_, guard)
        prologue: list[cst.BaseStatement] = []
        epilogue: list[cst.BaseStatement] = []
        if info.has_return:
            returned = alloc.claim(f"{name}_returned")
            self.alloc.reserve(returned)
            stmts = ReturnEliminator(returned).statements(stmts)
            prologue.append(line(f"{returned} = False"))
        checks = info.may_not_yield or any(s.maybe_second for s in info.sites)
        yielded = ""
        if checks:
            yielded = alloc.claim(f"{name}_yielded")
            self.alloc.reserve(yielded)
            prologue.append(line(f"{yielded} = False"))
        if info.may_not_yield:  # Metaflow's generator.send(None) raises StopIteration
            epilogue.append(
                line(f"if not {yielded}:\n    {self._bypass(layer)}raise StopIteration from None  # @{name} finished without yielding\n")
            )

        run_inner = inner
        definitions: list[cst.BaseStatement] = []
        if len(info.yields_to_body) > 1 and inner:
            fn = alloc.claim(f"run_{self.site.name}")
            self.alloc.reserve(fn)
            # Step-level names the inner code assigns (it reads the others through the closure).
            assigned = set(self.assigned_inside)
            if self.track_from is not None and any(
                other.level > layer.level and self._assigns_flag(other) for other in self.layers
            ):
                assigned.add(self.flag)
            fn_body = list(inner)
            declared = sorted({g for other in self.layers if other.level > layer.level for g in other.info.declared_globals})
            if declared:
                fn_body.insert(0, line(f"global {', '.join(other for other in declared)}"))
            if assigned:
                fn_body.insert(0, line(f"nonlocal {', '.join(sorted(assigned))}"))
            definitions.append(
                with_comment(
                    cst.FunctionDef(name=cst.Name(fn), params=cst.Parameters(), body=block(fn_body)),
                    f"what @{name} runs where it yields: the step and the decorators below it",
                )
            )
            run_inner = [line(f"{fn}()")]

        expansions = {
            PLACEHOLDER.format(site.index): self._site(layer, site, run_inner, locals_, yielded)
            for site in info.sites
        }
        after = f"@{layer.use.written}: after the step"
        stmts = _Placeholders(expansions, after).statements(stmts)
        out: list[cst.BaseStatement] = []
        if self._tracks(layer):
            out.append(line(f"{self.flag} = {layer.level}"))
        out.extend(definitions)
        out.extend(bindings)
        out.extend(prologue)
        out.extend(stmts)
        out.extend(epilogue)
        if not out:
            out = [line("pass")]
        via = "--with, " if layer.use.via_with else ""
        out[0] = with_comment(out[0], f"@{layer.use.written} ({via}{layer.use.definition.origin})")
        return out

    def _attributes(self, layer: Layer) -> cst.BaseExpression:
        args = layer.use.arguments or ()
        elements = []
        for arg in args:
            assert arg.keyword is not None
            # an identifier needs no escaping; double quotes, as most flows write their strings
            elements.append(cst.DictElement(cst.SimpleString(f'"{arg.keyword.value}"'), arg.value))
        return cst.Dict(elements=elements)

    def _site(
        self,
        layer: Layer,
        site: YieldSite,
        run_inner: list[cst.BaseStatement],
        locals_: dict[str, str],
        yielded: str,
    ) -> list[cst.BaseStatement]:
        name = layer.info.name
        out: list[cst.BaseStatement] = []
        if yielded:
            if site.maybe_second:
                self.runtime.add("decoflow_yielded_twice")
                out.append(
                    line(
                        f"if {yielded}:\n    {self._bypass(layer)}"
                        f"raise decoflow_yielded_twice({layer.use.definition.metaflow_name!r}) from None\n"
                    )
                )
            out.append(line(f"{yielded} = True"))
        # The inner code starts by setting the marker itself only where it runs right away.
        if self._tracks(layer) and not (site.kind is YieldKind.RUN and self._starts_tracked(run_inner)):
            out.append(line(f"{self.flag} = 0"))
        value = None
        if site.value is not None:
            value = renamed(site.value, layer, locals_)
        def helper_call(helper: str) -> cst.Call:
            """`helper(self, <value>[, inputs])`, built as nodes (no print-and-parse)."""
            self.runtime.add(helper)
            args = [cst.Arg(cst.Name(self.site.self_name)), cst.Arg(value)]  # type: ignore[arg-type]
            if self.site.inputs_name and helper != "decoflow_next_with":
                args.append(cst.Arg(cst.Name(self.site.inputs_name)))
            return cst.Call(
                func=cst.Name(helper),
                args=[a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))) for a in args[:-1]]
                + [args[-1]],
            )

        kind = site.kind
        if kind is YieldKind.RUN:
            out.extend(run_inner)  # nothing to run: an empty block gets `pass` where needed
        elif kind is YieldKind.SKIP:
            if out and isinstance(out[-1], cst.SimpleStatementLine):
                out[-1] = trailing(out[-1], f"@{name} skips the step")
            else:
                out.append(trailing(line("pass"), f"@{name} skips the step"))
        elif kind is YieldKind.SKIP_NEXT:
            call = cst.SimpleStatementLine(body=[cst.Expr(helper_call("decoflow_next_with"))])
            out.append(trailing(call, f"@{name} skips the step; self.next gets these"))
        elif kind is YieldKind.REPLACE:
            call = cst.SimpleStatementLine(body=[cst.Expr(helper_call("decoflow_replace"))])
            out.append(trailing(call, f"@{name} replaces the step"))
        else:
            out.append(
                with_comment(
                    cst.If(test=helper_call("decoflow_yield"), body=block(run_inner or [line("pass")])),
                    f"@{name} decides at run time: run, skip or replace the step",
                )
            )
        if site.target is not None:
            target = renamed(site.target, layer, locals_)
            out.append(cst.SimpleStatementLine(body=[cst.Assign(targets=[cst.AssignTarget(target)], value=cst.Name("None"))]))
        return out
