"""Support code the passes share: reading sources, following names, diagnostics, names.

Nothing here imports a pass (`transformer/passes/`): a pass may use any support module.
"""
