"""A custom decorator stamping its attribute onto the flow."""

from metaflow import user_step_decorator


@user_step_decorator
def stamp(step_name, flow, inputs=None, attributes=None):
    flow.stamped = f"{attributes['owner']}:{step_name}"
    yield
    print("stamped", flow.stamped)
