"""pre_mutate removing a declared parameter and replacing another (`overwrite=True`): the
compiled flow must declare neither the removed one nor the replaced one's old definition."""

from metaflow import Config, FlowMutator, FlowSpec, Parameter, step


class knobs_only(FlowMutator):
    def pre_mutate(self, mutable_flow):
        knobs = mutable_flow.knobs
        if knobs.get("drop_legacy"):
            mutable_flow.remove_parameter("legacy")
        mode = Parameter("mode", default=knobs.mode, help="from knobs")
        mutable_flow.add_parameter("mode", mode, overwrite=True)


@knobs_only
class ParamFlow(FlowSpec):
    knobs = Config("knobs", default_value={"drop_legacy": True, "mode": "from-knobs"})
    legacy = Parameter("legacy", default="old")
    mode = Parameter("mode", default="static-mode")

    @step
    def start(self):
        self.has_legacy = hasattr(self, "legacy")
        print("start", self.has_legacy, self.mode)
        self.next(self.end)

    @step
    def end(self):
        print("end", self.mode)


if __name__ == "__main__":
    ParamFlow()
