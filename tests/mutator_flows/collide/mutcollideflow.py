"""The flow module binds fmt and PREFIX to its own; its base (mutmid) has a flow mutator."""

from metaflow import step
from mutmid import MutMid

PREFIX = "flow"


def fmt(value):
    return f"flow fmt {value}"


class MutCollideFlow(MutMid):
    @step
    def end(self):
        print("end", self.root, self.mid, self.flow_seen, fmt(PREFIX))


if __name__ == "__main__":
    MutCollideFlow()
