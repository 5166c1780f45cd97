from loudsettingsbase import LoudSettingsBase
from metaflow import step
from timing import timed


class LoudSettingsFlow(LoudSettingsBase):
    @timed
    @step
    def end(self):
        print("end", self.greeting, self.settings.who, dict(self.limits))


if __name__ == "__main__":
    LoudSettingsFlow()
