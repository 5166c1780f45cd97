"""Run-time helpers for what a compiled flow cannot write inline.

Each function here is self-contained (imports inside, no module state) because the compiler
copies only the ones a flow uses into the flow file, docstrings included, so they stay short.
They touch only public Metaflow API (`self.next`) plus the step's `_transition`, which every
Metaflow version has.

A decorator's yield can override the step's transition while the step's last statement must
stay its literal `self.next(...)` (Metaflow builds the graph from it). The override is put
on the flow object as a plain function named `next`: Metaflow does not persist functions as
artifacts, and the override removes itself when the literal `self.next(...)` calls it.

`decoflow_replace` follows Metaflow's rules for what a replacement returns: a value equal to
True, None or False -> the step's own `self.next`; a non-empty dict -> `self.next(<the step's
targets>, **dict)`; anything else fails when the step's `self.next` is reached (after the
decorators' code, as Metaflow checks it; never at the end step, which has no transition),
with Metaflow's message formatted as Metaflow formats it (`%`: a tuple fails with TypeError).
A replacement that calls `self.next` itself keeps that transition (unless it also returns
True or a dict, which takes the transition again). Metaflow 2.19 fails a task whose
replacement returns None without calling `self.next`; decoflow lets it transition as the
step would (a replacement "cannot modify the flow's control logic").

Where the user's code calls `self.next` (a step, a replacement), it calls Metaflow's own
`next` directly, never through a helper: Metaflow's message for a bad transition names the
line that called `next`, which must be the user's line (mapped to the original), not ours.
"""


def decoflow_next_with(flow, next_args, renew=False):
    """Let the step's own self.next(...) use next_args (if any) as its keyword arguments."""

    def next_with(*targets, **written):
        del flow.next
        if not isinstance(next_args, dict):
            message = "Invalid value passed to self.next; expected bool or a dictionary; got: %s"
            raise RuntimeError(message % next_args)
        if renew:
            flow._transition = None
        type(flow).next(flow, *targets, **(next_args or written))

    flow.next = next_with


def decoflow_next_done(flow):
    """The transition was already taken: the step's own self.next(...) does nothing."""

    def next_done(*targets, **written):
        del flow.next

    flow.next = next_done


def decoflow_replace(flow, replacement, *inputs):
    """Run what a decorator yielded instead of the step; its result settles the transition."""
    before = flow._transition
    result = replacement(flow, *inputs) or None
    taken = flow._transition is not before  # the replacement called self.next itself
    if isinstance(result, dict):
        decoflow_next_with(flow, result, renew=taken)
    elif result == True:  # noqa: E712
        if taken:
            decoflow_next_with(flow, {}, renew=True)
    elif result is not None:
        decoflow_next_with(flow, result)
    elif taken:
        decoflow_next_done(flow)


def decoflow_yield(flow, value, *inputs):
    """A yield decided at run time: a dict skips, a callable replaces; True means run the step."""
    if isinstance(value, dict):
        if value:
            decoflow_next_with(flow, value)
        return False
    if value:
        decoflow_replace(flow, value, *inputs)
        return False
    return True


def decoflow_yielded_twice(decorator_name):
    """What Metaflow raises when a decorator reaches a second yield."""
    from metaflow.exception import MetaflowException

    return MetaflowException(f" UserStepDecorator({decorator_name}) should only yield once")
