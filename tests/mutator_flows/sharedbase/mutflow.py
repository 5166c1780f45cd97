from mutbase import MutBase


class MutRecFlow(MutBase):
    pass


if __name__ == "__main__":
    MutRecFlow()
