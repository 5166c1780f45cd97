"""Every use of an imported custom decorator removed by a mutator: nothing left to inline."""

from metaflow import Config, FlowSpec, step

from quietdecos import chatty, hush


@hush
class QuietFlow(FlowSpec):
    opts = Config("opts", default_value={"quiet": True})

    @chatty
    @step
    def start(self):
        self.x = 1
        self.next(self.end)

    @chatty
    @step
    def end(self):
        print("end", self.x, getattr(self, "chatted", None))


if __name__ == "__main__":
    QuietFlow()
