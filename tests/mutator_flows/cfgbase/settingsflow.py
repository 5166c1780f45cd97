from metaflow import step
from settingsbase import SettingsBase
from timing import timed


class SettingsFlow(SettingsBase):
    @timed
    @step
    def end(self):
        print("end", self.greeting, self.settings.who, dict(self.limits))


if __name__ == "__main__":
    SettingsFlow()
