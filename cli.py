"""The `decoflow` command line: a thin shell over `decoflow.transformer`."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
@click.version_option(package_name="decoflow")
def main() -> None:
    """Compile Metaflow custom step decorators inline into plain flows."""


@main.command()
@click.argument("flow", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
def compile(flow: Path, output: Path | None) -> None:
    """Compile FLOW into a plain Metaflow flow."""
    from decoflow.transformer import CompileError, compile_file

    try:
        code = compile_file(flow)
    except CompileError as err:
        for diag in err.diagnostics:
            click.echo(diag.format(), err=True)
        sys.exit(1)
    if output is None:
        sys.stdout.write(code)
        return
    if output.resolve() == flow.resolve():
        click.echo(f"{output}: refusing to overwrite the input file", err=True)
        sys.exit(2)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.decoflow-tmp")
    tmp.write_text(code, encoding="utf-8")
    tmp.replace(output)
