"""A class between: its own `fmt` and `PREFIX`, other than rootbase's."""

import json

from metaflow import step
from rootbase import RootBase

PREFIX = "mid"


def fmt(value):
    return json.dumps([PREFIX, value])


class MidBase(RootBase):
    @step
    def middle(self):
        def fmt(value):  # a local of the same name: not the module's
            return f"local:{value}"

        self.mid = fmt("middle")
        self.mid_module = json.dumps(PREFIX)
        self.next(self.end)
