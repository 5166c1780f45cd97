"""Helpers for the expansion tests: the Metaflow 2.16 interpreter and Metaflow's own view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness import REPO_ROOT

MUTATOR_FLOWS = Path(__file__).resolve().parent / "mutator_flows"


def mf216_python() -> str:
    """`$DECOFLOW_MF216_PYTHON`, else `<repo>/.venv-mf216/bin/python` (Metaflow 2.16.0, the
    lowest version expansion claims). Fails (never skips) when missing."""
    python = os.environ.get("DECOFLOW_MF216_PYTHON") or str(REPO_ROOT / ".venv-mf216/bin/python")
    if not Path(python).exists():
        raise AssertionError(
            f"Metaflow 2.16 interpreter not found at {python}: run `make venv-mf216` "
            "or point DECOFLOW_MF216_PYTHON at a python with metaflow==2.16.0"
        )
    return python


def ref_python() -> str:
    return sys.executable


def metaflow_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        USERNAME="tester",
        METAFLOW_DEFAULT_DATASTORE="local",
        METAFLOW_DEFAULT_METADATA="local",
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(tmp),
    )
    env.pop("METAFLOW_FLOW_CONFIG", None)
    env.pop("METAFLOW_FLOW_CONFIG_VALUE", None)
    return env


def output_raw(python: str, flow: Path, tmp: Path, extra: list[str] = ()) -> dict:
    """Metaflow's own post-mutation view: `python flow.py output-raw --json`, per step a list
    of (name, attributes, inserted_by) in its order (built-ins, wrappers, step mutators)."""
    proc = subprocess.run(
        [python, flow.name, "--no-pylint", *extra, "output-raw", "--json"],
        cwd=flow.parent,
        env=metaflow_env(tmp),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    start = 0 if text.startswith("{") else text.index("\n{") + 1  # mutators print first
    graph = json.loads(text[start:])["graph"]
    return {
        name: [(d["name"], _norm(d["attributes"]), d["inserted_by"]) for d in node["decorators"]]
        for name, node in graph.items()
    }


def _norm(value):
    """output-raw prints None as "None" and tuples as lists; do the same to ours."""
    if value is None:
        return "None"
    if isinstance(value, dict):
        return {str(k): _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def expansion_view(expansion) -> dict:
    """The same per-step lists, from an expansion."""
    out = {}
    for name, stack in expansion.steps.items():
        items = []
        raw = expansion.data["steps"][name]
        for deco in raw["decorators"]:
            attrs = {k: v.get("value", v.get("repr")) for k, v in deco["attributes"].items()}
            items.append((deco["name"], _norm(attrs), deco["inserted_by"]))
        for user in raw["wrappers"] + raw["mutators"]:
            attrs = {"_args": [a.get("value") for a in user["args"]]}
            attrs.update({k: v.get("value") for k, v in user["kwargs"].items()})
            items.append((user["name"], _norm(attrs), user["inserted_by"]))
        out[name] = items
        assert stack.name == name
    return out
