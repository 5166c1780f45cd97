"""A flow mutator that adds @retry and a custom decorator to every step, a step mutator fed
by a config, and a parameter added in pre_mutate."""

from metaflow import FlowMutator, Parameter, StepMutator, user_step_decorator


@user_step_decorator
def announce(step_name, flow, inputs=None, attributes=None):
    print("announce before", step_name, sorted((attributes or {}).items()))
    flow.announced = step_name
    yield
    print("announce after", step_name)


class everywhere(FlowMutator):
    def init(self, *args, **kwargs):
        self.times = kwargs.get("times", 2)

    def pre_mutate(self, mutable_flow):
        mutable_flow.add_parameter("alpha", Parameter("alpha", default=3, type=int))

    def mutate(self, mutable_flow):
        print("everywhere: mutating")
        for name, step in mutable_flow.steps:
            step.add_decorator("retry", deco_kwargs={"times": self.times})
            step.add_decorator(announce, deco_kwargs={"tag": name})


class tagged(StepMutator):
    def init(self, *args, **kwargs):
        self.label = kwargs.get("label")

    def mutate(self, mutable_step):
        mutable_step.add_decorator(
            announce, deco_kwargs={"label": self.label}, duplicates=mutable_step.OVERRIDE
        )
