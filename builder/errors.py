"""The exception tree and the exit codes the command line maps them to.

    PrebakeError                 1   base: anything prebake reports as a one-line error
    ├── UsageError               2   bad arguments, recipe or lock contents
    ├── ContainerEngineError     3   Docker missing, too old or failing
    ├── StoreError               4   a store could not be read or written
    │   ├── StoreNotFound        4   the pack, part or file is not there
    │   ├── StoreAuthError       4   credentials missing or refused
    │   └── TransientStoreError  4   worth retrying: resets, 429, 5xx, rate limits
    ├── IntegrityError           5   a size, sha256, digest or tar stream does not match
    ├── UnsafePackError          5   a member would land outside the pack's prefixes
    ├── PlatformMismatch         6   the pack was built for another runtime
    ├── StepFailed               7   a build step exited non-zero
    └── ConflictError            8   this machine is in the way: a link or file where the pack
                                     needs a folder, or another restore holds the root (--no-wait)

Library code raises these; only the command line prints them and exits. Messages are written with
the command line's flags; read from Python (str(error), a notebook's error output) they name the
Python arguments instead, and a notebook shows them as one line, without the chained traceback of
the worker that failed (kept on `error.cause`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TypeVar

# The command line's flags as the Python API spells them, for the hints inside messages.
# Whole tokens only: a user's `pip install --force-reinstall` or a path like /data/--root/x stays as is.
_FLAG = r"(?<![\w/-]){}(?![\w/-])"
_PYTHON_SPELLING = (
    (re.compile(_FLAG.format("--root DIR")), "root='DIR'"),
    (re.compile(_FLAG.format("--root")), "root="),
    (re.compile(_FLAG.format("--prefix DIR")), "prefix='DIR'"),
    (re.compile(_FLAG.format("--prefix")), "prefix"),
    (re.compile(_FLAG.format("--force")), "force=True"),
    (re.compile(_FLAG.format("--no-wait")), "wait=False"),
    (re.compile(_FLAG.format("--allow-setuid")), "allow_setuid=True"),
    (re.compile(_FLAG.format("--allow-env ([A-Za-z_][A-Za-z0-9_]*)")), r"allow_env=['\1']"),
    (re.compile(_FLAG.format("--allow-env")), "allow_env=[...]"),
    (re.compile(r"`prebake restore (\S+)`"), r"prebake.restore('\1')"),
)


class PrebakeError(Exception):
    exit_code = 1
    cause: BaseException | None = None
    """What went wrong underneath (a worker's traceback, an OSError), for inspection."""

    def cli_message(self) -> str:
        """The message as written, with the command line's flags."""
        return " ".join(str(arg) for arg in self.args)

    def __str__(self) -> str:
        text = self.cli_message()
        for pattern, spelling in _PYTHON_SPELLING:
            text = pattern.sub(spelling, text)
        return text

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of the traceback: one line, the message and its fix."""
        return [f"{type(self).__name__}: {self}"]


class UsageError(PrebakeError):
    exit_code = 2


class ContainerEngineError(PrebakeError):
    exit_code = 3


class StoreError(PrebakeError):
    exit_code = 4


class StoreNotFound(StoreError):
    pass


class StoreAuthError(StoreError):
    pass


class TransientStoreError(StoreError):
    pass


class IntegrityError(PrebakeError):
    exit_code = 5


class UnsafePackError(IntegrityError):
    pass


class PlatformMismatch(PrebakeError):
    exit_code = 6


class StepFailed(PrebakeError):
    exit_code = 7


class ConflictError(PrebakeError):
    """Not the pack's fault: something on this machine stands where the restore must act."""

    exit_code = 8


F = TypeVar("F", bound=Callable)


def api(function: F) -> F:
    """For a function users call from Python: a PrebakeError it raises arrives without its chain
    (the worker's remote traceback, the OSError) printed above it; the chain stays on `error.cause`,
    and the error's own traceback stays whole (`--debug` prints it)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except PrebakeError as e:
            e.cause = e.cause or e.__cause__ or e.__context__
            raise e from None

    return wrapper  # type: ignore[return-value]
