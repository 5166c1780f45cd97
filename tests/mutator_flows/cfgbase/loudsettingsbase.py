"""A base flow declaring Configs that only steps read, with a custom decorator on a step
(so the compiled flow carries it instead of importing it)."""

from metaflow import Config, FlowSpec, step, user_step_decorator


@user_step_decorator
def loud(step_name, flow, inputs=None, attributes=None):
    print("loud before", step_name, flow.settings.who)
    yield
    print("loud after", step_name)


class LoudSettingsBase(FlowSpec):
    settings = Config("settings", default="settings.json")
    limits = Config("limits", default_value={"cpu": 2, "tags": ["a", "b"]})

    @loud
    @step
    def start(self):
        self.greeting = f"{self.settings.greeting}, {self.settings['who']}"
        print("start", self.greeting, self.limits.cpu)
        self.next(self.end)
