from metaflow import Config, FlowSpec, config_expr, step

from cfgdecos import tag_with


class CfgDecoFlow(FlowSpec):
    settings = Config("settings", default_value={"tag": "blue", "size": 3})

    @tag_with(value=config_expr("settings.tag"))
    @step
    def start(self):
        self.size = self.settings.size
        self.next(self.end)

    @step
    def end(self):
        print("size", self.size, self.tag_value)


if __name__ == "__main__":
    CfgDecoFlow()
