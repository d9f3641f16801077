"""Where packs come from: a pack folder, a pack URL or a lock, resolved into the packs wanted and
their locations, and a pack's manifest fetched and checked against the digest a lock pins.

The restore, verify, inspect and lock commands all find packs here, and get typed results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import IntegrityError, UsageError
from .manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest, digest_of, loads
from .stores import Store, join_url, open_store, redact, url_path, with_path


@dataclass(frozen=True)
class PackSource:
    """A manifest fetched from a store and checked against the digest a lock pins, if any."""

    store: Store
    manifest: Manifest
    digest: str


def fetch_manifest(store: Store, expected_digest: str | None = None) -> PackSource:
    data = store.read_bytes(MANIFEST_NAME, limit=MAX_MANIFEST_BYTES)
    digest = digest_of(data)
    where = store.describe(MANIFEST_NAME)
    if expected_digest and digest != expected_digest:
        msg = f"{where} has digest {digest}, the lock pins {expected_digest}; the pack there changed: update the lock or fix the location"
        raise IntegrityError(msg)
    return PackSource(store, loads(data, where), digest)


@dataclass(frozen=True)
class Wanted:
    """One pack to restore: a label for messages, locations to try in order, the digest a lock
    pins (if any) and the variables the lock allows it."""

    label: str
    locations: list[str]
    digest: str | None = None
    allow_env: tuple[str, ...] = ()


def resolve(source: str | os.PathLike) -> list[Wanted]:
    """The packs of a pack folder or URL, or of a lock file (a path or an http(s) URL ending in
    .lock). A URL's query (a signed URL's token) stays on every URL made from it."""
    try:
        text = os.fspath(source)
    except TypeError:
        msg = f"source must be a path or URL (str or os.PathLike), not {type(source).__name__}"
        raise UsageError(msg) from None
    path = url_path(text)
    if not (path.endswith(".lock") or ("://" not in text and Path(text).is_file() and not text.endswith(".json"))):
        if path.endswith("/" + MANIFEST_NAME) or path == MANIFEST_NAME:
            text = with_path(text, path[: -len(MANIFEST_NAME)].rstrip("/") or ".")
        return [Wanted(redact(text), [text])]
    # Only a lock needs the lock module (and tomlkit): a pack restore starts sooner without it.
    from . import lock as lockfile

    if "://" in text:
        folder, name = path.rsplit("/", 1)
        base = with_path(text, folder)
        with open_store(base) as store:
            lock = lockfile.loads(store.read_bytes(name, limit=MAX_MANIFEST_BYTES).decode(errors="replace"), redact(text))
    else:
        lock_path = Path(text)
        if not lock_path.exists():
            msg = (f"{text}: no such lock file in {Path.cwd()}; upload it there (in Colab: the Files pane) or "
                   "restore from where it is published: `prebake restore https://.../prebake.lock`")
            raise UsageError(msg)
        lock = lockfile.load(lock_path)
        base = str(lock_path.resolve().parent)
    return [Wanted(p.name, [_relative_to(base, loc) for loc in p.locations], p.digest, p.allow_env) for p in lock.packs]


def _relative_to(base: str, location: str) -> str:
    """A lock's location; relative ones are relative to the lock's own folder or URL."""
    if "://" in location or location.startswith("/"):
        return location
    return join_url(base, location)


def open_pack(source: str | os.PathLike) -> PackSource:
    """The one pack a folder, URL or single-pack lock names (for verify, inspect and lock)."""
    wanted = resolve(source)
    if len(wanted) != 1:
        msg = f"{os.fspath(source)} is a lock with {len(wanted)} packs; pass one pack folder or URL"
        raise UsageError(msg)
    return fetch_manifest(open_store(wanted[0].locations[0]), wanted[0].digest)
