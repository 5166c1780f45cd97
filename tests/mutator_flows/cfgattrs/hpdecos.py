"""A custom decorator reading a Config's dict given through config_expr by attribute."""

from metaflow import user_step_decorator


@user_step_decorator
def trainer(step_name, flow, inputs=None, attributes=None):
    hp = attributes["hp"]
    flow.lr = hp.lr
    flow.depth = hp.layers[0].depth
    flow.kind = type(hp).__name__
    yield
