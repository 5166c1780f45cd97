"""Golden before/after files: compiled seed flows, each read and judged right by a person.

If the compiler's output changes on purpose, regenerate with
`decoflow compile fixtures/<case>/<flow>.py -o tests/golden/<flow>.compiled.py`, read the
diff, and commit it with the change that caused it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from decoflow.transformer import compile_file

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    ("fixtures/seed_waiter/waiterflow.py", "tests/golden/waiterflow.compiled.py"),
    ("fixtures/seed_tracing/tracingflow.py", "tests/golden/tracingflow.compiled.py"),
]


@pytest.mark.parametrize("source,golden", CASES)
def test_compiled_seed_matches_golden(source: str, golden: str) -> None:
    assert compile_file(ROOT / source) == (ROOT / golden).read_text(encoding="utf-8")
