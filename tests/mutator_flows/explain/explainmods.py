"""Mutators whose every effect `decoflow explain` must attribute: one adds, one removes,
one overrides attributes, and a step mutator added by name adds a custom decorator."""

from metaflow import FlowMutator, StepMutator, user_step_decorator


@user_step_decorator
def note(step_name, flow, inputs=None, attributes=None):
    flow.noted = attributes.get("text")
    yield


@user_step_decorator
def shout(step_name, flow, inputs=None, attributes=None):
    print("SHOUT", step_name)
    yield


class tune(StepMutator):
    """On a step: lowers @resources(cpu=...) to 2 (an override: Metaflow replaces the
    decorator, its other attributes too) and adds @note."""

    def mutate(self, mutable_step):
        mutable_step.add_decorator("resources:cpu=2", duplicates=mutable_step.OVERRIDE)
        mutable_step.add_decorator(note, deco_kwargs={"text": "tuned"})


class stamp_end(StepMutator):
    def mutate(self, mutable_step):
        mutable_step.add_decorator(note, deco_kwargs={"text": "end"})


class tidy(FlowMutator):
    """Removes @shout wherever it is, adds @retry to every step, and (in pre_mutate) adds the
    step mutator `stamp_end` to the end step by its name.
    (Metaflow 2.16's remove_decorator fails on a built-in: a custom decorator is removed.)"""

    def pre_mutate(self, mutable_flow):
        for name, step in mutable_flow.steps:
            if name == "end":
                step.add_decorator("explainmods.stamp_end")

    def mutate(self, mutable_flow):
        for _name, step in mutable_flow.steps:
            step.add_decorator("retry", deco_kwargs={"times": 2})
            # Only where it is, by its exact spec: 2.16's remove_decorator, given a name
            # alone or finding nothing, leaves the step's built-ins and custom decorators
            # in one shared list.
            if any(spec[0] == "shout" for spec in step.decorator_specs):
                step.remove_decorator("explainmods.shout", deco_args=[], deco_kwargs={})
