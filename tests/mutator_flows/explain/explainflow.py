from explainmods import shout, tidy, tune
from metaflow import FlowSpec, resources, step


@tidy
class ExplainFlow(FlowSpec):
    @shout
    @step
    def start(self):
        self.next(self.train)

    @tune
    @resources(cpu=8, memory=2000)
    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        print("noted", self.noted)


if __name__ == "__main__":
    ExplainFlow()
