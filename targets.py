"""What the command line compiles: targets (an input and where its output goes), with the
compile options each gets from the project's `[tool.decoflow]` and the command line.

Batch and IO plumbing beside the CLI (`cli.py`), which only parses arguments and reports.
Problems with the arguments are click usage errors (exit 2).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
from decoflow.transformer.support.records import frozen

STDIN = "-"
STDIN_NAME = "<stdin>"


def usage_error(message: str) -> NoReturn:
    """Exit 2 with click's usage-error formatting."""
    raise click.UsageError(message)


def shown(path: Path) -> str:
    """A path as status lines show it: relative to the working directory when below it."""
    from decoflow.project import absolute

    try:
        return path.relative_to(absolute(Path.cwd())).as_posix()
    except ValueError:
        return str(path)


@dataclass
class Target:
    """One input and where its output goes (`output` None: stdout)."""

    source: Path
    output: Path | None
    options: Any  # CompileOptions
    text: str | None = None  # the source text when read from stdin


class Configs:
    """Project configurations, read once per project root."""

    def __init__(self) -> None:
        self._by_root: dict[Path, Any] = {}

    def for_path(self, path: Path) -> Any:
        from decoflow.project import ConfigError, find_root, load_config

        root = find_root(path)
        if root not in self._by_root:
            try:
                self._by_root[root] = load_config(root)
            except ConfigError as err:
                usage_error(str(err))
        return self._by_root[root]


@frozen
class Evaluation:
    """How mutators and configs are evaluated (issue 12): `--python`, `--config`,
    `--config-value`, `--expansion-timeout`, as given on the command line."""

    python: str | None = None
    configs: tuple[tuple[str, str], ...] = ()
    config_values: tuple[tuple[str, str], ...] = ()
    timeout: float | None = None


#: What a compile gets with no evaluation options on the command line.
NO_EVALUATION = Evaluation()


def compile_options(
    config: Any,
    cli_specs: Sequence[str],
    path: Path | None = None,
    evaluation: Evaluation = NO_EVALUATION,
) -> Any:
    from decoflow.transformer import CompileOptions

    configs, values = config.configs_for(path) if path is not None else ((), ())
    given = {name for name, _ in (*evaluation.configs, *evaluation.config_values)}
    configs = tuple(p for p in configs if p[0] not in given) + evaluation.configs
    values = tuple(p for p in values if p[0] not in given) + evaluation.config_values
    timeout = evaluation.timeout or config.expansion_timeout or 60.0
    return CompileOptions(
        with_specs=(*config.with_specs, *cli_specs),
        project_root=config.root,
        python=evaluation.python or config.python,
        configs=configs,
        config_values=values,
        expansion_timeout=timeout,
    )


def evaluation_from(python, configs, config_values, timeout) -> Evaluation:
    from decoflow.project import absolute, interpreter_path

    named_by_path = python and ("/" in python or python[0] == ".")
    return Evaluation(
        python=str(interpreter_path(python)) if named_by_path else python,
        configs=tuple((name, str(absolute(file))) for name, file in configs),
        config_values=tuple((name, value) for name, value in config_values),
        timeout=timeout,
    )


def configured_targets(
    out_dir: Path | None, cli_specs: Sequence[str], quiet: bool, evaluation: Evaluation
) -> list[Target]:
    """The flows listed in `[tool.decoflow]` of the project around the working directory."""
    from decoflow.project import (
        ConfigError,
        absolute,
        expand_flows,
        find_config,
        mirror_outputs,
    )

    try:
        config = find_config(Path.cwd())
    except ConfigError as err:
        usage_error(str(err))
    if not config.configured:
        where = config.pyproject or (config.root / "pyproject.toml")
        usage_error(
            f"no FILES given and no flows configured in [tool.decoflow] of {where} "
            "(give FILES, `-` for stdin, or set `flows` and `out-dir` there)"
        )
    try:
        flows, warnings = expand_flows(config)
    except ConfigError as err:
        usage_error(str(err))
    if not quiet:
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    if not flows:
        usage_error(f"the flows configured in {config.pyproject} matched no files")
    destination = absolute(out_dir) if out_dir is not None else config.out_path()
    if destination is None:
        usage_error(f"no `out-dir` in [tool.decoflow] of {config.pyproject} and no --out-dir given")
    return [
        Target(source, output, compile_options(config, cli_specs, source, evaluation))
        for source, output in mirror_outputs(flows, destination).items()
    ]


def explicit_targets(
    files: Sequence[str],
    output: str | None,
    out_dir: Path | None,
    cli_specs: Sequence[str],
    stdin_filename: Path | None,
    evaluation: Evaluation,
) -> list[Target]:
    """The FILES given on the command line and their outputs."""
    from decoflow.project import absolute, mirror_outputs

    configs = Configs()
    if STDIN in files:
        if len(files) > 1:
            usage_error("`-` (stdin) cannot be combined with other FILES")
        if out_dir is not None:
            usage_error("--out-dir cannot name an output for stdin: use -o")
        source = absolute(stdin_filename or Path.cwd() / STDIN_NAME)
        data = read_stdin()
        config = configs.for_path(source.parent)
        options = compile_options(config, cli_specs, source, evaluation)
        text = decode_stdin(data, source, config.root)
        dest = None if output in (None, STDIN) else absolute(output)
        return [Target(source, dest, options, text=text)]

    sources = [absolute(name) for name in files]
    if len(set(sources)) != len(sources):
        usage_error("a file is named more than once")
    if output is not None:
        if len(sources) > 1:
            usage_error("-o names one output: use --out-dir for several FILES")
        dest = None if output == STDIN else absolute(output)
        mapping = {sources[0]: dest}
    elif out_dir is not None:
        mapping = dict(mirror_outputs(sources, absolute(out_dir)))
    elif len(sources) == 1:
        mapping = {sources[0]: None}
    else:
        usage_error(
            "several FILES need --out-dir (or run `decoflow compile` with no FILES to build "
            "the flows configured in pyproject.toml)"
        )
    return [
        Target(
            source, dest, compile_options(configs.for_path(source), cli_specs, source, evaluation)
        )
        for source, dest in mapping.items()
    ]


def read_stdin() -> bytes:
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer.read() if buffer is not None else sys.stdin.read().encode("utf-8")


def decode_stdin(data: bytes, source: Path, root: Path) -> str:
    from decoflow.transformer.support.paths import display_path
    from decoflow.transformer.support.source import decode

    return decode(data, display_path(source, root))


def check_no_overwrite(targets: Sequence[Target]) -> None:
    """Refuse (exit 2) any output that is an input: decoflow never overwrites a source."""
    sources = {target.source for target in targets if target.text is None}
    for target in targets:
        if target.output is not None and target.output in sources:
            usage_error(f"refusing to overwrite the input file {shown(target.output)}")
