"""A base flow whose module defines a custom decorator and the state it shares with the
steps (a module-level list: one object, natively)."""

from metaflow import FlowSpec, step, user_step_decorator

SEEN = []


@user_step_decorator
def record(step_name, flow, inputs=None, attributes=None):
    SEEN.append(step_name)
    yield


class RecBase(FlowSpec):
    @record
    @step
    def start(self):
        self.seen = list(SEEN)
        print("seen", SEEN)
        self.next(self.end)

    @record
    @step
    def end(self):
        print("seen at end", SEEN)
