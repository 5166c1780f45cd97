"""`python -m decoflow` runs the command line."""

from decoflow.cli import run

if __name__ == "__main__":
    run()
