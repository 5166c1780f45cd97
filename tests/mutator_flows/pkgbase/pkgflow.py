"""A flow deriving a base flow from a package: compiled, it must run alone (the package's
helpers carried, config_expr imported for the carried Parameter)."""

from metaflow import current, step
from platformlib import PlatformBase


class PkgFlow(PlatformBase):
    @step
    def work(self):
        self.result = (current.project_name, current.retry_count)
        self.next(self.end)


if __name__ == "__main__":
    PkgFlow()
