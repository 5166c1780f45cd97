from metaflow import step

from baseflow import BaseFlow


class TeamFlow(BaseFlow):
    @step
    def start(self):
        self.text = self.banner()
        self.next(self.end)

    @step
    def end(self):
        print(self.text)


if __name__ == "__main__":
    TeamFlow()
