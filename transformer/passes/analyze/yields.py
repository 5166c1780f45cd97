"""The decorator's yields, and what each one says.

A yield must be a statement of its own (`yield`, `yield X`, `name = yield X`), outside
loops, in a plain generator; a statement sharing its line with others is first given a
line of its own (the decorator is then analysed, and inlined, as that normalised copy).

What a yield says decides what the compiled step does in its place:

* `yield` / `yield None`: run the step;
* `yield {}` / `yield USER_SKIP_STEP`: skip it;
* a dict with string keys: skip it, and give `self.next` those arguments;
* a lambda or a function defined once: replace the step with it;
* anything else is only known at run time (a runtime helper decides).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import field

import libcst as cst

from ...support.diagnostics import (
    ASYNC_DECORATOR,
    NEVER_YIELDS,
    RETURNS_VALUE,
    YIELD_FROM,
    YIELD_IN_EXPRESSION,
    YIELD_IN_LOOP,
    CompileError,
    Diagnostic,
    Location,
)
from ...support.names import child_nodes
from ...support.namespace import Definition, MetaflowName, Namespace, Resolver
from ...support.records import frozen


class YieldKind(enum.Enum):
    RUN = "runs the step"
    SKIP = "skips the step"
    SKIP_NEXT = "skips the step and transitions with its own arguments"
    REPLACE = "replaces the step"
    DYNAMIC = "decided at run time"


@frozen
class YieldSite:
    """A statement that yields (`yield`, `yield X`, `name = yield X`), and what it says."""

    index: int  # its place among the decorator's yields, in source order
    stmt: cst.SimpleStatementLine = field(repr=False)
    kind: YieldKind
    value: cst.BaseExpression | None = field(repr=False)
    target: cst.BaseExpression | None = field(repr=False)  # `name` of `name = yield X`
    maybe_second: bool  # another yield may have been reached before this one
    surely_second: bool = False  # another yield was reached on every path to this one


@frozen
class YieldFacts:
    """The yield statements of the decorator's own code, and what else its walk found."""

    func: cst.FunctionDef = field(repr=False)  # the normalised copy the nodes belong to
    statements: tuple[tuple[cst.SimpleStatementLine, cst.Yield], ...] = field(repr=False)
    has_return: bool
    declared_globals: frozenset[str]  # names of its own `global` statements
    global_statements: frozenset[cst.Global] = field(repr=False)


class _SplitYieldLines(cst.CSTTransformer):
    """Puts a yield that shares a line with other statements (`a = 1; yield`) on its own."""

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
    if isinstance(small, (cst.Expr, cst.Assign, cst.AnnAssign)) and isinstance(
        small.value, cst.Yield
    ):
        return small.value
    return None


class _OwnCode:
    """One walk of the function's own code (not of nested functions, lambdas or classes):
    its yields (as statements, in expressions, in loops), returns, async code and `global`
    statements.

    A read-only walk over the nodes' fields: libcst's `visit` would rebuild every node."""

    def __init__(self, func: cst.FunctionDef) -> None:
        self.statement_yields: list[tuple[cst.SimpleStatementLine, cst.Yield]] = []
        self.other_yields: list[cst.Yield] = []
        self.in_loop: list[cst.Yield] = []
        self.returns: list[cst.Return] = []
        self.awaits: list[cst.CSTNode] = []
        self.shared_lines = 0
        self.globals_declared: list[str] = []
        self.global_nodes: list[cst.Global] = []
        self._stmt_yield: set[cst.Yield] = set()
        self._walk(func)

    def _walk(self, func: cst.FunctionDef) -> None:
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
                elif node not in self._stmt_yield:
                    self.other_yields.append(node)
            # children in reverse so that they are popped in source order
            stack.extend((child, loops) for child in reversed(child_nodes(node)))

    def _statement(self, node: cst.SimpleStatementLine) -> None:
        if len(node.body) > 1 and any(_small_yield(s) is not None for s in node.body):
            self.shared_lines += 1
        if len(node.body) == 1:
            found = _small_yield(node.body[0])
            if found is not None and not (
                isinstance(node.body[0], cst.Assign) and len(node.body[0].targets) != 1
            ):
                self._stmt_yield.add(found)
                self.statement_yields.append((node, found))


def find_yields(
    original: cst.FunctionDef,
    label: str,
    where: Location,
    locate: Callable[[cst.FunctionDef, cst.CSTNode], Location],
) -> YieldFacts:
    """The yields of the decorator `original` (written `label`, defined at `where`), or the
    problems with them. `locate(copy, node)` places a node of the analysed copy."""
    func = original
    own = _OwnCode(func)
    if own.shared_lines:  # `a = 1; yield`: give the yield its own line, then look again
        func = original.visit(_SplitYieldLines())
        assert isinstance(func, cst.FunctionDef)
        own = _OwnCode(func)
    if own.awaits:
        message = f"{label} uses async code; Metaflow runs only plain generators"
        raise CompileError([ASYNC_DECORATOR(message, where)])
    diags: list[Diagnostic] = []
    once = "a decorator must yield exactly once"
    single = "a decorator must yield a single value"
    for y in own.in_loop:
        diags.append(YIELD_IN_LOOP(f"{label} yields inside a loop; {once}", locate(func, y)))
    for y in own.other_yields:
        if isinstance(y.value, cst.From):
            diags.append(YIELD_FROM(f"{label} uses `yield from`; {single}", locate(func, y)))
        else:
            message = (
                f"{label} yields inside an expression; write the yield as its own statement "
                "(`yield`, `yield X` or `name = yield X`)"
            )
            diags.append(YIELD_IN_EXPRESSION(message, locate(func, y)))
    for _stmt, y in own.statement_yields:
        if isinstance(y.value, cst.From):
            diags.append(YIELD_FROM(f"{label} uses `yield from`; {single}", locate(func, y)))
    for ret in own.returns:
        value = ret.value
        if value is not None and not (isinstance(value, cst.Name) and value.value == "None"):
            message = (
                f"{label} returns a value; Metaflow accepts only a bare `return` from a decorator"
            )
            diags.append(RETURNS_VALUE(message, locate(func, ret)))
    if not own.statement_yields and not own.other_yields and not own.in_loop and not diags:
        message = (
            f"{label} never yields: a custom step decorator must be a generator that yields once"
        )
        diags.append(NEVER_YIELDS(message, where))
    if diags:
        raise CompileError(diags)
    return YieldFacts(
        func=func,
        statements=tuple(own.statement_yields),
        has_return=bool(own.returns),
        declared_globals=frozenset(own.globals_declared),
        global_statements=frozenset(own.global_nodes),
    )


def yield_target(stmt: cst.SimpleStatementLine) -> cst.BaseExpression | None:
    """`name` of `name = yield X` (or `name: T = yield X`), else None."""
    small = stmt.body[0]
    if isinstance(small, cst.Assign):
        return small.targets[0].target
    if isinstance(small, cst.AnnAssign):
        return small.target
    return None


def what_it_says(
    value: cst.BaseExpression | None,
    local_names: frozenset[str],
    local_functions: frozenset[str],
    ns: Namespace,
    resolver: Resolver,
) -> YieldKind:
    """What yielding `value` asks of Metaflow, as far as can be told without running it.

    `local_functions`: the decorator's locals bound once, by a `def`."""
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
            return YieldKind.REPLACE if value.value in local_functions else YieldKind.DYNAMIC
        target = resolver.expression(ns, value)
        if target == MetaflowName("USER_SKIP_STEP"):
            return YieldKind.SKIP
        if isinstance(value, cst.Name):
            binding = ns.bindings.get(value.value)
            if isinstance(binding, Definition) and isinstance(binding.stmt, cst.FunctionDef):
                return YieldKind.REPLACE
    return YieldKind.DYNAMIC
