"""Step mutators adding @retry with each duplicates mode."""

from metaflow import StepMutator


class retry_ignore(StepMutator):
    def mutate(self, mutable_step):
        mutable_step.add_decorator("retry", deco_kwargs={"times": 3}, duplicates=mutable_step.IGNORE)


class retry_override(StepMutator):
    def mutate(self, mutable_step):
        mutable_step.add_decorator("retry:times=4", duplicates=mutable_step.OVERRIDE)


class retry_error(StepMutator):
    def mutate(self, mutable_step):
        mutable_step.add_decorator("retry", deco_kwargs={"times": 2}, duplicates=mutable_step.ERROR)

