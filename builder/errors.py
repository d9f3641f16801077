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

Library code raises these; only the command line prints them and exits.
"""

from __future__ import annotations


class PrebakeError(Exception):
    exit_code = 1


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
