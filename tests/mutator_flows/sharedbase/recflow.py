from recbase import RecBase


class RecFlow(RecBase):
    pass


if __name__ == "__main__":
    RecFlow()
