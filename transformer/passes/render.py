"""Pass 7: assemble the output module, and print it.

The flow module keeps everything as written except: rewritten steps replace the originals;
custom decorator definitions in the flow file and imports that only brought custom
decorators or Metaflow 2.16+-only names are removed (when nothing left in the output reads
them); carried imports go after the flow's own imports, followed by carried helpers and the
runtime helpers; a header says the file is generated and from what.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

try:  # libcst's printer state; public API has no hook to skip position bookkeeping
    from libcst._nodes.internal import CodegenState as _CodegenState
except ImportError:  # pragma: no cover - a future libcst: fall back to Module.code
    _CodegenState = None  # type: ignore[assignment,misc]

from ..support.code import comment_line
from ..support.import_lines import LINE_LENGTH, merge_metaflow_imports, wrap_long_imports
from ..support.namespace import (
    METAFLOW,
    ImportFrom,
    ImportModule,
    MetaflowName,
    Namespace,
    Resolver,
    alias_name,
    import_binding_name,
)
from .discover import StepSite, decorator_generator
from .discover.classes import is_decorator_class

if TYPE_CHECKING:
    from .attach import BuiltinAttach  # loaded only for a compile with `--with`
    from .carry import ClassCode

CODING = re.compile(r"^#.*coding[:=]")
UTF8_COOKIE = re.compile(r"coding[:=]\s*(utf-?8)\b", re.IGNORECASE)


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _replace_steps(
    module: cst.Module,
    steps: Mapping[cst.FunctionDef, cst.FunctionDef],
    removed: frozenset[cst.BaseStatement],
) -> cst.Module:
    """Swaps rewritten steps into their classes and drops removed top-level defs, touching
    nothing else (no traversal of the whole tree)."""
    body: list[cst.BaseStatement] = []
    for stmt in module.body:
        if stmt in removed:
            continue
        if isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
            items = [steps.get(item, item) for item in stmt.body.body]  # type: ignore[call-overload]
            if any(new is not old for new, old in zip(items, stmt.body.body)):
                stmt = stmt.with_changes(body=stmt.body.with_changes(body=items))
        body.append(stmt)
    return module.with_changes(body=body)


def _drop_imports(module: cst.Module, droppable: set[str], used: set[str]) -> cst.Module:
    """Removes top-level import aliases in `droppable` that the output no longer uses."""
    body: list[cst.BaseStatement] = []
    orphans: list[cst.EmptyLine] = []  # comments above a removed import go to what follows
    for stmt in module.body:
        if orphans:
            stmt = stmt.with_changes(leading_lines=[*orphans, *stmt.leading_lines])
            orphans = []
        if not _is_import_line(stmt):
            body.append(stmt)
            continue
        smalls = []
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and isinstance(small.names, cst.ImportStar):
                smalls.append(small)
                continue
            bound = import_binding_name if isinstance(small, cst.Import) else alias_name
            kept = [a for a in small.names if bound(a) not in droppable or bound(a) in used]  # type: ignore[union-attr]
            if len(kept) == len(small.names):  # type: ignore[arg-type]
                smalls.append(small)
            elif kept:
                kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                changes: dict = {"names": kept}
                if isinstance(small, cst.ImportFrom) and small.rpar is not None and len(kept) == 1:
                    changes.update(lpar=None, rpar=None)
                smalls.append(small.with_changes(**changes))
        if smalls:
            smalls[-1] = smalls[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            body.append(stmt.with_changes(body=smalls))
        else:
            orphans = [ln for ln in stmt.leading_lines if ln.comment is not None]
    return module.with_changes(body=body)


def builtin_imports(builtins: Sequence[BuiltinAttach]) -> list[cst.SimpleStatementLine]:
    """`from metaflow import <decorator>` for the `--with` built-ins the flow does not
    import (the last spec's first)."""
    out: list[cst.SimpleStatementLine] = []
    for b in builtins:
        if b.needs_import:
            alias = f" as {b.local_name}" if b.local_name != b.spec.name else ""
            stmt = cst.parse_statement(f"from metaflow import {b.spec.name}{alias}")
            assert isinstance(stmt, cst.SimpleStatementLine)
            out.insert(0, stmt)
    return out


def droppable_imports(resolver: Resolver, flow_ns: Namespace) -> set[str]:
    """Flow-level names bound to custom decorators, their modules, or 2.16+-only names."""
    out: set[str] = set()
    for name, binding in flow_ns.bindings.items():
        if (
            isinstance(binding, ImportFrom)
            and (binding.module or "").split(".")[0] == METAFLOW
            and binding.name in {"user_step_decorator", "USER_SKIP_STEP", "UserStepDecorator"}
        ):
            out.add(name)
        elif isinstance(binding, (ImportFrom, ImportModule)):
            target = resolver.resolve(flow_ns, name)
            if isinstance(target, MetaflowName):
                continue
            if decorator_generator(resolver, target) is not None or is_decorator_class(
                resolver, target
            ):
                out.add(name)
            elif isinstance(binding, ImportModule) and not binding.dotted.startswith(METAFLOW):
                ref = resolver.finder.find(binding.dotted)
                if ref is not None and not ref.external:
                    out.add(name)
    return out


def header(
    display: str,
    with_specs: Sequence[str],
    sites: Sequence[StepSite],
    expanded: Sequence[str] = (),
) -> list[str]:
    """The lines of the comment heading the output: generated, from what (`expanded`: what
    the expansion of mutators and configs used), with what."""
    origins: dict[str, str] = {}
    for site in sites:
        for use in site.uses:
            origins.setdefault(use.written, use.definition.origin)
    generated = f"Generated by decoflow from {display}."
    lines = [generated, "Do not edit: edit the source and recompile."]
    if len(f"# {generated} {lines[1]}") <= LINE_LENGTH:
        lines = [f"{generated} {lines[1]}"]
    lines.extend(expanded)
    if with_specs:
        lines.append("With: " + " ".join(f"--with {s}" for s in with_specs))
    if origins:
        lines.append("Inlined: " + ", ".join(f"@{n} ({o})" for n, o in origins.items()))
    return [part for text in lines for part in _comment_lines(text)]


def _comment_lines(text: str) -> list[str]:
    """`text` as comment lines within the line length (broken between words, the lines
    after the first indented), as a person would write a long comment."""
    wrapped = textwrap.wrap(
        text,
        width=LINE_LENGTH - len("# "),
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return wrapped or [text]


def render(
    module: cst.Module,
    *,
    steps: Mapping[cst.FunctionDef, cst.FunctionDef],
    removed_defs: frozenset[cst.BaseStatement],
    droppable_imports: set[str],
    still_used: set[str],
    carried_imports: Sequence[cst.SimpleStatementLine],
    carried_defs: Sequence[tuple[str, cst.BaseStatement]],
    runtime_defs: Sequence[tuple[str, str]],
    header: Iterable[str],
) -> cst.Module:
    """The output module. `runtime_defs`: the runtime helpers to emit, (name, source)."""
    module = _replace_steps(module, steps, removed_defs)
    if droppable_imports:
        module = _drop_imports(module, droppable_imports, still_used)
    body = list(module.body)
    insert_at = 0
    for i, stmt in enumerate(body):
        if _is_import_line(stmt):
            insert_at = i + 1
        elif (
            i == 0
            and isinstance(stmt, cst.SimpleStatementLine)
            and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Expr)
            and isinstance(stmt.body[0].value, cst.SimpleString)
        ):
            insert_at = 1
        elif isinstance(stmt, (cst.ClassDef, cst.FunctionDef)) or not isinstance(
            stmt, cst.SimpleStatementLine
        ):
            break
    added: list[cst.BaseStatement] = []
    added.extend(merge_metaflow_imports(body, carried_imports))
    previous = None
    for origin, stmt in carried_defs:
        lines = [cst.EmptyLine(), cst.EmptyLine()]
        if origin != previous:
            lines.append(comment_line(f"carried by decoflow from {origin}"))
            previous = origin
        stmt = stmt.with_changes(
            leading_lines=[*lines, *[ln for ln in stmt.leading_lines if ln.comment]]
        )
        added.append(stmt)
    previous = None
    for name, text in runtime_defs:
        lines = [cst.EmptyLine(), cst.EmptyLine()]
        about = _helper_comment(name)
        if about != previous:
            lines.append(comment_line(about))
            previous = about
        added.append(_verbatim(text, lines))
    if (carried_defs or runtime_defs) and insert_at < len(body):
        nxt = body[insert_at]
        blanks = 0
        for ln in nxt.leading_lines:
            if ln.comment is not None:
                break
            blanks += 1
        if blanks < 2:
            body[insert_at] = nxt.with_changes(
                leading_lines=[*(cst.EmptyLine() for _ in range(2 - blanks)), *nxt.leading_lines]
            )
    body[insert_at:insert_at] = added
    return _with_header(module.with_changes(body=body), header)


#: What the comment above a runtime helper says, by helper; the others are transitions.
_HELPER_COMMENTS = {
    "decoflow_yielded_twice": "decoflow runtime helper: Metaflow's error for a second yield",
    "DecoflowStepDecorator": "decoflow runtime helpers: what a decorator class gets from "
    "Metaflow's UserStepDecorator",
    "decoflow_post_step": "decoflow runtime helpers: what a decorator class gets from "
    "Metaflow's UserStepDecorator",
}


def _helper_comment(name: str) -> str:
    """The comment above runtime helper `name`, said once for consecutive helpers alike."""
    transitions = "decoflow runtime helpers: transitions a decorator's yield can override"
    return _HELPER_COMMENTS.get(name, transitions)


def render_header_only(module: cst.Module, header: Iterable[str]) -> str:
    """A module with nothing to inline, only the header added (an expanded flow)."""
    return module_code(_with_header(module, header))


def _with_header(module: cst.Module, header: Iterable[str]) -> cst.Module:
    module = wrap_long_imports(module)
    head = list(module.header)
    keep = 0
    for i, ln in enumerate(head):
        text = ln.comment.value if ln.comment else ""
        if not (text.startswith("#!") or CODING.match(text)):
            break
        if CODING.match(text) and not UTF8_COOKIE.search(text):
            # The output is text that is written as UTF-8 (carried code may need it): say so.
            head[i] = ln.with_changes(comment=cst.Comment("# -*- coding: utf-8 -*-"))
        keep += 1
    new_header = [*head[:keep], *(comment_line(h) for h in header), *head[keep:]]
    return module.with_changes(header=new_header)


if _CodegenState is not None:

    class _PrintState(_CodegenState):  # type: ignore[misc,valid-type]
        """libcst's printer state without position bookkeeping.

        `Module.code` enters a (generator-based) context manager per node so that
        PositionProvider can record positions; plain printing does nothing in it. Skipping it
        prints the same text about a third faster, and the output is three to five times the
        input, so printing is a large share of a compile."""

        _nothing = contextlib.nullcontext()

        def record_syntactic_position(self, node, *, start_node=None, end_node=None):  # type: ignore[no-untyped-def,override]
            return self._nothing


def module_code(module: cst.Module) -> str:
    """`module.code`, printed by libcst's own printer without its position bookkeeping."""
    if _CodegenState is None or not hasattr(module, "_codegen"):
        return module.code
    state = _PrintState(
        default_indent=module.default_indent, default_newline=module.default_newline
    )
    module._codegen(state)
    return "".join(state.tokens)


def place_classes(module: cst.Module, code: ClassCode | None) -> cst.Module:
    """Class-based decorators (`carry.classes`): the flow's own classes rewritten in place,
    and one instance per use."""
    if code is None or not code.instances:
        return module
    return insert_instances(replace_classes(module, dict(code.in_flow)), list(code.instances))


def insert_instances(module: cst.Module, stmts: list[cst.BaseStatement]) -> cst.Module:
    """The instances, just before `if __name__ == "__main__":` (else at the end): after every
    definition, before the flow runs, as Metaflow makes them when it loads the flow."""
    if not stmts:
        return module
    stmts = list(stmts)
    stmts[0] = stmts[0].with_changes(
        leading_lines=[
            cst.EmptyLine(),
            cst.EmptyLine(),
            cst.EmptyLine(
                comment=cst.Comment(
                    "# decoflow: one instance per use of a class-based decorator, "
                    "made as the flow loads"
                )
            ),
        ]
    )
    body = list(module.body)
    at = len(body)
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.If) and "__name__" in cst.Module(body=[]).code_for_node(stmt.test):
            at = i
            break
    return module.with_changes(body=[*body[:at], *stmts, *body[at:]])


def replace_classes(module: cst.Module, new: dict[str, cst.ClassDef]) -> cst.Module:
    """Top-level classes of the flow module replaced by name (in-flow decorator classes)."""
    if not new:
        return module
    body = [new.get(s.name.value, s) if isinstance(s, cst.ClassDef) else s for s in module.body]
    return module.with_changes(body=body)


def _verbatim(text: str, leading_lines: Sequence[cst.EmptyLine]) -> cst.BaseStatement:
    """A runtime helper's definition, printed as its text (parsing it only to print the same
    text again cost ~3 ms a compile), or parsed where libcst prints otherwise."""
    if _CodegenState is None:  # pragma: no cover - a libcst without `_codegen_impl`
        return cst.parse_statement(text).with_changes(leading_lines=leading_lines)
    return Verbatim(text=text, leading_lines=tuple(leading_lines))


@dataclass(frozen=True)
class Verbatim(cst.BaseStatement):
    """A module-level statement given as source text (a whole `def` or `class`, ending in a
    newline), printed as is after its leading lines. Visitors pass over it: nothing after
    rendering rewrites a runtime helper."""

    text: str
    leading_lines: Sequence[cst.EmptyLine] = ()

    def _visit_and_replace_children(self, visitor: object) -> Verbatim:
        return self

    def _codegen_impl(self, state: object) -> None:
        for line in self.leading_lines:
            line._codegen(state)  # type: ignore[arg-type]
        state.add_token(self.text)  # type: ignore[attr-defined]
