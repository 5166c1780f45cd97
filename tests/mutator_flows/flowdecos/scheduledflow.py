"""A flow decorator of another kind than its base's (@schedule under the base's @project):
natively the flow has both."""

from metaflow import schedule
from projbase import ProjBase


@schedule(daily=True)
class ScheduledFlow(ProjBase):
    pass


if __name__ == "__main__":
    ScheduledFlow()
