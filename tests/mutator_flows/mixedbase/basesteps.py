"""A base flow in its own module: a Parameter, steps with custom decorators (one imported,
one defined here) and a module-level helper the steps call."""

from metaflow import FlowSpec, Parameter, step, user_step_decorator

from decos import tagged

PREFIX = "hello"


def greet(name):
    return f"{PREFIX}, {name}"


@user_step_decorator
def counted(step_name, flow, inputs=None, attributes=None):
    flow.count = getattr(flow, "count", 0) + 1
    yield
    print("counted:", step_name, flow.count)


class RootFlow(FlowSpec):
    """Start, middle, end: each subclass may override any of them."""

    who = Parameter("who", default="world")

    @tagged
    @step
    def start(self):
        self.greeting = greet(self.who)
        self.next(self.middle)

    @counted
    @step
    def middle(self):
        self.trail = ["root"]
        self.next(self.end)

    @counted
    @step
    def end(self):
        print("end:", self.greeting, self.trail, getattr(self, "tags_seen", []))
