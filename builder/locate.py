"""Where packs come from: a pack folder, a pack URL or a lock, resolved into the packs wanted and
their locations (of a name's variants, the one for this runtime: variants.py), and a pack's
manifest fetched and checked against the digest and the platform a lock records.

The restore, verify, inspect, lock and doctor commands all find packs here, and get typed results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import IntegrityError, UsageError
from .manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest, Platform, digest_of, loads
from .runtime import short
from .stores import Store, join_url, open_store, redact, url_path, with_path

if TYPE_CHECKING:
    from .lock import Lock


@dataclass(frozen=True)
class PackSource:
    """A manifest fetched from a store and checked against the digest a lock pins, if any."""

    store: Store
    manifest: Manifest
    digest: str


def fetch_manifest(store: Store, expected_digest: str | None = None, expected_platform: Platform | None = None) -> PackSource:
    """The manifest at `store`, refused when its digest is not the one a lock pins or its platform
    not the one the lock's entry records (a lock edited by hand: the restore chose by that entry)."""
    data = store.read_bytes(MANIFEST_NAME, limit=MAX_MANIFEST_BYTES)
    digest = digest_of(data)
    where = store.describe(MANIFEST_NAME)
    if expected_digest and digest != expected_digest:
        msg = f"{where} has digest {digest}, the lock pins {expected_digest}; the pack there changed: update the lock or fix the location"
        raise IntegrityError(msg)
    manifest = loads(data, where)
    if expected_platform is not None and manifest.platform != expected_platform:
        msg = (f"{where} is built for {short(manifest.platform)}, but its lock entry says {short(expected_platform)}; "
               "the lock was edited or damaged: write it again with `prebake push` or `prebake lock`")
        raise UsageError(msg)
    return PackSource(store, manifest, digest)


@dataclass(frozen=True)
class Wanted:
    """One pack to restore: a label for messages, locations to try in order, the digest a lock
    pins (if any), the variables the lock allows it and the platform its lock entry records."""

    label: str
    locations: list[str]
    digest: str | None = None
    allow_env: tuple[str, ...] = ()
    platform: Platform | None = None


def resolve(source: str | os.PathLike) -> list[Wanted]:
    """The packs of a pack folder or URL, or of a lock file (a path or an http(s) URL ending in
    .lock). A URL's query (a signed URL's token) stays on every URL made from it.

    Of a name's variants in a lock, the one that fits this runtime (variants.choose: none fitting
    is a one-line PlatformMismatch); a name's only entry is taken as it is, and the restore's
    platform check decides (so that --force still applies)."""
    text = _text(source)
    if not is_lock(text):
        path = url_path(text)
        if path.endswith("/" + MANIFEST_NAME) or path == MANIFEST_NAME:
            text = with_path(text, path[: -len(MANIFEST_NAME)].rstrip("/") or ".")
        return [Wanted(redact(text), [text])]
    from .variants import by_name, choose, platform_here

    lock, base = read_lock(text)
    groups = by_name(lock.packs).values()
    several = [variant for variants in groups if len(variants) > 1 for variant in variants]
    here = platform_here(several) if several else None
    picked = [variants[0] if len(variants) == 1 else choose(variants, here) for variants in groups]
    return [Wanted(p.name, [lock_location(base, loc) for loc in p.locations], p.digest, p.allow_env, p.platform) for p in picked]


def _text(source: str | os.PathLike) -> str:
    try:
        return os.fspath(source)
    except TypeError:
        msg = f"source must be a path or URL (str or os.PathLike), not {type(source).__name__}"
        raise UsageError(msg) from None


def is_lock(source: str) -> bool:
    """Whether `source` names a lock file: a path or URL ending in .lock, or a file that is not JSON."""
    return url_path(source).endswith(".lock") or ("://" not in source and Path(source).is_file() and not source.endswith(".json"))


def read_lock(source: str | os.PathLike) -> tuple[Lock, str]:
    """The lock at a path or http(s) URL, and the folder or URL its relative locations are relative to."""
    # Only a lock needs the lock module (and tomlkit): a pack restore starts sooner without it.
    from . import lock as lockfile

    text = _text(source)
    if "://" in text:
        folder, name = url_path(text).rsplit("/", 1)
        base = with_path(text, folder)
        with open_store(base) as store:
            return lockfile.loads(store.read_bytes(name, limit=MAX_MANIFEST_BYTES).decode(errors="replace"), redact(text)), base
    lock_path = Path(text)
    if not lock_path.exists():
        msg = (f"{text}: no such lock file in {Path.cwd()}; upload it there (in Colab: the Files pane) or "
               "restore from where it is published: `prebake restore https://.../prebake.lock`")
        raise UsageError(msg)
    return lockfile.load(lock_path), str(lock_path.resolve().parent)


def lock_matrix(source: str | os.PathLike) -> list[str]:
    """`prebake inspect LOCK`: each pack's variants and the one this runtime restores (variants.matrix)."""
    from .variants import matrix, platform_here

    lock, _ = read_lock(source)
    return matrix(lock, platform_here(lock.packs), redact(_text(source)))


def lock_location(base: str, location: str) -> str:
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
    return fetch_manifest(open_store(wanted[0].locations[0]), wanted[0].digest, wanted[0].platform)
