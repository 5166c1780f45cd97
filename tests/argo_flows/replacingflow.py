"""Steps replaced by a function a decorator yields: plain, in a foreach, at a join."""

from argodecos import cached, strict, timed
from metaflow import FlowSpec, step


class ArgoReplacingFlow(FlowSpec):
    @timed
    @step
    def start(self):
        self.items = ["a", "b", "c"]
        self.spare = ["x"]
        self.next(self.fan)

    @cached(mode="reroute")
    @strict
    @step
    def fan(self):
        self.next(self.each, foreach="items")

    @strict
    @cached
    @timed
    @step
    def each(self):
        self.result = self.input.upper()
        self.next(self.join)

    @cached
    @step
    def join(self, inputs):
        self.result = sorted(inp.result for inp in inputs)
        self.next(self.end)

    @cached(mode="miss")
    @step
    def end(self):
        print("result", self.result)


if __name__ == "__main__":
    ArgoReplacingFlow()
