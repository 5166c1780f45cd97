# case: a flow without custom decorators is its own output, comments and all (no header either)
# file: flow.py
from metaflow import FlowSpec, retry, step


class F(FlowSpec):
    @retry
    @step
    def start(self):  # a comment
        self.next(self.end)

    @step
    def end(self):
        pass
# output
from metaflow import FlowSpec, retry, step


class F(FlowSpec):
    @retry
    @step
    def start(self):  # a comment
        self.next(self.end)

    @step
    def end(self):
        pass
