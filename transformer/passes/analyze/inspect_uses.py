"""What `inspect` asks about a step from decorator code (issue 14, item 3).

Natively `inspect.getsource(getattr(flow, step_name))` in a decorator returns the step as
written in the flow file: its decorators, `def` line and body, indented as in the class (the
`ai_debug` example sends it to an assistant). In the compiled flow the same call would read
the compiled step. The text is known at compile time, so such a call becomes a module-level
string constant holding it. Other questions about where a step's code is (`getsourcelines`,
`getfile`, ...), and calls whose argument decoflow cannot identify, get a warning (DF601).

The argument is identified when it is, with `flow` and `step_name` the decorator's own
parameters (never rebound): `getattr(flow, step_name)` (the step it decorates),
`getattr(flow, "name")` or `flow.name` (a method of the flow class), `type(flow)` or
`flow.__class__` in place of `flow`, or a local assigned once from one of these.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable, Mapping
from dataclasses import field

import libcst as cst

from ...support.diagnostics import Location
from ...support.names import child_nodes
from ...support.namespace import ImportFrom, ImportModule, Namespace, dotted_name
from ...support.records import frozen

#: inspect functions whose answer about a step depends on the file the step is read from.
SOURCE_FUNCTIONS = frozenset(
    {"getsource", "getsourcelines", "findsource", "getfile", "getsourcefile", "getcomments"}
)

THIS_STEP = ""  # `InspectUse.step` for the step the decorator decorates


@frozen
class InspectUse:
    """`inspect.<function>(X, ...)` in a decorator (or `inspect.<function>` not called)."""

    node: cst.CSTNode = field(repr=False)  # the call (or the reference) in the analysed copy
    function: str
    step: str | None  # THIS_STEP, a method name of the flow class, or None: not identified
    location: Location

    @property
    def replaced(self) -> bool:
        """Whether the compiled flow can answer it with a constant (if `step` is found)."""
        called = isinstance(self.node, cst.Call)
        return self.function == "getsource" and self.step is not None and called


def find_inspect_uses(
    func: cst.FunctionDef,
    params: tuple[str, ...],
    local_refs: Mapping[cst.Name, str],
    global_refs: Mapping[cst.Name, str],
    reassigned: frozenset[str],
    ns: Namespace,
    where: Callable[[cst.CSTNode], Location],
) -> tuple[InspectUse, ...]:
    """Every use of an inspect function of SOURCE_FUNCTIONS in the decorator `func`."""
    if "inspect" not in ns.source.text:
        return ()  # cheap exit: no decorator of the module can use it
    local_modules, local_functions = _local_imports(func)
    refs = (local_refs, global_refs)

    def inspect_function(node: cst.CSTNode) -> str | None:
        """The inspect function `node` names (`inspect.getsource`, `getsource`), if any."""
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
            base = node.value
            is_module = (
                local_refs.get(base) in local_modules
                if base in local_refs
                else _global_binding(ns, global_refs.get(base)) == ("inspect", None)
            )
            return node.attr.value if is_module else None
        if isinstance(node, cst.Name):
            if node in local_refs:
                return local_functions.get(local_refs[node])
            found = _global_binding(ns, global_refs.get(node))
            return found[1] if found and found[0] == "inspect" else None
        return None

    def is_param(node: cst.CSTNode, index: int) -> bool:
        if index >= len(params) or params[index] in reassigned:
            return False
        return isinstance(node, cst.Name) and local_refs.get(node) == params[index]

    def is_flow(node: cst.CSTNode) -> bool:
        if is_param(node, 1):
            return True
        if isinstance(node, cst.Attribute) and node.attr.value == "__class__":
            return is_param(node.value, 1)
        return (
            isinstance(node, cst.Call)
            and _is_builtin(node.func, "type", ns, refs)
            and len(node.args) == 1
            and is_param(node.args[0].value, 1)
        )

    assigned_once = _assigned_once(func, local_refs, reassigned)

    def step_of(expr: cst.CSTNode, depth: int = 0) -> str | None:
        if isinstance(expr, cst.Name) and depth < 20:
            value = assigned_once.get(local_refs.get(expr, ""))
            return None if value is None else step_of(value, depth + 1)
        if isinstance(expr, cst.Attribute) and is_flow(expr.value):
            return expr.attr.value
        if (
            isinstance(expr, cst.Call)
            and _is_builtin(expr.func, "getattr", ns, refs)
            and len(expr.args) == 2
            and all(a.keyword is None and not a.star for a in expr.args)
            and is_flow(expr.args[0].value)
        ):
            name = expr.args[1].value
            if is_param(name, 0):
                return THIS_STEP
            if isinstance(name, cst.SimpleString) and isinstance(name.evaluated_value, str):
                return name.evaluated_value
        return None

    uses: list[InspectUse] = []
    callees: set[cst.CSTNode] = set()
    stack: list[cst.CSTNode] = [func.body]
    references: list[tuple[cst.CSTNode, str]] = []
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Call):
            function = inspect_function(node.func)
            if function in SOURCE_FUNCTIONS:
                callees.add(node.func)
                first = node.args[0] if node.args else None
                positional = first is not None and first.keyword is None and not first.star
                step = step_of(first.value) if positional else None
                uses.append(InspectUse(node, function, step, where(node)))
        elif isinstance(node, (cst.Attribute, cst.Name)):
            function = inspect_function(node)
            if function in SOURCE_FUNCTIONS:
                references.append((node, function))
        stack.extend(reversed(child_nodes(node)))
    for node, function in references:  # `get = inspect.getsource`: cannot be followed
        if node not in callees:
            uses.append(InspectUse(node, function, None, where(node)))
    return tuple(uses)


def _global_binding(ns: Namespace, name: str | None) -> tuple[str, str | None] | None:
    """(module, None) for a module imported as `name`, (module, attribute) for a name
    imported from a module."""
    binding = ns.bindings.get(name) if name else None
    if isinstance(binding, ImportModule):
        return (binding.dotted, None)
    if isinstance(binding, ImportFrom) and binding.module:
        return (binding.module, binding.name)
    return None


def _is_builtin(node: cst.CSTNode, name: str, ns: Namespace, refs: tuple[Mapping, Mapping]) -> bool:
    """Whether `node` reads the builtin `name` (neither a local nor a module name)."""
    return (
        isinstance(node, cst.Name)
        and node.value == name
        and name not in ns.bindings
        and not any(node in r for r in refs)
    )


def _local_imports(func: cst.FunctionDef) -> tuple[set[str], dict[str, str]]:
    """Locals of the decorator bound to the inspect module, and to inspect functions."""
    modules: set[str] = set()
    functions: dict[str, str] = {}
    stack: list[cst.CSTNode] = [func.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Import):
            for alias in node.names:
                if dotted_name(alias.name) == "inspect":
                    bound = alias.asname.name if alias.asname else alias.name
                    if isinstance(bound, cst.Name):
                        modules.add(bound.value)
        elif isinstance(node, cst.ImportFrom) and not node.relative and node.module is not None:
            if dotted_name(node.module) == "inspect" and not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    bound = alias.asname.name if alias.asname else alias.name
                    if isinstance(bound, cst.Name) and isinstance(alias.name, cst.Name):
                        functions[bound.value] = alias.name.value
        stack.extend(child_nodes(node))
    return modules, functions


def _assigned_once(
    func: cst.FunctionDef, local_refs: Mapping[cst.Name, str], reassigned: frozenset[str]
) -> dict[str, cst.BaseExpression]:
    """Locals of the decorator bound exactly once, by `name = value`: name -> value."""
    out: dict[str, cst.BaseExpression] = {}
    stack: list[cst.CSTNode] = [func.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Assign) and len(node.targets) == 1:
            target = node.targets[0].target
            local = local_refs.get(target) if isinstance(target, cst.Name) else None
            if local is not None and local not in reassigned:
                out[local] = node.value
        stack.extend(child_nodes(node))
    return out


# --- what natively comes back ------------------------------------------------------------


def native_source(text: str, first_line: int) -> str:
    """What `inspect.getsource` returns for a function of a file holding `text` whose code
    starts on `first_line` (1-based; its first decorator's line): the file's lines read as
    `linecache` reads them (universal newlines), cut as `inspect.getblock` cuts them."""
    lines = io.StringIO(text, newline=None).readlines()
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(inspect.getblock(lines[first_line - 1 :]))


def string_constant(name: str, text: str) -> cst.BaseStatement:
    """`NAME = (<one literal per line of text>)`, readable and exact."""
    pieces = [_literal(piece) for piece in text.splitlines(keepends=True)] or ['""']
    body = "".join(f"    {piece}\n" for piece in pieces)
    return cst.parse_statement(f"{name} = (\n{body})\n")


def _literal(piece: str) -> str:
    written = repr(piece)
    if written.startswith("'") and '"' not in piece:
        written = '"' + written[1:-1].replace("\\'", "'") + '"'
    return written
