"""Pass 3: analyse a decorator generator.

What it takes (parameters), where it yields and what each yield says (run the step, skip
it, skip with `self.next` arguments, replace it, or decided at run time), which paths may
finish without yielding or yield twice, which `try` statements guard a yield, and which
names are its own (to be renamed) or its module's (to be carried).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import BuiltinScope, GlobalScope

from ..support.diagnostics import (
    ASYNC_DECORATOR,
    BAD_PARAMETERS,
    NEVER_YIELDS,
    RETURNS_VALUE,
    YIELD_FROM,
    YIELD_IN_EXPRESSION,
    YIELD_IN_LOOP,
    YIELDS_TWICE,
    CompileError,
    Diagnostic,
    Location,
)
from ..support.inspect_uses import InspectUse, find_inspect_uses
from ..support.locate import LazyLocation, Locator
from ..support.memo import NodeMemo
from ..support.names import attribute_uses, child_nodes, name_nodes, names_in
from ..support.namespace import Definition, MetaflowName, Resolver, import_binding_name
from ..support.scopes import ResolvedScopes, resolve_scopes, scopes_of
from ..support.source import is_docstring
from .discover import DecoratorDef


class YieldKind(enum.Enum):
    RUN = "runs the step"
    SKIP = "skips the step"
    SKIP_NEXT = "skips the step and transitions with its own arguments"
    REPLACE = "replaces the step"
    DYNAMIC = "decided at run time"


@dataclass(frozen=True)
class YieldSite:
    """A statement that yields: `yield`, `yield X`, `name = yield X`."""

    index: int
    stmt: cst.SimpleStatementLine = field(repr=False)
    kind: YieldKind
    value: cst.BaseExpression | None = field(repr=False)
    target: cst.BaseExpression | None = field(repr=False)
    maybe_second: bool  # another yield may have been reached before this one


@dataclass(frozen=True)
class GeneratorInfo:
    definition: DecoratorDef = field(repr=False)
    func: cst.FunctionDef = field(repr=False)  # normalised copy the ids below refer to
    params: tuple[str, ...]
    sites: tuple[YieldSite, ...]
    may_not_yield: bool
    guarded_trys: frozenset[int]  # ids of Try (and With) nodes whose handlers a yield's exception reaches
    handler_trys: frozenset[int]  # of those, the ones whose *handlers* see it (yield in the body)
    has_return: bool
    has_pre_code: bool
    local_names: frozenset[str]
    local_refs: dict[int, str] = field(repr=False)  # id(Name) -> local name
    local_aliases: dict[int, str] = field(repr=False)  # id(ImportAlias) -> local name
    global_refs: dict[int, str] = field(repr=False)  # id(Name) -> module-level name it reads
    global_names: frozenset[str]  # module-level names used (not builtins)
    declared_globals: frozenset[str]
    bound_anywhere: frozenset[str]
    shadowed_at_reads: dict[str, frozenset[str]] = field(repr=False)  # see GeneratorAnalyzer
    reassigned: frozenset[str]  # locals bound more than once (params rebinding matters)
    names: frozenset[str] = frozenset()  # every identifier the decorator's code writes
    global_statements: frozenset[int] = frozenset()  # ids of its own `global` statements
    attribute_uses: dict[str, set[str]] = field(default_factory=dict, repr=False)  # see carry
    inspect_uses: tuple[InspectUse, ...] = ()  # inspect asked about a step (see inspect_uses)

    @property
    def name(self) -> str:
        return self.definition.name

    def param(self, index: int) -> str | None:
        return self.params[index] if index < len(self.params) else None

    @property
    def yields_to_body(self) -> list[YieldSite]:
        return [s for s in self.sites if s.kind in (YieldKind.RUN, YieldKind.DYNAMIC)]


# --- normalisation -------------------------------------------------------------------


class _SplitYieldLines(cst.CSTTransformer):
    """Puts a yield that shares a line with other statements (`a = 1; yield`) on its own line."""

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        if len(updated.body) < 2 or not any(_small_yield(s) is not None for s in updated.body):
            return updated
        lines = [
            cst.SimpleStatementLine(body=[s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)])
            for s in updated.body
        ]
        lines[0] = lines[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel(lines)


def _small_yield(small: cst.BaseSmallStatement) -> cst.Yield | None:
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Yield):
        return small.value
    if isinstance(small, cst.Assign) and isinstance(small.value, cst.Yield):
        return small.value
    if isinstance(small, cst.AnnAssign) and isinstance(small.value, cst.Yield):
        return small.value
    return None


# --- finding yields --------------------------------------------------------------------


class _YieldFinder:
    """Finds yield expressions of the function itself (not of nested functions, lambdas or
    classes), and what else the checks need: returns, async code, `global` statements.

    A read-only walk over the nodes' fields (libcst's `visit` would rebuild every node)."""

    def __init__(self) -> None:
        self.statement_yields: list[tuple[cst.SimpleStatementLine, cst.Yield]] = []
        self.other_yields: list[cst.Yield] = []
        self.in_loop: list[cst.Yield] = []
        self.returns: list[cst.Return] = []
        self.awaits: list[cst.CSTNode] = []
        self._stmt_yield: set[int] = set()
        self.shared_lines = 0
        self.globals_declared: list[str] = []
        self.global_nodes: list[cst.Global] = []

    def find(self, func: cst.FunctionDef) -> _YieldFinder:
        stack: list[tuple[cst.CSTNode, int]] = [(func, 0)]  # (node, enclosing loops)
        while stack:
            node, loops = stack.pop()
            if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and node is not func:
                continue
            if isinstance(node, (cst.For, cst.While)):
                loops += 1
            if isinstance(node, (cst.For, cst.With)) and node.asynchronous:
                self.awaits.append(node)
            elif isinstance(node, cst.CompFor) and node.asynchronous:
                self.awaits.append(node)
            elif isinstance(node, cst.Await):
                self.awaits.append(node)
            elif isinstance(node, cst.Global):
                self.globals_declared.extend(n.name.value for n in node.names)
                self.global_nodes.append(node)
            elif isinstance(node, cst.SimpleStatementLine):
                self._statement(node)
            elif isinstance(node, cst.Return):
                self.returns.append(node)
            elif isinstance(node, cst.Yield):
                if loops:
                    self.in_loop.append(node)
                elif id(node) not in self._stmt_yield:
                    self.other_yields.append(node)
            # children in reverse so that they are popped in source order
            stack.extend((child, loops) for child in reversed(child_nodes(node)))
        return self

    def _statement(self, node: cst.SimpleStatementLine) -> None:
        if len(node.body) > 1 and any(_small_yield(s) is not None for s in node.body):
            self.shared_lines += 1
        if len(node.body) == 1:
            found = _small_yield(node.body[0])
            if found is not None and not (
                isinstance(node.body[0], cst.Assign) and len(node.body[0].targets) != 1
            ):
                self._stmt_yield.add(id(found))
                self.statement_yields.append((node, found))


# --- control flow: how many yields may have been reached ---------------------------------

@dataclass
class _Flow:
    normal: set[int]
    returned: set[int]
    raised: set[int]


class _FlowAnalysis:
    """A tiny abstract interpreter over statements, tracking how many yields were reached."""

    def __init__(self, site_ids: dict[int, int]) -> None:
        self.site_ids = site_ids  # id(stmt) -> site index
        self.at_site: dict[int, set[int]] = {}
        self.normally: dict[int, set[int]] = {}  # states reaching a site without an exception
        self._handling = 0

    def block(self, stmts: list[cst.BaseStatement] | tuple, states: set[int]) -> _Flow:
        flow = _Flow(set(states), set(), set())
        for stmt in stmts:
            if not flow.normal:
                break
            step = self.stmt(stmt, flow.normal)
            flow.normal = step.normal
            flow.returned |= step.returned
            flow.raised |= step.raised
        return flow

    def body_of(self, node: cst.CSTNode) -> tuple:
        body = getattr(node, "body", None)
        if isinstance(body, cst.IndentedBlock):
            return tuple(body.body)
        if isinstance(body, cst.SimpleStatementSuite):
            return (cst.SimpleStatementLine(body=body.body),)
        return ()

    def stmt(self, stmt: cst.CSTNode, states: set[int]) -> _Flow:
        if isinstance(stmt, cst.SimpleStatementLine):
            if id(stmt) in self.site_ids:
                self.at_site.setdefault(self.site_ids[id(stmt)], set()).update(states)
                if not self._handling:
                    self.normally.setdefault(self.site_ids[id(stmt)], set()).update(states)
                after = {min(s + 1, 2) for s in states}
                return _Flow(after, set(), after)  # what is thrown in arrives after the yield
            for small in stmt.body:
                if isinstance(small, cst.Return):
                    return _Flow(set(), set(states), set(states))
                if isinstance(small, cst.Raise):
                    return _Flow(set(), set(), set(states))
                if isinstance(small, (cst.Break, cst.Continue)):
                    return _Flow(set(), set(), set(states))
            return _Flow(set(states), set(), set(states))
        if isinstance(stmt, cst.If):
            then = self.block(self.body_of(stmt), states)
            other = (
                self.stmt(stmt.orelse, states)
                if isinstance(stmt.orelse, cst.If)
                else self.block(self.body_of(stmt.orelse), states)
                if stmt.orelse is not None
                else _Flow(set(states), set(), set(states))
            )
            return _Flow(then.normal | other.normal, then.returned | other.returned, then.raised | other.raised)
        if isinstance(stmt, (cst.For, cst.While)):
            body = self.block(self.body_of(stmt), states)
            orelse = self.block(self.body_of(stmt.orelse), states) if stmt.orelse else _Flow(set(), set(), set())
            return _Flow(
                set(states) | body.normal | orelse.normal,
                body.returned | orelse.returned,
                body.raised | orelse.raised | set(states),
            )
        if isinstance(stmt, (cst.Try, cst.TryStar)):  # try/except and try/except*
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
        if isinstance(stmt, cst.With):
            body = self.block(self.body_of(stmt), states)
            return _Flow(body.normal, body.returned, body.raised)
        if isinstance(stmt, cst.Match):
            last = stmt.cases[-1]  # `case _:` or `case name:` without a guard: some case always runs
            irrefutable = last.guard is None and isinstance(last.pattern, cst.MatchAs) and last.pattern.pattern is None
            normal, returned, raised = (set() if irrefutable else set(states)), set(), set(states)
            for case in stmt.cases:
                c = self.block(self.body_of(case), states)
                normal |= c.normal
                returned |= c.returned
                raised |= c.raised
            return _Flow(normal, returned, raised)
        return _Flow(set(states), set(), set(states))


# --- which try statements see a yield's exceptions --------------------------------------


class _TryFinder:
    """Which `try` and `with` statements see what a yield throws in: a `try` whose body holds
    a yield (its handlers catch the step's failure), a `try` with a `finally` that holds one
    in its body, handlers or `else`, a `with` whose body holds one.

    Yields are statements, so only statements are walked (not expressions), nested functions
    and classes excepted."""

    def __init__(self, site_ids: set[int]) -> None:
        self.site_ids = site_ids
        self.guarded: set[int] = set()
        self.handlers: set[int] = set()

    def find(self, stmts: Sequence[cst.CSTNode]) -> _TryFinder:
        self._walk(stmts, ())
        return self

    def _walk(self, stmts: Sequence[cst.CSTNode], around: tuple[tuple[str, cst.CSTNode], ...]) -> None:
        for stmt in stmts:
            if id(stmt) in self.site_ids:
                for part, node in around:
                    self._mark(part, node)
            elif isinstance(stmt, (cst.Try, cst.TryStar)):
                self._walk(_suite(stmt.body), (*around, ("body", stmt)))
                for handler in stmt.handlers:
                    self._walk(_suite(handler.body), (*around, ("handler", stmt)))
                if stmt.orelse is not None:
                    self._walk(_suite(stmt.orelse.body), (*around, ("else", stmt)))
                if stmt.finalbody is not None:
                    self._walk(_suite(stmt.finalbody.body), around)
            elif isinstance(stmt, cst.With):
                self._walk(_suite(stmt.body), (*around, ("with", stmt)))
            elif isinstance(stmt, cst.BaseCompoundStatement) and not isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                for block in _blocks(stmt):  # if/elif/else, loops, match
                    self._walk(block, around)

    def _mark(self, part: str, node: cst.CSTNode) -> None:
        if isinstance(node, cst.With):
            self.guarded.add(id(node))  # its __exit__ sees what the yield throws
            return
        assert isinstance(node, (cst.Try, cst.TryStar))
        if part == "body" and node.handlers:
            self.handlers.add(id(node))
            self.guarded.add(id(node))
        if node.finalbody is not None:
            self.guarded.add(id(node))


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
        elif isinstance(child, (cst.Else, cst.Finally, cst.ExceptHandler, cst.ExceptStarHandler, cst.MatchCase)):
            out.extend(_blocks(child))
    return out


# --- the analysis ------------------------------------------------------------------------


_ANALYSES: NodeMemo[GeneratorInfo] = NodeMemo()


class GeneratorAnalyzer:
    """Analyses each decorator definition once; raises CompileError with located diagnostics."""

    def __init__(self, resolver: Resolver, locator: Locator, flow_module: cst.Module | None = None) -> None:
        self.resolver = resolver
        self.locator = locator
        self.flow_module = flow_module

    def analyze(self, definition: DecoratorDef) -> GeneratorInfo:
        """Analyses are shared by every compile in the process while the module is unchanged
        (a batch analyses each decorator once)."""
        return _ANALYSES.get(definition.func, definition.name, lambda: self._analyze(definition))

    def _scopes(self, definition: DecoratorDef, func: cst.FunctionDef) -> ResolvedScopes:
        """The scopes of the decorator module, shared with carrying its helpers; a decorator
        written in the flow file (which may be large) or rewritten here gets its own."""
        module = definition.namespace.source.module
        if func is definition.func and module is not self.flow_module and any(s is func for s in module.body):
            return resolve_scopes(module)
        return scopes_of(cst.Module(body=[func]))

    def _where(self, definition: DecoratorDef, node: cst.CSTNode | None) -> Location:
        return self.locator.locate(definition.namespace.source, node)

    def _analyze(self, definition: DecoratorDef) -> GeneratorInfo:
        original = definition.func
        diags: list[Diagnostic] = []
        def_where = LazyLocation(self.locator, definition.namespace.source, original)
        label = f"@{definition.name}"
        if original.asynchronous is not None:
            raise CompileError([ASYNC_DECORATOR(f"{label} is an async generator; Metaflow runs only plain generators", def_where)])
        params = original.params
        if params.star_arg not in (None, cst.MaybeSentinel.DEFAULT) or params.star_kwarg or params.kwonly_params:
            diags.append(BAD_PARAMETERS(f"{label} must take 3 or 4 positional parameters (step_name, flow, inputs[, attributes])", def_where))
        names = tuple(p.name.value for p in (*params.posonly_params, *params.params))
        if len(names) not in (3, 4) and not diags:
            diags.append(
                BAD_PARAMETERS(
                    f"{label} takes {len(names)} parameter(s); a custom step decorator takes 3 or 4 "
                    "(step_name, flow, inputs[, attributes])",
                    def_where,
                )
            )
        if diags:
            raise CompileError(diags)

        func = original
        finder = _YieldFinder().find(func)
        if finder.shared_lines:  # `a = 1; yield`: give the yield its own line, then look again
            func = original.visit(_SplitYieldLines())
            assert isinstance(func, cst.FunctionDef)
            finder = _YieldFinder().find(func)
        # Locations of problems are reported on the original tree: map by position in text.
        for _node in finder.awaits:
            raise CompileError([ASYNC_DECORATOR(f"{label} uses async code; Metaflow runs only plain generators", def_where)])
        for y in finder.in_loop:
            diags.append(YIELD_IN_LOOP(f"{label} yields inside a loop; a decorator must yield exactly once", self._node_where(definition, original, func, y)))
        for y in finder.other_yields:
            if isinstance(y.value, cst.From):
                diags.append(YIELD_FROM(f"{label} uses `yield from`; a decorator must yield a single value", self._node_where(definition, original, func, y)))
            else:
                diags.append(YIELD_IN_EXPRESSION(f"{label} yields inside an expression; write the yield as its own statement (`yield`, `yield X` or `name = yield X`)", self._node_where(definition, original, func, y)))
        for _stmt, y in finder.statement_yields:
            if isinstance(y.value, cst.From):
                diags.append(YIELD_FROM(f"{label} uses `yield from`; a decorator must yield a single value", self._node_where(definition, original, func, y)))
        for ret in finder.returns:
            if ret.value is not None and not (isinstance(ret.value, cst.Name) and ret.value.value == "None"):
                diags.append(RETURNS_VALUE(f"{label} returns a value; Metaflow accepts only a bare `return` from a decorator", self._node_where(definition, original, func, ret)))
        if not finder.statement_yields and not finder.other_yields and not finder.in_loop and not diags:
            diags.append(NEVER_YIELDS(f"{label} never yields: a custom step decorator must be a generator that yields once", def_where))
        if diags:
            raise CompileError(diags)

        site_stmts = [stmt for stmt, _ in finder.statement_yields]
        site_index = {id(stmt): i for i, stmt in enumerate(site_stmts)}
        flow = _FlowAnalysis(site_index)
        result = flow.block(tuple(func.body.body) if isinstance(func.body, cst.IndentedBlock) else (), {0})
        ends = result.normal | result.returned
        reached_any = any(flow.at_site.values())
        if not reached_any:
            raise CompileError([NEVER_YIELDS(f"{label} can never reach its yield", def_where)])
        for i in range(len(site_stmts)):
            states = flow.normally.get(i, set())  # reached only through an exception: run time decides
            if states and 0 not in states:
                raise CompileError(
                    [YIELDS_TWICE(f"{label} yields twice on one path; a decorator must yield exactly once", self._node_where(definition, original, func, finder.statement_yields[i][1]))]
                )

        resolved = self._scopes(definition, func)
        first = func.body.body[0] if isinstance(func.body, cst.IndentedBlock) else func.body
        fscope = resolved.of_node[first]
        assert fscope is not None
        local_refs: dict[int, str] = {}
        local_aliases: dict[int, str] = {}
        shadows: dict[str, set[str]] = {}  # local -> names bound in nested scopes reading it
        counts: dict[str, int] = {}
        for assignment in fscope.assignments:
            if not hasattr(assignment, "node"):
                continue
            name = assignment.name
            counts[name] = counts.get(name, 0) + 1
            node = assignment.node
            if isinstance(node, cst.Name):
                local_refs[id(node)] = name
            elif isinstance(node, cst.Param):
                local_refs[id(node.name)] = name
            elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                local_refs[id(node.name)] = name
            elif isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    if import_binding_name(alias) == name:
                        local_aliases[id(alias)] = name
            for access in assignment.references:
                if isinstance(access.node, cst.Name):
                    local_refs[id(access.node)] = name
                    scope = access.scope
                    while scope is not None and scope is not fscope and not isinstance(scope, GlobalScope):
                        shadows.setdefault(name, set()).update(a.name for a in scope.assignments)
                        scope = scope.parent
        local_names = frozenset(a.name for a in fscope.assignments)
        ns = definition.namespace
        global_refs: dict[int, str] = {}
        bound_anywhere: set[str] = set()
        for scope in resolved.within(fscope):
            if isinstance(scope, (GlobalScope, BuiltinScope)):
                continue
            bound_anywhere.update(a.name for a in scope.assignments)
            for access in scope.accesses:
                if not isinstance(access.node, cst.Name):
                    continue
                referents = access.referents
                if all(isinstance(r.scope, (GlobalScope, BuiltinScope)) for r in referents):
                    name = access.node.value
                    if name in ns.bindings or not referents or any(isinstance(r.scope, GlobalScope) for r in referents):
                        global_refs[id(access.node)] = name
        declared = frozenset(finder.globals_declared)
        # global statements make names module-level even when assigned (`CALLS += 1`)
        for name_id, name in list(local_refs.items()):
            if name in declared:
                del local_refs[name_id]
                global_refs[name_id] = name
        if declared:
            for node in (n for n in name_nodes(func.body) if n.value in declared):
                global_refs.setdefault(id(node), node.value)
        global_names = frozenset(n for n in global_refs.values() if n in ns.bindings or n in declared)

        sites = []
        for i, (stmt, y) in enumerate(finder.statement_yields):
            small = stmt.body[0]
            target = None
            if isinstance(small, cst.Assign):
                target = small.targets[0].target
            elif isinstance(small, cst.AnnAssign):
                target = small.target
            kind = self._kind(y.value, local_names, ns, fscope)
            states = flow.at_site.get(i, set())
            sites.append(YieldSite(i, stmt, kind, y.value, target, maybe_second=any(s >= 1 for s in states)))

        tries = _TryFinder({id(s) for s in site_stmts}).find(_suite(func.body))
        body = func.body.body if isinstance(func.body, cst.IndentedBlock) else ()
        has_pre = _runs_code_before_yield(list(body), site_index)
        reassigned = frozenset(n for n, c in counts.items() if c > 1)
        inspect_uses = find_inspect_uses(
            func, names, local_refs, global_refs, reassigned, ns,
            lambda node: self._node_where(definition, original, func, node),
        )
        return GeneratorInfo(
            definition=definition,
            func=func,
            params=names,
            sites=tuple(sites),
            may_not_yield=0 in ends,
            guarded_trys=frozenset(tries.guarded),
            handler_trys=frozenset(tries.handlers),
            has_return=bool(finder.returns),
            has_pre_code=has_pre,
            local_names=local_names,
            local_refs=local_refs,
            local_aliases=local_aliases,
            global_refs=global_refs,
            global_names=global_names,
            declared_globals=declared,
            bound_anywhere=frozenset(bound_anywhere),
            shadowed_at_reads={k: frozenset(v) for k, v in shadows.items()},
            names=frozenset(names_in(func)),
            attribute_uses=attribute_uses(func),
            global_statements=frozenset(id(g) for g in finder.global_nodes),
            reassigned=reassigned,
            inspect_uses=inspect_uses,
        )

    def _node_where(self, definition: DecoratorDef, original: cst.FunctionDef, func: cst.FunctionDef, node: cst.CSTNode) -> Location:
        """Locate a node of the normalised copy via the same node in the original, if unchanged."""
        if func is original:
            return self._where(definition, node)
        code = cst.Module(body=[]).code_for_node(node)
        source = definition.namespace.source
        start = self._where(definition, original)
        offset = source.text.find(code, _line_start(source.text, start.line))
        if offset < 0:
            return start
        line = source.text.count("\n", 0, offset) + 1
        col = offset - _line_start(source.text, line) + 1
        return Location(source.display, line, col)

    def _kind(self, value: cst.BaseExpression | None, local_names: frozenset[str], ns, fscope) -> YieldKind:
        if value is None or (isinstance(value, cst.Name) and value.value == "None"):
            return YieldKind.RUN
        if isinstance(value, cst.Dict):
            if not value.elements:
                return YieldKind.SKIP
            if all(
                isinstance(el, cst.DictElement) and isinstance(el.key, cst.SimpleString)
                for el in value.elements
            ):
                return YieldKind.SKIP_NEXT
            return YieldKind.DYNAMIC
        if isinstance(value, cst.Lambda):
            return YieldKind.REPLACE
        if isinstance(value, (cst.Name, cst.Attribute)):
            if isinstance(value, cst.Name) and value.value in local_names:
                assigned = [a for a in fscope.assignments if a.name == value.value]
                if len(assigned) == 1 and isinstance(getattr(assigned[0], "node", None), cst.FunctionDef):
                    return YieldKind.REPLACE
                return YieldKind.DYNAMIC
            target = self.resolver.expression(ns, value)
            if target == MetaflowName("USER_SKIP_STEP"):
                return YieldKind.SKIP
            if isinstance(value, cst.Name):
                binding = ns.bindings.get(value.value)
                if isinstance(binding, Definition) and isinstance(binding.stmt, cst.FunctionDef):
                    return YieldKind.REPLACE
        return YieldKind.DYNAMIC


def _runs_code_before_yield(body: list, site_index: dict[int, int]) -> bool:
    """False only when a yield is the first thing the generator can execute."""
    if body and is_docstring(body[0]):
        body = body[1:]
    if not body:
        return True
    first = body[0]
    if id(first) in site_index:
        return False
    if isinstance(first, (cst.Try, cst.TryStar)) and isinstance(first.body, cst.IndentedBlock):
        return _runs_code_before_yield(list(first.body.body), site_index)
    return True


def _line_start(text: str, line: int) -> int:
    pos = 0
    for _ in range(line - 1):
        nxt = text.find("\n", pos)
        if nxt < 0:
            return len(text)
        pos = nxt + 1
    return pos
