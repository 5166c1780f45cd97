"""A base flow with a flow mutator adding the custom decorator its module defines; the
decorator and the steps share a module-level list."""

from metaflow import FlowMutator, FlowSpec, step, user_step_decorator

SEEN = []


@user_step_decorator
def record(step_name, flow, inputs=None, attributes=None):
    SEEN.append(step_name)
    yield


class add_record(FlowMutator):
    def mutate(self, mutable_flow):
        for _name, s in mutable_flow.steps:
            s.add_decorator(record)


@add_record
class MutBase(FlowSpec):
    @step
    def start(self):
        self.seen = list(SEEN)
        print("seen", SEEN)
        self.next(self.end)

    @step
    def end(self):
        print("seen at end", SEEN)
