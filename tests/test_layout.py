"""The compiler's layout: passes import only earlier passes, support imports no pass, and
no module grows past what one reading can hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TRANSFORMER = Path(__file__).resolve().parent.parent / "transformer"

#: The passes in the order `pipeline.py` runs them.
PASSES = ("expand", "discover", "attach", "analyze", "carry", "inline", "render")

MAX_LINES = 450

#: Modules allowed past MAX_LINES, and why (each one a split still to make).
TOO_LONG_FOR_NOW: dict[str, str] = {}


def _modules() -> list[Path]:
    return sorted(TRANSFORMER.rglob("*.py"))


def _imported(path: Path) -> set[str]:
    """The `decoflow.transformer` modules `path` imports, as paths below transformer/
    (`passes/discover`, `support/names`, ...)."""
    package = path.parent.relative_to(TRANSFORMER).parts
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - (node.level - 1)])
            parts = [*base, *(node.module.split(".") if node.module else [])]
            if node.module is None:
                out.update("/".join([*parts, alias.name]) for alias in node.names)
            else:
                out.add("/".join(parts))
    return out


def _pass_of(module: str) -> str | None:
    parts = module.split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "passes" else None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(TRANSFORMER)))
def test_imports_run_forward(path: Path) -> None:
    """A support module imports no pass; a pass imports only the passes before it."""
    own = path.relative_to(TRANSFORMER).with_suffix("").as_posix()
    imported = {m for m in _imported(path) if _pass_of(m)}
    if own.startswith("support/"):
        assert imported == set(), f"support imports passes: {imported}"
    elif _pass_of(own) in PASSES:
        mine = PASSES.index(_pass_of(own) or "")
        later = {m for m in imported if PASSES.index(_pass_of(m) or "") > mine}
        assert later == set(), f"imports later passes: {later}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(TRANSFORMER)))
def test_no_module_is_too_long(path: Path) -> None:
    if path.relative_to(TRANSFORMER).as_posix() in TOO_LONG_FOR_NOW:
        return
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{lines} lines"


def test_every_pass_is_listed() -> None:
    found = {p.stem if p.is_file() else p.name for p in (TRANSFORMER / "passes").iterdir()}
    assert found - {"__init__", "__pycache__"} == set(PASSES)
