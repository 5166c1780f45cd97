"""A base flow with an @exit_hook (a flow decorator Metaflow allows several of) and a custom
decorator on a step."""

from metaflow import FlowSpec, exit_hook, step, user_step_decorator


@user_step_decorator
def loud(step_name, flow, inputs=None, attributes=None):
    print("loud", step_name)
    yield


def base_hook(run=None):
    print("base hook ran")


@exit_hook(on_success=[base_hook])
class HookBase(FlowSpec):
    @loud
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        print("end")
