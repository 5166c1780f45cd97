"""A mutator passes a function (defined at its module's top level) as a custom decorator's
attribute: the compiled flow names it (carried from the decorator module)."""

from fallbacks import safe
from metaflow import FlowSpec, step


@safe
class CallAttrFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.risky)

    @step
    def risky(self):
        self.before = 1
        raise ValueError("boom")
        self.next(self.end)

    @step
    def end(self):
        print("end", self.before, getattr(self, "fell_back", None))


if __name__ == "__main__":
    CallAttrFlow()
