"""The `decoflow` command line: a thin shell over `decoflow.transformer`.

Exit codes follow black's:

    0    done, or (with --check) everything up to date
    1    a diagnostic was reported, an output could not be written, or (with --check) an
         output is missing or stale, or (with --exit-nonzero-on-change) an output was written
    2    usage error (bad options, no inputs, an output that would overwrite an input)
    123  internal error: a bug in decoflow (reported on one line, never as a traceback)

Status lines (`wrote <path>`, `would rewrite <path>`) and diagnostics go to stderr; stdout
carries only compiled code (when writing to stdout) and diffs.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from .targets import (
    STDIN,
    Configs,
    Target,
    check_no_overwrite,
    compile_options,
    configured_targets,
    evaluation_from,
    explicit_targets,
    shown,
    usage_error,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 123

F = TypeVar("F", bound=Callable[..., Any])


def internal_error_line(description: str) -> str:
    """The one line printed for a bug in decoflow."""
    return (
        f"error: internal error: {description} (please report this at the decoflow issue tracker)"
    )


def guard_internal_errors(func: F) -> F:
    """Turn any unexpected exception in a command into one line and exit code 123."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from decoflow.project import describe_exception

        try:
            return func(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as err:  # noqa: BLE001 - the contract is "one line, exit 123"
            click.echo(internal_error_line(describe_exception(err)), err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="decoflow")
def main() -> None:
    """Compile Metaflow custom step decorators inline into plain flows."""


# -- compile ---------------------------------------------------------------------------------


def evaluation_options(func: F) -> F:
    """The options that say how mutators and configs are evaluated (compile and explain)."""
    func = click.option(
        "--expansion-timeout",
        "expansion_timeout",
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds evaluating one flow's mutators may take (default 60).",
    )(func)
    func = click.option(
        "--config-value",
        "config_values",
        nargs=2,
        multiple=True,
        metavar="NAME JSON",
        help="A Config's value, as Metaflow's --config-value (repeatable).",
    )(func)
    func = click.option(
        "--config",
        "configs",
        nargs=2,
        multiple=True,
        metavar="NAME FILE",
        help="A Config's file, as Metaflow's --config (repeatable).",
    )(func)
    func = click.option(
        "--python",
        "python",
        metavar="PATH",
        help="The interpreter whose Metaflow (>= 2.16) evaluates mutators and configs "
        "(default: `python` of [tool.decoflow], else the running one).",
    )(func)
    return func


def _write_stdout(text: str) -> None:
    click.echo(text.encode("utf-8", errors="surrogateescape"), nl=False)  # bytes: written as is


@main.command("compile")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the one compiled FILE here (`-`: stdout). Default for one FILE: stdout.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each compiled FILE here, mirroring its path below the FILES' common folder. "
    "Overrides `out-dir` of [tool.decoflow].",
)
@click.option(
    "--with",
    "with_specs",
    multiple=True,
    metavar="SPEC",
    help="Apply a decorator to every step, as Metaflow's --with does (repeatable; added to "
    "`with` of [tool.decoflow]).",
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if any output is missing or stale."
)
@click.option(
    "--diff", is_flag=True, help="Write nothing; print a unified diff of what would change."
)
@click.option(
    "--exit-nonzero-on-change",
    is_flag=True,
    help="Write outputs, and exit 1 if any changed (for pre-commit).",
)
@click.option(
    "--stdin-filename",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With `-`: the path the source on stdin stands for (resolves its imports).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Processes to compile with (default: CPUs).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Compile every flow: neither read nor write the cache of compiled flows.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Also name the outputs that were up to date.")
@evaluation_options
@guard_internal_errors
def compile_command(
    files: tuple[str, ...],
    output: str | None,
    out_dir: Path | None,
    with_specs: tuple[str, ...],
    check: bool,
    diff: bool,
    exit_nonzero_on_change: bool,
    stdin_filename: Path | None,
    jobs: int | None,
    no_cache: bool,
    quiet: bool,
    verbose: bool,
    python: str | None,
    configs: tuple[tuple[str, str], ...],
    config_values: tuple[tuple[str, str], ...],
    expansion_timeout: float | None,
) -> None:
    """Compile FILES (or, with none, the flows configured in pyproject.toml) into plain flows.

    \b
    decoflow compile flow.py                  # print the compiled flow
    decoflow compile flow.py -o build/flow.py
    decoflow compile flows/*.py --out-dir build
    decoflow compile                          # every flow of [tool.decoflow]
    decoflow compile --check                  # exit 1 if a configured output is stale
    cat flow.py | decoflow compile -          # stdin to stdout
    """
    from decoflow.project import Task as CompileTask
    from decoflow.project import (
        compile_tasks,
        read_bytes_or_none,
        unified_diff,
        write_atomic,
    )

    if output is not None and out_dir is not None:
        usage_error("-o/--output and --out-dir cannot be used together")
    if stdin_filename is not None and STDIN not in files:
        usage_error("--stdin-filename only applies when reading `-` (stdin)")
    evaluation = evaluation_from(python, configs, config_values, expansion_timeout)
    if files:
        targets = explicit_targets(files, output, out_dir, with_specs, stdin_filename, evaluation)
    else:
        if output is not None:
            usage_error("-o needs one FILE; to build the configured flows use --out-dir")
        targets = configured_targets(out_dir, with_specs, quiet, evaluation)
    check_no_overwrite(targets)
    if (check or diff) and any(t.output is None for t in targets):
        usage_error(
            "--check and --diff compare against output files: give -o or --out-dir, "
            "or run with no FILES to use [tool.decoflow]"
        )

    caches = None if no_cache else Caches()
    lookups = [caches.lookup(t) if caches is not None else None for t in targets]
    misses = [t for t, found in zip(targets, lookups) if found is None or found.output is None]
    compiled = iter(
        compile_tasks([CompileTask(t.source, t.options, t.text) for t in misses], jobs=jobs)
        if misses
        else []
    )

    status = EXIT_OK
    internal = False
    for target, found in zip(targets, lookups):
        if found is not None and found.output is not None:
            new = found.output
            for line in found.warnings:  # as when it was compiled (DF6xx)
                click.echo(line, err=True)
        else:
            outcome = next(compiled)
            warnings = [warning.format() for warning in outcome.warnings]
            for line in warnings:  # compiled, but may differ from the original (DF6xx)
                click.echo(line, err=True)
            if outcome.internal_error is not None:
                click.echo(internal_error_line(outcome.internal_error), err=True)
                internal = True
                continue
            if not outcome.ok:
                for diagnostic in outcome.diagnostics:
                    click.echo(diagnostic.format(), err=True)
                status = EXIT_FAILED
                continue
            assert outcome.code is not None
            new = outcome.code.encode("utf-8", errors="surrogateescape")
            if found is not None and caches is not None:
                caches.store(target, found, new, outcome.reads, warnings)
        if target.output is None:
            click.echo(new, nl=False)  # bytes: written as they are
            continue
        try:
            old = read_bytes_or_none(target.output)
        except OSError as err:
            click.echo(f"error: cannot read {shown(target.output)}: {err.strerror}", err=True)
            status = EXIT_FAILED
            continue
        if old == new:
            if verbose and not quiet:
                click.echo(f"unchanged {shown(target.output)}", err=True)
            continue
        if diff:
            _write_stdout(unified_diff(old, new, shown(target.output)))
        if check or diff:
            if check:
                status = EXIT_FAILED
                if not quiet:
                    click.echo(f"would rewrite {shown(target.output)}", err=True)
            continue
        try:
            write_atomic(target.output, new)
        except OSError as err:
            click.echo(f"error: cannot write {shown(target.output)}: {err.strerror}", err=True)
            status = EXIT_FAILED
            continue
        if exit_nonzero_on_change:
            status = EXIT_FAILED
        if not quiet:
            click.echo(f"wrote {shown(target.output)}", err=True)
    if caches is not None and verbose and not quiet:
        for problem in caches.problems():
            click.echo(f"note: the cache could not be written ({problem})", err=True)
    if internal:
        sys.exit(EXIT_INTERNAL)
    sys.exit(status)


class Caches:
    """The cache of compiled flows of each project the targets belong to (`decoflow.cache`).
    Flows read from stdin are not cached."""

    def __init__(self) -> None:
        self._by_folder: dict[Path, Any] = {}

    def _of(self, target: Target) -> Any:
        from decoflow.cache import Cache, folder_for

        folder = folder_for(target.options.project_root)
        if folder not in self._by_folder:
            self._by_folder[folder] = Cache(folder)
        return self._by_folder[folder]

    def lookup(self, target: Target) -> Any:
        """The `cache.Lookup` of a target (None: not cached)."""
        if target.text is not None or target.options.project_root is None:
            return None
        return self._of(target).lookup(target.source, target.options)

    def store(
        self, target: Target, found: Any, output: bytes, reads: Any, warnings: Sequence[str]
    ) -> None:
        if reads is not None:
            self._of(target).store(found, output, reads, warnings)

    def problems(self) -> list[str]:
        return [cache.problem for cache in self._by_folder.values() if cache.problem is not None]


@main.command("clean")
@guard_internal_errors
def clean_command() -> None:
    """Remove the cache of compiled flows: `.decoflow_cache` at the root of the project
    around the working directory, or $DECOFLOW_CACHE_DIR."""
    from decoflow.cache import clear, folder_for, is_cache_folder
    from decoflow.project import find_root

    folder = folder_for(find_root(Path.cwd()))
    if folder.exists() and not is_cache_folder(folder):
        usage_error(f"{shown(folder)} is not a decoflow cache: not removed")
    if clear(folder):
        click.echo(f"removed {shown(folder)}", err=True)


# -- explain ---------------------------------------------------------------------------------


@main.command("explain")
@click.argument("flow", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--step", "step", metavar="NAME", help="Show this step compiled, beside its source.")
@click.option("--with", "with_specs", multiple=True, metavar="SPEC", help="As for `compile`.")
@evaluation_options
@guard_internal_errors
def explain_command(
    flow: Path,
    step: str | None,
    with_specs: tuple[str, ...],
    python: str | None,
    configs: tuple[tuple[str, str], ...],
    config_values: tuple[tuple[str, str], ...],
    expansion_timeout: float | None,
) -> None:
    """Explain what compiling FLOW does: for each step, the decorators inlined, in which
    order, where each comes from, and what each yield does."""
    import warnings

    from decoflow.explain import explain_file
    from decoflow.project import absolute
    from decoflow.transformer import CompileError, CompileWarning

    path = absolute(flow)
    evaluation = evaluation_from(python, configs, config_values, expansion_timeout)
    options = compile_options(Configs().for_path(path), with_specs, path, evaluation)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CompileWarning)
            text = explain_file(path, options, step=step)
        for warning in caught:
            if isinstance(warning.message, CompileWarning):
                click.echo(warning.message.diagnostic.format(), err=True)
    except CompileError as err:
        for diagnostic in err.diagnostics:
            click.echo(diagnostic.format(), err=True)
        sys.exit(EXIT_FAILED)
    except LookupError as err:
        # explain_file raises KeyError("no step named ...") for an unknown --step: the user's
        # mistake, not a bug. Any other lookup failure is a bug and stays an internal error.
        message = err.args[0] if err.args and isinstance(err.args[0], str) else ""
        if step is not None and message.startswith("no step named"):
            usage_error(message)
        raise
    _write_stdout(text if text.endswith("\n") else text + "\n")


def run() -> NoReturn:
    """The process entry point: `decoflow` and `python -m decoflow`.

    Two settings of a short-lived compiler process, as mypy has them. A compile allocates
    many small objects (syntax trees) that live until the end, so the cyclic garbage
    collector is asked to run rarely; and the process ends without tearing every object
    down, once the outputs are written and closed and both streams are flushed (`main`, for
    tests and embedding, does neither).
    """
    import gc
    import os

    gc.set_threshold(200_000, 30, 30)
    try:
        main()
        code = EXIT_OK
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or EXIT_OK
        else:  # sys.exit("message"): Python prints it and exits 1
            print(exit_.code, file=sys.stderr)
            code = EXIT_FAILED
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`decoflow ... | head`) or stream
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
