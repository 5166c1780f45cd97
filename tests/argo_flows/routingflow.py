"""A switch whose branches hold a nested foreach and a split, with stacked decorators
and built-in decorators (@retry, @resources) that must survive compilation."""

from argodecos import cached, skip_unless, strict, timed
from metaflow import FlowSpec, Parameter, resources, retry, step


class ArgoRoutingFlow(FlowSpec):
    size = Parameter("size", default="big")

    @timed
    @step
    def start(self):
        self.enabled = True
        self.next({"big": self.big, "small": self.small}, condition="size")

    @retry(times=2)
    @strict
    @timed
    @step
    def big(self):
        self.rows = [1, 2]
        self.next(self.row, foreach="rows")

    @resources(cpu=2, memory=2048)
    @skip_unless(flag="enabled")
    @step
    def row(self):
        self.cols = [self.input, self.input * 10]
        self.next(self.cell, foreach="cols")

    @timed
    @strict
    @cached(mode="miss")
    @skip_unless(flag="enabled")
    @step
    def cell(self):
        self.result = self.input
        self.next(self.join_cols)

    @cached
    @step
    def join_cols(self, inputs):
        self.result = sorted(inp.result for inp in inputs)
        self.next(self.join_rows)

    @step
    def join_rows(self, inputs):
        self.result = sorted(r for inp in inputs for r in inp.result)
        self.next(self.done)

    @timed
    @step
    def small(self):
        self.result = []
        self.next(self.fast, self.slow)

    @cached
    @step
    def fast(self):
        self.next(self.both)

    @retry(times=1)
    @skip_unless(flag="enabled")
    @step
    def slow(self):
        self.next(self.both)

    @timed
    @step
    def both(self, inputs):
        self.result = []
        self.next(self.done)

    @step
    def done(self):
        self.next(self.end)

    @strict
    @step
    def end(self):
        print("result", getattr(self, "result", None))


if __name__ == "__main__":
    ArgoRoutingFlow()
