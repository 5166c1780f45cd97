"""The base flow: a flow mutator, a Config, a Parameter defaulting to a config_expr, and a
step calling a helper imported from a sibling module."""

from metaflow import Config, FlowMutator, FlowSpec, Parameter, config_expr, project, step

from .helpers import region_label


class standard_retries(FlowMutator):
    def mutate(self, mutable_flow):
        for name, s in mutable_flow.steps:
            if name not in ("start", "end"):
                s.add_decorator("retry", deco_kwargs={"times": 2})


@standard_retries
@project(name=config_expr("platform.project"))
class PlatformBase(FlowSpec):
    platform = Config("platform", default_value={"project": "pkgproj", "region": "us"})
    region = Parameter("region", default=config_expr("platform.region"))

    @step
    def start(self):
        self.label = region_label(self.region)
        self.next(self.work)

    @step
    def end(self):
        print("end", self.label, self.result)
