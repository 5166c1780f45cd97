"""As midbase, with a flow mutator on the class (the flow is expanded by Metaflow)."""

import json

from metaflow import FlowMutator, step
from rootbase import RootBase

PREFIX = "mutmid"


def fmt(value):
    return json.dumps([PREFIX, value])


class add_retry(FlowMutator):
    def mutate(self, mutable_flow):
        for _name, s in mutable_flow.steps:
            s.add_decorator("retry", deco_kwargs={"times": 1})


@add_retry
class MutMid(RootBase):
    @step
    def middle(self):
        self.mid = fmt("middle")
        self.next(self.end)
