"""`decoflow explain`: what the compiler does to each step, in words, and side by side.

For each step: the custom decorators inlined, outermost first, where each is defined, and
what each of its yields does (runs the step, skips it, skips with `self.next` arguments,
replaces it, or decides at run time). With `step=`, the compiled step is shown after its
source.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst

from .transformer.options import CompileOptions
from .transformer.passes.analyze import YieldKind
from .transformer.pipeline import prepare
from .transformer.support.paths import display_path, find_root
from .transformer.support.source import decode, parse_text

_KIND_WORDS = {
    YieldKind.RUN: "runs the step",
    YieldKind.SKIP: "skips the step",
    YieldKind.SKIP_NEXT: "skips the step, self.next gets its arguments",
    YieldKind.REPLACE: "replaces the step",
    YieldKind.DYNAMIC: "decided at run time (run, skip or replace)",
}


def explain_file(
    path: Path | str, options: CompileOptions | None = None, step: str | None = None
) -> str:
    options = options or CompileOptions()
    path = Path(path).resolve()
    root = (options.project_root or find_root(path.parent)).resolve()
    display = display_path(path, root)
    source = parse_text(decode(path.read_bytes(), display), path, display)
    compilation = prepare(source, options, root)
    found = compilation.analyse()
    sites, builtins, infos = found.sites, found.builtins, found.infos
    lines: list[str] = []
    expansion = compilation.expansion
    if expansion is not None and step is None:
        lines.append(f"mutators and configs evaluated with Metaflow {expansion.metaflow_version}")
        for mutator in expansion.flow_mutators:
            lines.append(f"  flow mutator {mutator.spec()} ({mutator.module}.{mutator.qualname})")
        for deco in expansion.flow_decorators:
            lines.append(f"  flow decorator {deco.spec()}")
        for change in expansion.flow_changes():
            lines.append(f"  flow mutators: {change}")
        for param in expansion.added_parameters:
            lines.append(f"  parameter {param.var} added by a mutator")
        for config in expansion.configs.values():
            folder = compilation.source.path.parent
            lines.append(f"  config {config.describe(folder)} = {config.value.text}")
    names = [s.name for s in sites]
    if step is not None and step not in names:
        raise KeyError(f"no step named '{step}' in {display} (steps: {', '.join(names)})")
    for site in sites:
        if step is not None and site.name != step:
            continue
        lines.append(f"step {site.name}" + ("" if site.uses else ": no custom decorators"))
        if expansion is not None:
            for change in expansion.changes(site.name):
                lines.append(f"  mutators: {change}")
        for level, use in enumerate(site.uses, start=1):
            info = infos[use.definition.key]
            via = ", from --with" if use.via_with else ""
            lines.append(f"  {level}. @{use.written} ({use.definition.origin}{via})")
            if getattr(info, "is_class", False):
                lines.extend(class_lines(info))
                continue
            for ys in info.sites:
                where = compilation.locator.locate(use.definition.namespace.source, ys.stmt)
                lines.append(f"       yield at line {where.line}: {_KIND_WORDS[ys.kind]}")
            if info.flow.may_not_yield:
                lines.append(
                    "       may finish without yielding: the task fails then, as in Metaflow"
                )
        for b in builtins:
            lines.append(f"  + @{b.spec.name} from --with {b.spec.raw}")
    if step is not None:
        site = next(s for s in sites if s.name == step)
        compiled = cst.parse_module(compilation.run())
        new = _find_step(compiled, site.class_name, step)
        empty = cst.Module(body=[])
        lines += [
            "",
            f"--- source: {display}, step {step}",
            empty.code_for_node(site.func).strip("\n"),
        ]
        lines += [
            "",
            f"+++ compiled: step {step}",
            empty.code_for_node(new).strip("\n") if new else "(not found)",
        ]
    return "\n".join(lines) + "\n"


def class_lines(info) -> list[str]:
    """What a class-based decorator's layer does, by the hooks its class defines."""
    hooks = ", ".join(info.hooks) if info.hooks else "none (Metaflow's defaults)"
    out = [f"       class-based decorator; its own hooks: {hooks}"]
    if "post_step" not in info.hooks:
        out.append("       default post_step: returns (None, None), which erases a skip below it")
    if info.can_skip:
        out.append("       may set self.skip_step: skips the step (a dict: self.next gets it)")
    if info.can_replace:
        out.append("       pre_step may return a replacement for the step")
    return out


def _find_step(module: cst.Module, class_name: str, step: str) -> cst.FunctionDef | None:
    for stmt in module.body:
        if isinstance(stmt, cst.ClassDef) and stmt.name.value == class_name:
            for item in stmt.body.body:
                if isinstance(item, cst.FunctionDef) and item.name.value == step:
                    return item
    return None
