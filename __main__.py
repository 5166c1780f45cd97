"""`python -m decoflow` runs the command line."""

from decoflow.cli import main

if __name__ == "__main__":
    main()
