from metaflow import FlowSpec, retry, step

from dupemods import retry_error, retry_ignore, retry_override


class DupeFlow(FlowSpec):
    @retry_ignore
    @retry(times=1)
    @step
    def start(self):
        self.seen = ["start"]
        self.next(self.middle)

    @retry_override
    @retry(times=1)
    @step
    def middle(self):
        self.seen.append("middle")
        self.next(self.end)

    @retry_error
    @step
    def end(self):
        print("seen", self.seen)


if __name__ == "__main__":
    DupeFlow()
