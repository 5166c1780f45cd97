"""Where compile time goes: cProfile of decoflow on the generated benchmark flows.

Two profiles:

1. `cli`: one whole `decoflow compile flow.py -o out.py` on the 8-step flow, in this
   process from a cold start of the compiler (imports included), as the latency benchmark
   runs it. Run this script in a fresh interpreter for it to mean anything.
2. `compile`: one `compile_file` call on a larger flow (default 100 steps), after the
   imports, as the scale benchmark times it.

For each: self time grouped by where the code lives (each decoflow module, libcst's
parser / nodes / metadata / matchers, imports, the rest), then the decoflow functions
with the most cumulative time (their libcst work included).

    python benchmarks/profile_compile.py [--steps 100] [--top 15] [--dump DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
from collections import defaultdict
from pathlib import Path

from common import REPO_ROOT
from gen import write_flow

_LIBCST_AREAS = [
    ("libcst/_parser", "libcst parser"),
    ("libcst/_nodes", "libcst nodes (visit/codegen)"),
    ("libcst/metadata", "libcst metadata"),
    ("libcst/matchers", "libcst matchers"),
    ("libcst/_visitors", "libcst visitors"),
    ("libcst/_typed_visitor", "libcst visitors"),
    ("libcst/_batched_visitor", "libcst visitors"),
]

#: libcst entry points worth naming: (file suffix, function) -> label.
_LIBCST_ENTRY_POINTS = {
    ("libcst/_parser/entrypoints.py", "parse_module"): "libcst.parse_module",
    ("libcst/_parser/entrypoints.py", "parse_statement"): "libcst.parse_statement",
    ("libcst/_parser/entrypoints.py", "parse_expression"): "libcst.parse_expression",
    ("libcst/_nodes/module.py", "code"): "Module.code (codegen)",
    ("libcst/_nodes/module.py", "code_for_node"): "Module.code_for_node (codegen)",
    ("libcst/_nodes/base.py", "visit"): "CSTNode.visit (every visitor/transformer)",
    ("libcst/_nodes/base.py", "deep_clone"): "CSTNode.deep_clone",
    ("libcst/_nodes/base.py", "deep_equals"): "CSTNode.deep_equals",
    ("libcst/metadata/wrapper.py", "__init__"): "MetadataWrapper() (deep copies the tree)",
    ("libcst/metadata/wrapper.py", "resolve"): "MetadataWrapper.resolve",
}


def is_ours(filename: str) -> bool:
    """Whether a profiled file is decoflow's own code (not its venvs under the repo)."""
    try:
        relative = Path(filename).relative_to(REPO_ROOT)
    except ValueError:
        return False
    return not relative.parts[0].startswith(".")


def area(filename: str) -> str:
    """The bucket a profiled function's self time goes to."""
    path = filename.replace("\\", "/")
    if is_ours(path):
        return "decoflow " + Path(path).relative_to(REPO_ROOT).as_posix()
    for marker, label in _LIBCST_AREAS:
        if marker in path:
            return label
    if "/libcst/" in path:
        return "libcst other"
    if "/click/" in path:
        return "click"
    if path == "~":
        return "builtins (C functions: isinstance, getattr, ...)"
    if path == "<frozen abc>":
        return "isinstance() on ABCs (<frozen abc>)"
    if "importlib" in path or path.startswith("<frozen"):
        return "importlib machinery"
    return "other python"


def report(stats: pstats.Stats, title: str, top: int) -> str:
    """Self time by area, the costliest decoflow functions and libcst entry points."""
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in raw.values())

    def pct(seconds: float) -> str:
        return f"{seconds:7.3f} s  {100 * seconds / total:5.1f}%"

    by_area: dict[str, float] = defaultdict(float)
    imports = 0.0
    for (filename, _line, func), (_cc, _nc, tt, ct, _callers) in raw.items():
        by_area[area(filename)] += tt
        if func == "_find_and_load" and "importlib" in filename:
            imports = max(imports, ct)
    lines = [f"== {title}: {total:.3f} s profiled ==", "-- self time by area --"]
    for name, seconds in sorted(by_area.items(), key=lambda kv: -kv[1]):
        if seconds / total >= 0.005:
            lines.append(f"  {pct(seconds)}  {name}")
    lines.append("-- cumulative --")
    lines.append(f"  {pct(imports)}  imports (cumulative time under import statements)")
    for (filename, _line, func), (_cc, nc, _tt, ct, _callers) in sorted(
        raw.items(), key=lambda kv: -kv[1][3]
    ):
        for (suffix, name), label in _LIBCST_ENTRY_POINTS.items():
            if func == name and filename.replace("\\", "/").endswith(suffix):
                lines.append(f"  {pct(ct)}  {nc:>7} calls  {label}")
    lines.append(f"-- decoflow functions by cumulative time (top {top}) --")
    ours = [
        (ct, nc, filename, line, func)
        for (filename, line, func), (_cc, nc, _tt, ct, _callers) in raw.items()
        if is_ours(filename)
    ]
    for ct, nc, filename, line, func in sorted(ours, reverse=True)[:top]:
        where = Path(filename).relative_to(REPO_ROOT).as_posix()
        lines.append(f"  {pct(ct)}  {nc:>7} calls  {where}:{line} {func}")
    return "\n".join(lines)


def profile_cli(flow: Path, out: Path) -> pstats.Stats:
    """Profile one CLI compile, imports included (run in a fresh interpreter)."""
    profiler = cProfile.Profile()
    profiler.enable()
    from decoflow.cli import main

    try:
        main(["compile", str(flow), "-o", str(out), "-q"], standalone_mode=False)
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    profiler.disable()
    return pstats.Stats(profiler)


def profile_compile(flow: Path) -> pstats.Stats:
    """Profile one compile_file call, after the imports."""
    import decoflow.transformer.pipeline  # noqa: F401 - imports are not what is measured here
    from decoflow.transformer import compile_file

    profiler = cProfile.Profile()
    profiler.enable()
    compile_file(flow)
    profiler.disable()
    return pstats.Stats(profiler)


def main() -> None:
    """Command line: print both profiles."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=100, help="steps of the larger flow")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--dump", type=Path, help="also write the .pstats files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="decoflow-profile-") as tmp:
        root = Path(tmp)
        small = write_flow(root / "small", "benchflow.py", "BenchFlow", 8)
        large = write_flow(root / "large", "largeflow.py", "LargeFlow", args.steps)
        cli_stats = profile_cli(small, root / "out" / "benchflow.py")
        compile_stats = profile_compile(large)
    print(report(cli_stats, "decoflow compile, 8-step flow, cold process", args.top))
    print()
    print(report(compile_stats, f"compile_file, {args.steps}-step flow, warm imports", args.top))
    if args.dump is not None:
        args.dump.mkdir(parents=True, exist_ok=True)
        cli_stats.dump_stats(str(args.dump / "cli.pstats"))
        compile_stats.dump_stats(str(args.dump / "compile.pstats"))


if __name__ == "__main__":
    main()
