"""Obtain a flow's expansion: what Metaflow's own code makes of its mutators and configs.

The evaluation runs in a child process (`expansion/`), in the interpreter of the
environment being compiled for. Starting one costs about a second, so a batch
(`project.compile_tasks`) first sets aside every flow that needs one (`DEFER`, raising
`NeedsExpansion`), then expands them all in ONE child (`preload`) and compiles them again:
`obtain_expansion` then finds the result already computed (`PRELOADED`). A single flow compiled on
its own is expanded at once.
"""

from __future__ import annotations

from pathlib import Path

from ...support.diagnostics import CompileError
from ...support.source import SourceFile
from .detect import Trigger


def flow_request(source: SourceFile, options, trigger: Trigger):
    """The expansion request for one flow, from the compile options."""
    from ...expansion import FlowRequest

    return FlowRequest(
        path=source.path,
        source=source.text,
        configs=tuple(options.configs),
        config_values=tuple(options.config_values),
        with_specs=tuple(options.with_specs),
        search_path=tuple(str(p) for p in options.search_path),
        blame=trigger.location,
        blame_name=trigger.name,
    )


#: Expansions computed ahead for a batch (one child for all), by (path, options key).
PRELOADED: dict[tuple, object] = {}
#: The flows this process set aside in the batch's first round, parsed, by (path, display,
#: text): the second round compiles the same text again and reuses the parse (`reparse`),
#: and what was computed on it while the child ran (`_ahead`).
DEFERRED: dict[tuple[str, str, str], SourceFile] = {}


def forget() -> None:
    """End of a batch: expansions, deferred parses and positions computed ahead are dropped
    (a later batch must see edited flows, configs and mutators)."""
    from ...support.locate import forget_ahead

    PRELOADED.clear()
    DEFERRED.clear()
    forget_ahead()


def reparse(text: str, path: Path, display: str) -> SourceFile | None:
    """The first round's parse of a deferred flow, when the text is the same; else None."""
    return DEFERRED.get((str(path), display, text))


def _ahead() -> None:
    """What the second round will need, computed while the child evaluates the flows (the
    parent would only wait): the positions of each flow set aside here (the writer locates
    its classes) and the scopes of the modules read so far that define custom step
    decorators (their analysis and carrying read them). Only a head start: a failure here
    is met again, and reported, where the work is needed."""
    from ...support.locate import compute_ahead
    from ...support.resolve import parsed_modules
    from ...support.scopes import resolve_scopes

    try:
        for source in DEFERRED.values():
            compute_ahead(source.module)
        for source in parsed_modules():
            if "user_step_decorator" in source.text:
                resolve_scopes(source.module)
    except Exception:  # noqa: BLE001, S110 - see above
        pass


class NeedsExpansion(Exception):
    """A flow of a batch needs expansion; `request` says what to evaluate."""

    def __init__(self, request, options) -> None:
        super().__init__(str(request.path))
        self.request = request
        self.options = options


def preload(requests_and_options, display) -> None:
    """Expand the deferred flows of a batch: one child per interpreter; results kept in
    PRELOADED (an expansion, or the CompileError of its diagnostics). The batch reaps the
    children at its end (`project.compile_tasks`: `runner.discard_spare`), not here."""
    from ...expansion import ExpansionOptions, expand

    groups: dict[tuple, list] = {}
    for request, options in requests_and_options:
        groups.setdefault((options.python, options.expansion_timeout), []).append(
            (request, options)
        )
    for (python, timeout), items in groups.items():
        outcomes = expand(
            [r for r, _ in items],
            ExpansionOptions(python=python, timeout=timeout),
            lambda p: display(p),
            reap_later=True,
            idle=_ahead,
        )
        for (request, options), outcome in zip(items, outcomes):
            key = options_key(request.path, options)
            if outcome.diagnostics:
                PRELOADED[key] = CompileError(outcome.diagnostics)
            else:
                PRELOADED[key] = outcome.expansion


def options_key(path: Path, options) -> tuple:
    """What an expansion depends on besides the files: the same key finds a preloaded one."""
    return (
        str(path),
        options.python,
        tuple(options.configs),
        tuple(options.config_values),
        tuple(options.with_specs),
        options.expansion_timeout,
    )


def obtain_expansion(source: SourceFile, options, trigger: Trigger, display):
    """The expansion of one flow: preloaded by the batch, else evaluated now."""
    from ...expansion import ExpansionOptions, expand_or_raise

    key = options_key(source.path, options)
    if key in PRELOADED:
        found = PRELOADED[key]
        if isinstance(found, CompileError):
            raise found
        return found
    request = flow_request(source, options, trigger)
    if _deferring():
        DEFERRED[(str(source.path), source.display, source.text)] = source
        raise NeedsExpansion(request, options)
    [expansion] = expand_or_raise(
        [request],
        ExpansionOptions(
            python=options.python,
            configs=tuple(options.configs),
            config_values=tuple(options.config_values),
            timeout=options.expansion_timeout,
        ),
        display,
    )
    return expansion


def _deferring() -> bool:
    """Whether a batch sets expansions aside: `project.compile_tasks` sets the package's
    `DEFER` (`passes.expand.DEFER`), which is read here when a flow needs one."""
    from . import DEFER

    return DEFER
