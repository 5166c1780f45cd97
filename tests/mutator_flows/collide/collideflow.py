"""The flow module binds fmt, PREFIX, json and current to its own."""

from metaflow import step
from midbase import MidBase

PREFIX = "flow"
json = "not the module"


def fmt(value):
    return f"flow fmt {value}"


def current():
    return "not metaflow's"


class CollideFlow(MidBase):
    @step
    def end(self):
        print("end", self.root, self.mid, self.mid_module, self.flow_seen, fmt(PREFIX), json)


if __name__ == "__main__":
    CollideFlow()
