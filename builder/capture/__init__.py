"""Capture: where a build runs and what it changed, as a staging tree that mirrors / plus the
paths it deleted.

A build runs at a `Site`, one small interface with two implementations (as cibuildwheel has one
module per platform), so that bake has one pipeline:

    Site                    run a step, put files, list changes, export them, platform facts
    ├── docker.Container    a container of an image; the changes are the container's layer
    └── scan.Host           this machine (a real Colab runtime); the changes are two snapshots of
                            file metadata under the roots, compared

This module holds the interface and what both share: which changed paths may enter a pack (under
a capture root, not excluded, not a credential) and the secret scan that refuses a key or a token.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from ..errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._proc import Ran
    from ..manifest import Platform

ADDED, CHANGED, DELETED = "A", "C", "D"

# Never captured, whatever the roots say: caches, logs, scratch space, engine-managed files.
DEFAULT_EXCLUDES = (
    "/tmp", "/var/tmp", "/run", "/proc", "/sys", "/dev",
    "/var/cache/apt", "/var/lib/apt/lists", "/var/log", "/var/cache/debconf/*-old",
    "/root/.cache", "/home/*/.cache", "/var/lib/prebake",
    "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab",
    "*/pip-build-env-*", "*/pip-req-build-*", "*.pyc.[0-9]*",
)

# Credential files and folders, by name: left out of every pack (and reported).
CREDENTIAL_PATTERNS = (
    "*/.ssh", "*/.gnupg", "*/.aws", "*/.azure", "*/.config/gcloud", "*/.kaggle", "*/.netrc",
    "*/.git-credentials", "*/.pypirc", "*/.docker/config.json", "*/.huggingface/token",
    "*/huggingface/token", "*/huggingface/stored_tokens", "*/credentials.json", "*/client_secret*.json",
    "*/service_account*.json", "*/application_default_credentials.json", "*/id_rsa*", "*/id_dsa*",
    "*/id_ecdsa*", "*/id_ed25519*", "*/.env",
)

# Contents that look like a private key or a well-known token format.
_SECRET_CONTENT = re.compile(
    rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
    rb"|\bhf_[A-Za-z0-9]{30,}\b|\bgh[pousr]_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b"
    rb"|\bAKIA[0-9A-Z]{16}\b"
)
_SCAN_LIMIT = 8 * 1024 * 1024
_SECRET_NAMES = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET = 8


@dataclass(frozen=True)
class Change:
    kind: str  # ADDED, CHANGED or DELETED
    path: str  # absolute


class Site(Protocol):
    """Where a build's steps run and its changes are read."""

    where: str  # how messages name the place: "in IMAGE", "in this runtime"
    workdir: str | None  # where steps start: /content in a container (as in Colab), the current folder here

    def environment(self) -> dict[str, str]:
        """The variables a step starts from (the image's, or this process's)."""

    def exec(self, argv: list[str], *, env: dict[str, str] | None = None, workdir: str | None = None,
             on_line: Callable[[str], None] | None = None, mask: Iterable[str] = ()) -> Ran:
        """Run `argv` there, each output line (masked) to `on_line`; the exit code and the last lines."""

    def put_file(self, dest: str, src: Path, mode: int = 0o644) -> None:
        """Copy the local file `src` to `dest` there, with `mode`."""

    def put_tree(self, src: Path, dest: str) -> None:
        """Copy the local tree `src` (modes, mtimes, symlinks kept) into `dest` there."""

    def changes(self) -> list[Change]:
        """What the build changed there."""

    def export(self, paths: list[str], staging: Path) -> None:
        """Copy `paths` (not recursing into folders) from there into `staging`, which mirrors /."""

    def platform(self) -> Platform:
        """The runtime facts there (OS, arch, Python, ABI, glibc, CUDA) for the manifest."""


@dataclass
class Selection:
    """The changes a pack takes: paths to copy (sorted), whiteouts, and what was left out and why."""

    copy: list[str] = field(default_factory=list)
    whiteouts: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)


def _matches(path: str, patterns: Iterable[str]) -> bool:
    """True when `path` or one of its ancestors matches a glob (a match covers everything below)."""
    candidates = [path, *(str(p) for p in PurePosixPath(path).parents if str(p) != "/")]
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates for pattern in patterns)


def under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def select(changes: Iterable[Change], roots: tuple[str, ...], excludes: tuple[str, ...] = ()) -> Selection:
    """Keep the changes under `roots` that are neither excluded nor credentials; deletions become
    whiteouts (one per deleted subtree)."""
    selection = Selection()
    # A default exclude that covers a root the recipe names (a root under /tmp, say) does not apply.
    defaults = [p for p in DEFAULT_EXCLUDES if not any(_matches(root, [p]) for root in roots)]
    all_excludes = (*defaults, *excludes)
    for change in sorted(changes, key=lambda c: c.path):
        path = change.path
        if not under(path, roots):
            continue
        if _matches(path, all_excludes):
            selection.excluded.append(path)
            continue
        if _matches(path, CREDENTIAL_PATTERNS):
            if not any(under(path, (c,)) for c in selection.credentials):
                selection.credentials.append(path)
            continue
        if change.kind == DELETED:
            if not any(under(path, (w,)) for w in selection.whiteouts):
                selection.whiteouts.append(path)
        else:
            selection.copy.append(path)
    return selection


def secret_values(env: dict[str, str]) -> dict[str, str]:
    """The values of variables whose names say they are secrets (long enough to search for)."""
    return {k: v for k, v in env.items() if _SECRET_NAMES.search(k) and len(v) >= _MIN_SECRET}


def scan_secrets(staging: Path, secrets: dict[str, str], allow: tuple[str, ...] = ()) -> None:
    """Refuse a staging tree (mirroring /) that holds a private key, a token of a known format, or
    the value of one of `secrets`; `allow` lists paths (globs) known to be public fixtures."""
    needles = [(name, value.encode()) for name, value in secrets.items()]
    for dirpath, _dirs, files in os.walk(staging):
        for filename in files:
            path = Path(dirpath, filename)
            shown = "/" + str(path.relative_to(staging))
            if path.is_symlink() or _matches(shown, allow):
                continue
            try:
                with open(path, "rb") as f:
                    data = f.read(_SCAN_LIMIT)
            except OSError:
                continue
            found = next((f"the value of ${name}" for name, value in needles if value in data), None)
            if found is None:
                match = _SECRET_CONTENT.search(data)
                if match:
                    found = "a private key" if b"PRIVATE" in match.group(0) else "a token"
            if found:
                msg = (f"{shown} holds {found}; prebake never packs secrets: remove it in the step that "
                       f"wrote it or add it to [capture] exclude (or [capture] allow if it is a public test fixture)")
                raise UsageError(msg)
