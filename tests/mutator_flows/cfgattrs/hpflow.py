"""config_expr giving a custom decorator a Config's dict: natively a ConfigValue (read by
attribute, nested dicts too), so the compiled flow writes ConfigValue({...})."""

from hpdecos import trainer
from metaflow import Config, FlowSpec, config_expr, step


class HpFlow(FlowSpec):
    cfg = Config("cfg", default_value={"hp": {"lr": 0.1, "layers": [{"depth": 3}]}})

    @trainer(hp=config_expr("cfg.hp"))
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        print("end", self.lr, self.depth, self.kind)


if __name__ == "__main__":
    HpFlow()
