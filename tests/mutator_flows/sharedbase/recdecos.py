"""A custom decorator and the state it shares with the steps that import it."""

from metaflow import user_step_decorator

SEEN = []


@user_step_decorator
def record(step_name, flow, inputs=None, attributes=None):
    SEEN.append(step_name)
    yield
