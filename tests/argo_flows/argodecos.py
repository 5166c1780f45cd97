"""Decorators for the Argo spec fixtures: timing, skipping, replacing, routing."""

import time

from metaflow import USER_SKIP_STEP, user_step_decorator


@user_step_decorator
def timed(step_name, flow, inputs=None, attributes=None):
    """Always runs the step; records how long it took, even when it fails."""
    started = time.time()
    try:
        yield
    finally:
        flow.elapsed = time.time() - started


@user_step_decorator
def skip_unless(step_name, flow, inputs=None, attributes=None):
    """Skips the step (and the decorators below) unless the named artifact is truthy."""
    flag = attributes.get("flag", "enabled")
    if getattr(flow, flag, False):
        yield
    elif attributes.get("constant"):
        yield USER_SKIP_STEP
    else:
        yield {}
    flow.checked = step_name


@user_step_decorator
def reroute(step_name, flow, inputs=None, attributes=None):
    """Skips the step body but fans out over another list than the step's own."""
    if attributes.get("over"):
        yield {"foreach": attributes["over"]}
    else:
        yield


def _from_cache(flow):
    flow.result = "cached"
    return True


def _join_from_cache(flow, inputs):
    flow.result = sorted(str(inp.result) for inp in inputs)
    return True


def _reroute_from_cache(flow):
    flow.result = "cached"
    return {"foreach": "spare"}


@user_step_decorator
def cached(step_name, flow, inputs=None, attributes=None):
    """Replaces the step with a function when the cache says so."""
    mode = attributes.get("mode", "hit")
    if mode == "miss":
        yield
    elif inputs is not None:
        yield _join_from_cache
    elif mode == "reroute":
        yield _reroute_from_cache
    else:
        yield _from_cache
    flow.cache_mode = mode


@user_step_decorator
def strict(step_name, flow, inputs=None, attributes=None):
    """Notes a failure and re-raises it."""
    try:
        yield
    except Exception as err:
        flow.failed_with = type(err).__name__
        raise
