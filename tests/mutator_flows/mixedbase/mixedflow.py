"""A base flow whose steps carry custom decorators, inherited by a flow with a mutator."""

from metaflow import FlowMutator, step

from basesteps import RootFlow


class everywhere(FlowMutator):
    def mutate(self, mutable_flow):
        for _name, s in mutable_flow.steps:
            s.add_decorator("retry", deco_kwargs={"times": 1})


@everywhere
class MixedFlow(RootFlow):
    @step
    def end(self):
        print("own end", self.greeting, self.trail)


if __name__ == "__main__":
    MixedFlow()
