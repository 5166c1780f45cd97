"""A base flow in its own module with a flow decorator (@project) and a custom decorator on
one of its steps (so the compiled flow carries it rather than import it)."""

from metaflow import FlowSpec, current, project, step, user_step_decorator


@user_step_decorator
def loud(step_name, flow, inputs=None, attributes=None):
    print("loud before", step_name)
    yield
    print("loud after", step_name)


@project(name="baseproj")
class ProjBase(FlowSpec):
    @loud
    @step
    def start(self):
        self.project = current.get("project_name")
        self.branch = current.get("branch_name")
        print("project", self.project)
        self.next(self.end)

    @step
    def end(self):
        print("end", self.project)
