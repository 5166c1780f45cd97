from metaflow import FlowSpec, step

from chainmods import spread


@spread
class ChainFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        print("stamps", self.stamps)


if __name__ == "__main__":
    ChainFlow()
