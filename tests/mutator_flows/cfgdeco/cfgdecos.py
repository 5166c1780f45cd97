from metaflow import user_step_decorator


@user_step_decorator
def tag_with(step_name, flow, inputs=None, attributes=None):
    flow.tag_value = attributes.get("value")
    yield
    print("tagged", step_name, flow.tag_value)
