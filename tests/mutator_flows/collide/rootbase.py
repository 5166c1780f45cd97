"""The most basic class of a chain, with module-level names its steps read that the modules
deriving from it bind to something else (carried under new names: `rootbase_fmt`, ...)."""

from metaflow import FlowSpec, current, step, user_step_decorator

PREFIX = "root"


def fmt(value):
    return f"{PREFIX}:{value}"


@user_step_decorator
def tagged(step_name, flow, inputs=None, attributes=None):
    print("tagged", step_name, fmt(step_name))
    yield


class RootBase(FlowSpec):
    @tagged
    @step
    def start(self):
        self.root = fmt("start")
        self.flow_seen = current.flow_name
        self.next(self.middle)
