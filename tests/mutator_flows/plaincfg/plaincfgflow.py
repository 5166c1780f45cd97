"""A config-driven flow with no mutator and no custom decorator: a step keeps a Config's
sub-dict as an artifact (a ConfigValue, which Metaflow 2.15 cannot load back)."""

from metaflow import Config, FlowSpec, config_expr, retry, step


class PlainCfgFlow(FlowSpec):
    cfg = Config("cfg", default_value={"retries": 1, "model": {"lr": 0.1, "dims": [2, 3]}})

    @retry(times=config_expr("cfg.retries"))
    @step
    def start(self):
        self.model = self.cfg.model
        self.next(self.end)

    @step
    def end(self):
        print("end", dict(self.model), self.model.lr)


if __name__ == "__main__":
    PlainCfgFlow()
