"""decoflow: compile Metaflow custom step decorators inline into plain flows."""

__version__ = "0.1.0"
