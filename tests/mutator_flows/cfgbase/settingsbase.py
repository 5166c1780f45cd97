"""A base flow in its own module declaring Configs that only its steps read (no mutator, no
config_expr in any decorator): one from a default file, one from a default value."""

from metaflow import Config, FlowSpec, step


class SettingsBase(FlowSpec):
    settings = Config("settings", default="settings.json")
    limits = Config("limits", default_value={"cpu": 2, "tags": ["a", "b"]})

    @step
    def start(self):
        self.greeting = f"{self.settings.greeting}, {self.settings['who']}"
        print("start", self.greeting, self.limits.cpu)
        self.next(self.end)
