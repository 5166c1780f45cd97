"""Config values as steps keep them, on Metaflow 2.15 too: a sub-dict of a Config kept as an
artifact (a ConfigValue, which 2.15 cannot load back), and a Config whose name has a "-"
(which 2.15 passes to no task)."""

from metaflow import Config, FlowMutator, FlowSpec, step


class retry_all(FlowMutator):
    def mutate(self, mutable_flow):
        times = dict(mutable_flow.configs)["model-settings"]["retries"]
        for _name, s in mutable_flow.steps:
            s.add_decorator("retry", deco_kwargs={"times": times})


@retry_all
class ValuesFlow(FlowSpec):
    settings = Config(
        "model-settings",
        default_value={"retries": 1, "model": {"lr": 0.1, "layers": [2, {"k": None}]}},
    )

    @step
    def start(self):
        self.model = self.settings.model
        self.next(self.end)

    @step
    def end(self):
        print("end", dict(self.model), self.settings.retries)


if __name__ == "__main__":
    ValuesFlow()
