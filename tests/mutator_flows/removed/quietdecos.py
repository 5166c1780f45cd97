"""A custom decorator, and a flow mutator that takes it off every step when the config
says `quiet`: the compiled flow must then not import this module (it needs Metaflow 2.16+)."""

from metaflow import FlowMutator, user_step_decorator


@user_step_decorator
def chatty(step_name, flow, inputs=None):
    print("chatty before", step_name)
    yield
    flow.chatted = step_name


class hush(FlowMutator):
    def mutate(self, mutable_flow):
        quiet = dict(mutable_flow.configs)["opts"]["quiet"]
        for _name, s in mutable_flow.steps:
            if quiet:
                s.remove_decorator("chatty")
