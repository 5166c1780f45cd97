"""Run-time support for class-based step decorators (Metaflow's `UserStepDecorator`).

Copied into a compiled flow like `helpers.py` (only what the flow uses, and what that uses in
turn, from either file). A decorator class is carried into the compiled flow with its base
`UserStepDecorator` swapped for `DecoflowStepDecorator`, which gives it what Metaflow's base
gives it (`init`, `skip_step`, the default `pre_step` and `post_step`) and nothing else. The
step then calls `pre_step`, runs (or skips, or replaces) what the decorator wraps, and hands
the failure to `decoflow_post_step`, which reads what `post_step` returns as Metaflow's loop
does (`metaflow/task.py`, `MetaflowTask._exec_step_function`).

Transition arguments (a `skip_step` value, the second item of a `post_step` 2-tuple) become a
plain function on `flow.next`, as for generator decorators (see `helpers.py`): the step's
last statement stays its literal `self.next(...)`.
"""

from .helpers import decoflow_next_done, decoflow_next_with  # emitted beside these (not copied)


class DecoflowStepDecorator:
    """What a class-based step decorator inherits from Metaflow's UserStepDecorator."""

    decorator_name = None

    def __init__(self, *args, **kwargs):
        # Metaflow calls `init` only when the class itself defines it.
        if "init" in type(self).__dict__:
            self.init(*args, **kwargs)

    def __str__(self):
        return f"{type(self).__name__}({self.decorator_name})"

    def init(self, *args, **kwargs):
        pass

    def pre_step(self, step_name, flow, inputs=None):
        return None

    def post_step(self, step_name, flow, exception=None):
        if exception:
            return exception, None
        return None, None

    @property
    def skip_step(self):
        return getattr(self, "_skip_step", False)

    @skip_step.setter
    def skip_step(self, value):
        self._skip_step = value


def decoflow_post_step(decorator, step_name, flow, error, ran):
    """Run a class decorator's post_step; return the failure it leaves (None: none).

    As Metaflow reads what post_step returns (or raises): None clears the failure, an
    exception replaces it, (exception, next_args) replaces both; the third item of a longer
    tuple, or a RuntimeError for anything else, is raised at once, past the decorators above.
    """
    try:
        result = decorator.post_step(step_name, flow, error)
    except Exception as failure:
        result = failure
    if result is None:
        return None
    if isinstance(result, Exception):
        return result
    if isinstance(result, tuple):
        if len(result) != 2:
            raise result[2]
        error, next_args = result
        decoflow_transition(flow, next_args, ran)
        return error
    message = (
        "Invalid return value from a UserStepDecorator. Expected an exception or an "
        "exception and arguments for self.next, got: %s"
    )
    raise RuntimeError(message % result)  # formatted as Metaflow formats it


def decoflow_transition(flow, next_args, ran):
    """The step's transition arguments are now next_args (a skip_step value, or from post_step).

    A non-empty dict: self.next(<the step's targets>, **next_args); True or {}: the step's own
    self.next; None or False: whatever the step did itself (nothing, when it was skipped,
    `ran` False); anything else fails the task at self.next, as in Metaflow.
    """
    if next_args is None or next_args is False:
        if ran and flow._transition is None:
            flow.__dict__.pop("next", None)
        else:
            decoflow_next_done(flow)
    elif isinstance(next_args, dict) and next_args:
        decoflow_next_with(flow, next_args, renew=True)
    elif next_args == True or next_args == {}:  # noqa: E712 (Metaflow compares with ==)
        decoflow_next_with(flow, {}, renew=True)
    else:
        decoflow_next_with(flow, next_args)  # fails there, as in Metaflow
