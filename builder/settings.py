"""Every setting prebake reads from the environment, in one place: its variable, default and meaning.

Precedence is defaults < environment < arguments: a value passed to a function (or a command-line
flag) wins over the variable, which wins over the default. `prebake settings` prints this table,
and README.md lists it; a test keeps the three in step with what the code reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    variable: str
    default: str
    meaning: str

    def get(self, argument: str | os.PathLike[str] | None = None) -> str:
        """The argument if given, else the variable if set and not empty, else the default."""
        if argument is not None and argument != "":
            return os.fspath(argument)
        return os.environ.get(self.variable) or self.default


STATE_DIR = Setting("PREBAKE_STATE_DIR", "", "where restores keep their journals and markers (default ROOT/var/lib/prebake)")
WORKERS = Setting("PREBAKE_WORKERS", "processes", "restore parts in worker 'processes' or 'threads'")
CONNECTIONS = Setting("PREBAKE_CONNECTIONS", "8", "requests a restore keeps in flight over a network that caps each connection (parts, and ranges of them)")
CACHE = Setting("PREBAKE_CACHE", "", "where builds keep fetched files (default $XDG_CACHE_HOME/prebake, else ~/.cache/prebake)")
RUNTIME = Setting("PREBAKE_RUNTIME", "2026.07", "the Colab runtime that new recipes and notebook conversions target")
IMAGES_DIR = Setting("PREBAKE_IMAGES_DIR", "", "a folder of runtime facts to use instead of the shipped images/")
KEEP_CONTAINER = Setting("PREBAKE_KEEP_CONTAINER", "", "any value: keep a failed build's container for inspection")
GDRIVE_CREDENTIALS = Setting("PREBAKE_GDRIVE_CREDENTIALS", "",
                             "Drive credentials: a service-account or authorized-user JSON file, or 'colab'")
GDRIVE_API_BASE = Setting("PREBAKE_GDRIVE_API_BASE", "https://www.googleapis.com/", "the Drive API's address (tests point it at a local server)")
GDRIVE_PUBLIC_BASE = Setting("PREBAKE_GDRIVE_PUBLIC_BASE", "https://drive.google.com", "Drive's public download address (tests point it at a local server)")

ALL = (STATE_DIR, WORKERS, CONNECTIONS, CACHE, RUNTIME, IMAGES_DIR, KEEP_CONTAINER, GDRIVE_CREDENTIALS, GDRIVE_API_BASE, GDRIVE_PUBLIC_BASE)


def table() -> str:
    """The settings as the README shows them: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.variable}` | {f'`{s.default}`' if s.default else '(unset)'} | {s.meaning} |" for s in ALL]
    return "\n".join(rows)
