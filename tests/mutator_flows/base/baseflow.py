"""A base flow in its own module: configs, a flow mutator and @project from a config."""

from metaflow import Config, FlowMutator, FlowSpec, Parameter, config_expr, project


class team_defaults(FlowMutator):
    def mutate(self, mutable_flow):
        retries = mutable_flow.team.retries
        for _name, step in mutable_flow.steps:
            step.add_decorator("retry", deco_kwargs={"times": retries})


@team_defaults
@project(name=config_expr("team.project"))
class BaseFlow(FlowSpec):
    team = Config("team", default="team.json")
    greeting = Parameter("greeting", default="hello")

    def banner(self):
        return f"{self.greeting} from {self.team.project}"
