"""A flow mutator that reads a Config and lowers @resources values above its limits."""

from metaflow import FlowMutator


class limit_resources(FlowMutator):
    def mutate(self, mutable_flow):
        limits = mutable_flow.limits
        for step_name, step in mutable_flow.steps:
            for name, _module, _args, attributes in step.decorator_specs:
                if name != "resources":
                    continue
                changed = dict(attributes)
                for key, limit in limits.items():
                    value = attributes.get(key)
                    if value is not None and float(value) > limit:
                        print(f"limit: {step_name} {key}={value} -> {limit}")
                        changed[key] = limit
                if changed != attributes:
                    step.add_decorator(
                        "resources", deco_kwargs=changed, duplicates=step.OVERRIDE
                    )
