"""A flow mutator that adds a step mutator by class and one by name; those add decorators."""

from metaflow import FlowMutator, StepMutator, user_step_decorator


@user_step_decorator
def stamp(step_name, flow, inputs=None, attributes=None):
    flow.stamps = list(getattr(flow, "stamps", [])) + [attributes.get("mark")]
    yield


class mark_step(StepMutator):
    def init(self, *args, **kwargs):
        self.mark = kwargs.get("mark", "m")

    def mutate(self, mutable_step):
        mutable_step.add_decorator(stamp, deco_kwargs={"mark": self.mark})


class named_retry(StepMutator):
    def mutate(self, mutable_step):
        mutable_step.add_decorator("retry", deco_kwargs={"times": 2})


class spread(FlowMutator):
    def pre_mutate(self, mutable_flow):
        for name, step in mutable_flow.steps:
            step.add_decorator(mark_step, deco_kwargs={"mark": name.upper()})
            if name != "start":
                step.add_decorator("chainmods.named_retry")
