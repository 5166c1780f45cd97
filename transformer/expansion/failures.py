"""The diagnostics of an expansion that failed: no suitable Metaflow, or a flow whose
evaluation raised, timed out or could not be imported (located in the user's code)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..support.diagnostics import (
    BAD_CONFIG,
    EXPANSION_TIMEOUT,
    MUTATOR_FAILED,
    NO_METAFLOW,
    NOT_IMPORTABLE,
    Diagnostic,
    Location,
)

if TYPE_CHECKING:
    from .runner import FlowRequest

PHASE_TEXT = {
    "import": "importing the flow",
    "configs": "resolving its configs",
    "pre_mutate": "running pre_mutate",
    "flow_decorators": "initialising its flow decorators",
    "with": "attaching --with decorators",
    "mutate": "running mutate",
    "describe": "reading the expanded flow",
}


def unsupported(request: FlowRequest, why: str, display: Callable[[Path], str]) -> Diagnostic:
    where = request.blame or Location(display(request.path))
    return NO_METAFLOW(
        f"{request.blame_name} needs Metaflow >= 2.16 to be evaluated, but {why}: pass "
        "--python PATH (or `python` in [tool.decoflow]) naming an interpreter with "
        "metaflow >= 2.16, or install metaflow>=2.16 where decoflow runs",
        where,
    )


def _frame_location(frame: dict, display: Callable[[Path], str]) -> Location:
    return Location(display(Path(frame["file"])), int(frame["line"] or 1), int(frame["col"] or 1))


def failure_diagnostic(
    request: FlowRequest, result: dict, display: Callable[[Path], str], timeout: float
) -> Diagnostic:
    """A located diagnostic for a failed evaluation: the innermost frame of the user's code."""
    frames = result.get("frames") or []
    phase = PHASE_TEXT.get(result.get("phase", ""), "expanding the flow")
    flow_where = Location(display(request.path), (result.get("flow") or {}).get("line") or 1)
    owner = f"in {result['owner']}, " if result.get("owner") else ""
    expression = result.get("expression")
    if expression:  # a config_expr(...) Metaflow evaluated: its own text, not a file
        owner = f"evaluating config_expr({expression!r}), {owner}"
    where = _frame_location(frames[-1], display) if frames else flow_where
    if expression and not frames:
        where = _expression_location(request, expression, display) or flow_where
    notes = tuple(
        (_frame_location(f, display), f"in {f['function']}: {f.get('code') or ''}".rstrip(": "))
        for f in frames[:-1][-6:]
    )
    if where != flow_where:
        notes += ((flow_where, "while expanding this flow"),)
    if result.get("timeout"):
        return EXPANSION_TIMEOUT(
            f"expanding the flow did not finish within {timeout:g}s ({phase}); "
            "raise the limit with --expansion-timeout or `expansion-timeout` in [tool.decoflow]",
            where,
            notes,
        )
    if result.get("phase") == "configs" and not frames:
        message = str(result.get("message"))
        declared = _config_declarations(request, re.findall(r"for '([^']+)'", message), display)
        if declared:  # at the Config(...) Metaflow names first; the others as notes
            (where, _), *others = declared
            notes = tuple((at, f"{name!r} is declared here") for at, name in others) + notes
        return BAD_CONFIG(f"bad configuration: {message}", where, notes)
    if result.get("phase") == "import":
        message = f"the flow cannot be imported: {result.get('message')}"
        return NOT_IMPORTABLE(message, where, notes)
    message = f"{result.get('message')} ({owner}while Metaflow was {phase})"
    return MUTATOR_FAILED(message, where, notes)


def _expression_location(
    request: FlowRequest, expression: str, display: Callable[[Path], str]
) -> Location | None:
    """Where the flow file writes `config_expr(<expression>)` (the first), else None."""
    tree = _flow_tree(request)
    for node in ast.walk(tree) if tree is not None else ():
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        callee = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        first = node.args[0]
        written = first.value if isinstance(first, ast.Constant) else None
        if callee == "config_expr" and written == expression:
            return Location(display(request.path), node.lineno, node.col_offset + 1)
    return None


def _flow_tree(request: FlowRequest) -> ast.Module | None:
    try:
        text = request.source if request.source is not None else request.path.read_text()
        return ast.parse(text)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None


def _config_declarations(
    request: FlowRequest, names: list[str], display: Callable[[Path], str]
) -> list[tuple[Location, str]]:
    """Where the flow file declares the configs `names` (`Config("name", ...)`), in the order
    given; configs declared elsewhere (a base class in another module) are left out."""
    if not names:
        return []
    tree = _flow_tree(request)
    if tree is None:
        return []
    found: dict[str, Location] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        callee = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        given = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "name")]
        if callee != "Config" or not given or not isinstance(given[0], ast.Constant):
            continue
        name = given[0].value
        if isinstance(name, str) and name not in found:
            found[name] = Location(display(request.path), node.lineno, node.col_offset + 1)
    return [(found[name], name) for name in dict.fromkeys(names) if name in found]
