"""A Config only a flow mutator in another module reads (from a file): natively it is
still an artifact of every task, so the compiled flow keeps it declared (with its value)."""

from metaflow import Config, FlowSpec, current, step
from scaling import scale_all


@scale_all
class ScaleFlow(FlowSpec):
    sc = Config("sc", default="scale.json")

    @step
    def start(self):
        self.p = current.project_name
        self.next(self.end)

    @step
    def end(self):
        print("end", self.p)


if __name__ == "__main__":
    ScaleFlow()
