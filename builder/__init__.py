"""prebake: build a notebook's heavy environment once, restore it anywhere in seconds.

In a notebook: `import prebake; prebake.restore("prebake.lock")`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import PrebakeError  # noqa: E402
from .restore import RestoreOptions, RestoreResult, restore  # noqa: E402

__all__ = ["PrebakeError", "RestoreOptions", "RestoreResult", "__version__", "restore"]
