from metaflow import Config, FlowSpec, config_expr, project, resources, step

from decos import everywhere, tagged


@everywhere(times=3)
@project(name=config_expr("cfg.project"))
class RobustFlow(FlowSpec):
    cfg = Config("cfg", default="cfg.json")

    @resources(cpu=2)
    @step
    def start(self):
        print("start", self.alpha, self.cfg.label)
        self.value = self.alpha * 2
        self.next(self.end)

    @tagged(label=config_expr("cfg.label"))
    @step
    def end(self):
        print("end", self.value, self.announced)


if __name__ == "__main__":
    RobustFlow()
