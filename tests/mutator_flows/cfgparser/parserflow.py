"""Configs read from a subfolder through a parser function (and a parser named as a string),
fed to a built-in and to a custom decorator."""

from metaflow import Config, FlowSpec, config_expr, retry, step

from kvparse import parse_kv
from stampdecos import stamp


class ParserFlow(FlowSpec):
    run_cfg = Config("run_cfg", default="settings/run.kv", parser=parse_kv)
    named = Config("named", default="settings/run.kv", parser="kvparse.parse_kv")

    @stamp(owner=config_expr("run_cfg.owner"))
    @retry(times=config_expr("run_cfg.batch"))
    @step
    def start(self):
        self.items = list(range(self.run_cfg.batch))
        self.next(self.end)

    @step
    def end(self):
        print("owner", self.run_cfg.owner, "items", self.items, "named", dict(self.named))


if __name__ == "__main__":
    ParserFlow()
