"""Run-time helpers for what a compiled flow cannot write inline.

Each function here is self-contained (imports inside, no module state) because the compiler
copies only the ones a flow uses into the flow file. They touch only public Metaflow API
(`self.next`) plus the step's `_transition`, which every Metaflow version has.

A decorator's yield can override the step's transition while the step's last statement must
stay its literal `self.next(...)` (Metaflow builds the graph from it). The override is put
on the flow object as a plain function named `next`: Metaflow does not persist functions as
artifacts, and the override removes itself when the literal `self.next(...)` calls it.
"""


def decoflow_next_with(flow, next_args, renew=False):
    """Make the step's own `self.next(targets, ...)` transition with `next_args` instead.

    An empty `next_args` keeps the step's own arguments. `renew`: the transition was
    already taken (by a replacement); take it again.
    """

    def next_with(*targets, **_written):
        del flow.next
        if renew:
            flow._transition = None
        type(flow).next(flow, *targets, **(next_args or _written))

    flow.next = next_with


def decoflow_next_done(flow):
    """The transition was already taken: the step's own `self.next(...)` does nothing."""

    def next_done(*_targets, **_written):
        del flow.next

    flow.next = next_done


def decoflow_replace(flow, replacement, *inputs):
    """Run what a decorator yielded instead of the step, and settle the transition.

    Its return value means what Metaflow says: True, None or False -> the step's own
    `self.next`; a non-empty dict -> `self.next(<the step's targets>, **dict)`. A replacement
    that calls `self.next` itself keeps that transition (unless it also returns True or a dict).
    """
    taken = []

    def recording_next(*targets, **kwargs):
        del flow.next
        taken.append(True)
        type(flow).next(flow, *targets, **kwargs)

    flow.next = recording_next
    try:
        result = replacement(flow, *inputs) or None
    finally:
        if not taken:
            del flow.next
    if isinstance(result, dict):
        decoflow_next_with(flow, result, renew=bool(taken))
    elif result is True:
        if taken:
            decoflow_next_with(flow, {}, renew=True)
    elif result is not None:
        raise RuntimeError(
            "Invalid value passed to self.next; expected bool or a dictionary; got: %s" % result
        )
    elif taken:
        decoflow_next_done(flow)


def decoflow_yield(flow, value, *inputs):
    """What a decorator yielded, decided at run time. True: run the step (and the decorators below).

    A dict skips the step (a non-empty one also gives `self.next` its arguments); a callable
    replaces the step; None or another false value runs it.
    """
    if isinstance(value, dict):
        if value:
            decoflow_next_with(flow, value)
        return False
    if value:
        decoflow_replace(flow, value, *inputs)
        return False
    return True
