"""A custom decorator that reads the flow's Config through `flow`."""

from metaflow import user_step_decorator


@user_step_decorator
def timed(step_name, flow, inputs=None, attributes=None):
    print("timed before", step_name, flow.limits.cpu)
    yield
    print("timed after", step_name, list(flow.limits.tags))
