"""The thin runtime of compiled flows.

Compiled flows do not import this package: the compiler copies the few functions a flow
needs from `helpers.py` into the flow itself (the way Babel inlines its helpers), so a
compiled flow runs where decoflow is not installed, on any Metaflow version.
"""

from pathlib import Path

HELPERS_PATH = Path(__file__).with_name("helpers.py")
#: Where the helpers are: transitions and yields, then class-based decorators.
HELPERS_PATHS = (HELPERS_PATH, Path(__file__).with_name("classes.py"))
