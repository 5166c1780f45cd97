"""A base flow importing the decorator and its state from the decorator's module."""

from metaflow import FlowSpec, step
from recdecos import SEEN, record


class ImportBase(FlowSpec):
    @record
    @step
    def start(self):
        self.seen = list(SEEN)
        print("seen", SEEN)
        self.next(self.end)

    @step
    def end(self):
        print("seen at end", SEEN)
