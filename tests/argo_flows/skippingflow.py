"""Steps skipped by a decorator (`yield {}`, USER_SKIP_STEP, a foreach override), in branches."""

from argodecos import reroute, skip_unless, timed
from metaflow import FlowSpec, step


class ArgoSkippingFlow(FlowSpec):
    @timed
    @step
    def start(self):
        self.enabled = False
        self.items = [1, 2]
        self.spare = [3, 4, 5]
        self.next(self.left, self.right)

    @skip_unless(flag="enabled")
    @timed
    @step
    def left(self):
        self.side = "left"
        self.next(self.join)

    @timed
    @skip_unless(flag="enabled", constant=True)
    @step
    def right(self):
        self.side = "right"
        self.next(self.join)

    @timed
    @step
    def join(self, inputs):
        self.merge_artifacts(inputs, exclude=["side", "elapsed", "checked"])
        self.next(self.fan)

    @reroute(over="spare")
    @timed
    @step
    def fan(self):
        self.next(self.each, foreach="items")

    @skip_unless(flag="enabled")
    @step
    def each(self):
        self.item = self.input
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.count = len(list(inputs))
        self.next(self.end)

    @timed
    @step
    def end(self):
        print("count", self.count)


if __name__ == "__main__":
    ArgoSkippingFlow()
