from importbase import ImportBase

SEEN = "the flow module's own"


class ImportFlow(ImportBase):
    pass


if __name__ == "__main__":
    ImportFlow()
