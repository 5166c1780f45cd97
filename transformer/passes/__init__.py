"""The compiler's passes, one module (or package) each; `transformer/pipeline.py` runs them
in order.

A pass imports only support code (`transformer/support/`) and what earlier passes produce.
"""
