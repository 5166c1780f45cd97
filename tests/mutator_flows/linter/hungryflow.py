from metaflow import Config, FlowSpec, resources, step

from limiter import limit_resources


@limit_resources
class HungryFlow(FlowSpec):
    limits = Config("limits", default="limits.json")

    @resources(cpu=64, memory=1000)
    @step
    def start(self):
        self.cpus = 1
        self.next(self.end)

    @resources(memory=512000)
    @step
    def end(self):
        print("done", self.cpus, dict(self.limits))


if __name__ == "__main__":
    HungryFlow()
