"""Pass 7: assemble the output module.

The flow module keeps everything as written except: rewritten steps replace the originals;
custom decorator definitions in the flow file and imports that only brought custom
decorators or Metaflow 2.16+-only names are removed; carried imports go after the flow's
own imports, followed by carried helpers and the runtime helpers; a header says the file is
generated and from what.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import libcst as cst

from .inline import comment_line
from .names import names_in

CODING = re.compile(r"^#.*coding[:=]")


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


class _ReplaceSteps(cst.CSTTransformer):
    def __init__(self, steps: dict[int, cst.FunctionDef], removed: set[int]) -> None:
        self.steps = steps
        self.removed = removed

    def leave_FunctionDef(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.BaseStatement | cst.RemovalSentinel:
        if id(original) in self.removed:
            return cst.RemoveFromParent()
        return self.steps.get(id(original), updated)


class _DropImports(cst.CSTTransformer):
    """Removes import aliases in `droppable` that the output no longer uses."""

    def __init__(self, droppable: set[str], used: set[str]) -> None:
        self.droppable = droppable
        self.used = used

    def _keep(self, alias: cst.ImportAlias, bound: str) -> bool:
        return bound not in self.droppable or bound in self.used

    def leave_Import(self, original: cst.Import, updated: cst.Import):
        from .namespace import _import_binding_name

        kept = [a for a in updated.names if self._keep(a, _import_binding_name(a))]
        return self._result(updated, kept)

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom):
        from .namespace import alias_name

        if isinstance(updated.names, cst.ImportStar):
            return updated
        kept = [a for a in updated.names if self._keep(a, alias_name(a))]
        return self._result(updated, kept)

    @staticmethod
    def _result(updated, kept):
        if not kept:
            return cst.RemoveFromParent()
        if len(kept) == len(updated.names):
            return updated
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        changes = {"names": kept}
        if isinstance(updated, cst.ImportFrom) and updated.rpar is not None and len(kept) == 1:
            changes.update(lpar=None, rpar=None)
        return updated.with_changes(**changes)


def used_names(module: cst.Module) -> set[str]:
    """Names the module uses outside import statements."""
    used: set[str] = set()
    for stmt in module.body:
        if _is_import_line(stmt):
            continue
        used |= names_in(stmt)
    return used


def render(
    module: cst.Module,
    *,
    steps: dict[int, cst.FunctionDef],
    removed_defs: set[int],
    droppable_imports: set[str],
    carried_imports: list[cst.SimpleStatementLine],
    carried_defs: list[tuple[str, cst.BaseStatement]],
    runtime_defs: list[cst.FunctionDef],
    header: Iterable[str],
) -> cst.Module:
    module = module.visit(_ReplaceSteps(steps, removed_defs))
    module = module.visit(_DropImports(droppable_imports, used_names(module)))
    body = list(module.body)
    insert_at = 0
    for i, stmt in enumerate(body):
        if _is_import_line(stmt):
            insert_at = i + 1
        elif i == 0 and isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(
            stmt.body[0], cst.Expr
        ) and isinstance(stmt.body[0].value, cst.SimpleString):
            insert_at = 1
        elif isinstance(stmt, (cst.ClassDef, cst.FunctionDef)) or not isinstance(stmt, cst.SimpleStatementLine):
            break
    added: list[cst.BaseStatement] = []
    added.extend(carried_imports)
    previous = None
    for origin, stmt in carried_defs:
        lines = [cst.EmptyLine(), cst.EmptyLine()]
        if origin != previous:
            lines.append(comment_line(f"carried by decoflow from {origin}"))
            previous = origin
        stmt = stmt.with_changes(leading_lines=[*lines, *[ln for ln in stmt.leading_lines if ln.comment]])
        added.append(stmt)
    for i, func in enumerate(runtime_defs):
        lines = [cst.EmptyLine(), cst.EmptyLine()]
        if i == 0:
            lines.append(comment_line("decoflow runtime helpers: transitions a decorator's yield can override"))
        added.append(func.with_changes(leading_lines=lines))
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
    head = list(module.header)
    keep = 0
    for ln in head:
        text = ln.comment.value if ln.comment else ""
        if not (text.startswith("#!") or CODING.match(text)):
            break
        keep += 1
    new_header = [*head[:keep], *(comment_line(h) for h in header), *head[keep:]]
    return module.with_changes(body=body, header=new_header)
