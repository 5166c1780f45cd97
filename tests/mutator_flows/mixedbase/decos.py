"""Custom decorators the base flows below write on their steps: a generator and a class."""

from metaflow import UserStepDecorator, user_step_decorator


@user_step_decorator
def tagged(step_name, flow, inputs=None, attributes=None):
    print("tagged: before", step_name)
    yield
    flow.tags_seen = getattr(flow, "tags_seen", []) + [step_name]
    print("tagged: after", step_name)


class Stamp(UserStepDecorator):
    def init(self, *args, **kwargs):
        self.label = kwargs.get("label", "stamp")

    def pre_step(self, step_name, flow, inputs=None):
        print("stamp: pre", self.label, step_name)
        flow.stamped = self.label

    def post_step(self, step_name, flow, exception=None):
        print("stamp: post", self.label, step_name, exception is None)
