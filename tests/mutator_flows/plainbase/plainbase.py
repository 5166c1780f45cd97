"""A base flow written with Metaflow alone (no mutator, no config): its start step fails
on a first attempt."""

from metaflow import FlowSpec, Parameter, current, step


class PlainBase(FlowSpec):
    greeting = Parameter("greeting", default="hi")

    @step
    def start(self):
        self.attempt = current.retry_count
        if current.retry_count < 1:
            raise RuntimeError("first attempt fails")
        self.next(self.end)
