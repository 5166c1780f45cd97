"""A flow mutator reading a Config: it adds @project and @timeout from it."""

from metaflow import FlowMutator


class scale_all(FlowMutator):
    def pre_mutate(self, mutable_flow):
        mutable_flow.add_decorator("project", deco_kwargs={"name": mutable_flow.sc.project})

    def mutate(self, mutable_flow):
        for _name, s in mutable_flow.steps:
            s.add_decorator(f"timeout:seconds={mutable_flow.sc.timeout}")
