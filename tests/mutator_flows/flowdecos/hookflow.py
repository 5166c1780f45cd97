"""@exit_hook on the flow and on its base: on 2.19 the flow's own list replaces the
inherited one (only flow_hook runs; 2.16 runs both)."""

from hookbase import HookBase
from metaflow import exit_hook


def flow_hook(run=None):
    print("flow hook ran")


@exit_hook(on_success=[flow_hook])
class HookFlow(HookBase):
    pass


if __name__ == "__main__":
    HookFlow()
