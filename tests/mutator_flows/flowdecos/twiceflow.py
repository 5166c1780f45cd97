"""@project on the flow and on its base: Metaflow refuses the flow as it is imported
(DuplicateFlowDecoratorException, 2.16 and 2.19)."""

from metaflow import project
from projbase import ProjBase


@project(name="flowproj")
class TwiceFlow(ProjBase):
    pass


if __name__ == "__main__":
    TwiceFlow()
