"""Case files: the readable spec of what the compiler emits (format: tests/cases/README.md).

Each `tests/cases/<rule>/<name>.py` holds a flow, the decorator module(s) it uses, a
`# output` line, then the exact compiled text. The test writes the inputs into a temporary
folder, compiles the first file with the public API, and compares the whole text.

After a reviewed change of the compiler's output, rewrite the recorded outputs with
`DECOFLOW_UPDATE_CASES=1 .venv/bin/python -m pytest tests/test_cases.py` and read the diff
before committing it. Only the part after `# output` is rewritten.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from decoflow.transformer import CompileOptions, compile_file

CASES_DIR = Path(__file__).resolve().parent / "cases"
UPDATE = os.environ.get("DECOFLOW_UPDATE_CASES", "") not in ("", "0")

FILE_MARKER = re.compile(r"# file: (?P<name>[\w./-]+\.py)\n")
OUTPUT_MARKER = "# output\n"
HEADER_LINE = re.compile(r"# (?P<key>case|with|xfail): (?P<value>.+)\n")


@dataclass(frozen=True)
class Case:
    """One parsed case file: what it shows, its options, its input files, the expected text."""

    about: str
    with_specs: tuple[str, ...]
    xfail: str | None
    files: tuple[tuple[str, str], ...]  # (relative path, text); the first one is compiled
    output: str


def parse_case(text: str) -> Case:
    """Split a case file into header, `# file:` sections and the text after `# output`."""
    head, marker, output = text.partition(OUTPUT_MARKER)
    if not marker:
        raise ValueError("no '# output' line")
    header: dict[str, list[str]] = {"case": [], "with": [], "xfail": []}
    lines = head.splitlines(keepends=True)
    while lines and not FILE_MARKER.fullmatch(lines[0]):
        match = HEADER_LINE.fullmatch(lines.pop(0))
        if match is None:
            raise ValueError("before the first '# file:' only '# case:', '# with:', '# xfail:'")
        header[match["key"]].append(match["value"].strip())
    if len(header["case"]) != 1:
        raise ValueError("exactly one '# case: <what it shows>' line is needed")
    files: list[tuple[str, list[str]]] = []
    for line in lines:
        match = FILE_MARKER.fullmatch(line)
        if match:
            files.append((match["name"], []))
        else:
            files[-1][1].append(line)
    if not files:
        raise ValueError("no '# file: NAME.py' section")
    # Blank lines before the next marker only separate sections; they belong to no file.
    texts = tuple((name, "".join(body).rstrip() + "\n") for name, body in files)
    return Case(
        about=header["case"][0],
        with_specs=tuple(header["with"]),
        xfail=header["xfail"][0] if header["xfail"] else None,
        files=texts,
        output=output,
    )


def with_output(text: str, output: str) -> str:
    """The case file `text` with everything after its `# output` line replaced by `output`."""
    return text[: text.index(OUTPUT_MARKER) + len(OUTPUT_MARKER)] + output


def compile_case(case: Case, folder: Path) -> str:
    """Write the case's files under `folder` and compile the first one as decoflow's API does."""
    for name, text in case.files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    options = CompileOptions(with_specs=case.with_specs, project_root=folder)
    return compile_file(folder / case.files[0][0], options)


def case_paths() -> list[Path]:
    return sorted(CASES_DIR.glob("*/*.py"))


def case_id(path: Path) -> str:
    return path.relative_to(CASES_DIR).with_suffix("").as_posix()


def mismatch(path: Path, expected: str, actual: str) -> str:
    diff = difflib.unified_diff(
        expected.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        f"{case_id(path)} (recorded)",
        f"{case_id(path)} (compiled now)",
    )
    return (
        "".join(diff)
        + "\nIf the new output is right (read it against SEMANTICS.md), record it with "
        + "DECOFLOW_UPDATE_CASES=1."
    )


@pytest.mark.parametrize("path", case_paths(), ids=case_id)
def test_case(path: Path, tmp_path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    case = parse_case(text)
    actual = compile_case(case, tmp_path)
    ast.parse(actual)  # whatever is recorded must at least be Python
    if case.xfail:
        # The recorded output is what the compiler should emit, not what it emits now.
        if actual == case.output:
            pytest.fail(f"fixed ({case.xfail}): remove the '# xfail:' line", pytrace=False)
        pytest.xfail(case.xfail)
    if actual == case.output:
        return
    if UPDATE:
        path.write_text(with_output(text, actual), encoding="utf-8")
        return
    pytest.fail(mismatch(path, case.output, actual), pytrace=False)


@pytest.mark.parametrize("path", sorted(CASES_DIR.glob("with/*.py")), ids=case_id)
def test_cli_compiles_as_the_api_does(path: Path, tmp_path: Path) -> None:
    """`decoflow compile FLOW --with SPEC` writes the recorded text too."""
    from click.testing import CliRunner
    from decoflow.cli import main

    case = parse_case(path.read_text(encoding="utf-8"))
    compile_case(case, tmp_path)  # writes the inputs
    args = ["compile", str(tmp_path / case.files[0][0])]
    for spec in case.with_specs:
        args += ["--with", spec]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output == case.output


def test_case_files_cover_the_spec() -> None:
    """Every rule folder holds cases, and there are enough to read as the compiler's spec."""
    paths = case_paths()
    assert len(paths) >= 25, len(paths)
    assert all(p.parent.parent == CASES_DIR for p in CASES_DIR.rglob("*.py")), "one level only"


@pytest.mark.parametrize(
    "text,error",
    [
        ("# case: x\n# file: flow.py\npass\n", "no '# output' line"),
        ("# file: flow.py\npass\n# output\n", "exactly one '# case:"),
        ("# case: x\nstray\n# file: flow.py\n# output\n", "only '# case:'"),
        ("# case: x\n# output\n", "no '# file:"),
    ],
)
def test_malformed_case_files_are_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        parse_case(text)


def test_update_rewrites_only_the_output(tmp_path: Path) -> None:
    text = "# case: x\n# file: flow.py\nimport os\n\n# file: m.py\nX = 1\n# output\nold\n"
    case = parse_case(with_output(text, "new\n"))
    assert case.files == (("flow.py", "import os\n"), ("m.py", "X = 1\n"))
    assert case.output == "new\n"
    assert with_output(text, "new\n") == text.replace("old", "new")
