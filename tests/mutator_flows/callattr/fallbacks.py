"""A custom decorator taking a function as an attribute, added by a flow mutator."""

from metaflow import FlowMutator, user_step_decorator


def default_fallback(flow):
    flow.fell_back = True
    print("fallback ran")


@user_step_decorator
def with_fallback(step_name, flow, inputs=None, attributes=None):
    handler = attributes.get("handler")
    try:
        yield
    except ValueError as exc:
        print("caught", exc)
        if handler is not None:
            handler(flow)


class safe(FlowMutator):
    def mutate(self, mutable_flow):
        for name, s in mutable_flow.steps:
            if name == "risky":
                s.add_decorator(with_fallback, deco_kwargs={"handler": default_fallback})
