"""A flow mutator adding @retry to every step, the inherited ones too: the plain base is
flattened so they get it, and the compiled flow runs alone."""

from metaflow import FlowMutator, step
from plainbase import PlainBase


class retry_everything(FlowMutator):
    def mutate(self, mutable_flow):
        for _n, s in mutable_flow.steps:
            s.add_decorator("retry", deco_kwargs={"times": 2, "minutes_between_retries": 0})


@retry_everything
class LeafFlow(PlainBase):
    @step
    def end(self):
        print("end", self.greeting, self.attempt)


if __name__ == "__main__":
    LeafFlow()
