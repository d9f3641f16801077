"""Where packs come from: a pack folder, a pack URL or a lock, resolved into the packs wanted and
their locations (of a name's variants, the one for this runtime: variants.py), and a pack's
manifest fetched and checked against the digest and the platform a lock records.

The restore, verify, inspect, lock and doctor commands all find packs here, and get typed results.

Two layouts of a pack in a store, told apart without a listing:
- a pack folder: manifest.json beside its parts (what `prebake pack` writes, and where push put
  each pack, DEST/NAME, before parts were shared);
- a shared folder (push's DEST/parts): the parts of every pack and release pushed there, each
  named by its sha256 (part-SHA256.tar.zst), and each release's manifest named by its digest
  (manifest-HEX.json). A lock pins the folder and the digest, so the restore reads
  manifest-HEX.json and then the parts the manifest names, from the same folder: nothing else.
With a digest pinned, the file its folder's name suggests is read first (manifest-HEX.json in a
folder named `parts`, manifest.json elsewhere) and the other one only if that is missing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import IntegrityError, StoreNotFound, UsageError
from .manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest, Platform, digest_of, loads
from .runtime import short
from .stores import Store, join_url, open_store, redact, url_path, with_path

if TYPE_CHECKING:
    from .lock import Lock


SHARED_FOLDER = "parts"
"""The folder of a destination that holds the parts and manifests of every pack pushed there."""
_BY_DIGEST = re.compile(r"manifest-([0-9a-f]{64})\.json")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def manifest_file(digest: str) -> str:
    """The name of the manifest with `digest` (sha256:HEX) in a shared folder."""
    return f"manifest-{digest.removeprefix('sha256:')}.json"


@dataclass(frozen=True)
class PackSource:
    """A manifest fetched from a store and checked against the digest a lock pins, if any; its
    bytes (`data`, whose sha256 is `digest`) are kept with the install marker."""

    store: Store | None
    """None for the manifest kept with an install marker (_restored_here): nothing to fetch."""
    manifest: Manifest
    digest: str
    data: bytes


def checked(data: bytes, where: str, expected_digest: str | None, expected_platform: Platform | None) -> tuple[Manifest, str]:
    """The manifest in `data` and its digest, refused when the digest is not the one a lock pins
    or its platform not the one the lock's entry records."""
    digest = digest_of(data)
    if expected_digest and digest != expected_digest:
        msg = f"{where} has digest {digest}, the lock pins {expected_digest}; the pack there changed: update the lock or fix the location"
        raise IntegrityError(msg)
    manifest = loads(data, where)
    if expected_platform is not None and manifest.platform != expected_platform:
        msg = (f"{where} is built for {short(manifest.platform)}, but its lock entry says {short(expected_platform)}; "
               "the lock was edited or damaged: write it again with `prebake push` or `prebake lock`")
        raise UsageError(msg)
    return manifest, digest


def fetch_manifest(store: Store, expected_digest: str | None = None, expected_platform: Platform | None = None) -> PackSource:
    """The manifest at `store`, refused when its digest is not the one a lock pins or its platform
    not the one the lock's entry records (a lock edited by hand: the restore chose by that entry).
    With a pinned digest the manifest is looked up by it in a shared folder (see the module's doc)."""
    names = [MANIFEST_NAME]
    shared = url_path(store.url).rstrip("/").rsplit("/", 1)[-1] == SHARED_FOLDER
    if expected_digest and _DIGEST.fullmatch(expected_digest):
        names.append(manifest_file(expected_digest))
        if shared:
            names.reverse()
    refusals: list[Exception] = []
    for name in names:
        where = store.describe(name)
        try:
            data = store.read_bytes(name, limit=MAX_MANIFEST_BYTES)
        except StoreNotFound as e:
            refusals.append(e)
            continue
        try:
            manifest, digest = checked(data, where, expected_digest, expected_platform)
        except IntegrityError as e:
            refusals.insert(0, e)
            continue
        return PackSource(store, manifest, digest, data)
    if shared and not expected_digest and isinstance(refusals[0], StoreNotFound):
        msg = (f"{refusals[0]} (a folder named {SHARED_FOLDER} holds the parts of every pack pushed there and one "
               "manifest-HEX.json per release: restore through the lock push wrote, or name one of those manifests)")
        raise StoreNotFound(msg) from refusals[0]
    raise refusals[0]  # the changed manifest, or else the one this location should have had


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
        folder, digest = manifest_location(text)
        return [Wanted(redact(folder), [folder], digest)]
    from .variants import by_name, choose, platform_here

    lock, base = read_lock(text)
    groups = by_name(lock.packs).values()
    several = [variant for variants in groups if len(variants) > 1 for variant in variants]
    here = platform_here(several) if several else None
    picked = [variants[0] if len(variants) == 1 else choose(variants, here) for variants in groups]
    return [Wanted(p.name, [manifest_location(lock_location(base, loc))[0] for loc in p.locations], p.digest, p.allow_env,
                   p.platform) for p in picked]


def manifest_location(location: str) -> tuple[str, str | None]:
    """The folder a location names, and the digest its name pins: a manifest's own URL or path
    (.../manifest.json, or .../manifest-HEX.json in a shared folder, which pins sha256:HEX) is
    read from its folder; a folder is itself."""
    path = url_path(location)
    folder, _, name = path.rpartition("/")
    by_digest = _BY_DIGEST.fullmatch(name)
    if name != MANIFEST_NAME and not by_digest:
        return location, None
    return with_path(location, folder or ("/" if path.startswith("/") else ".")), f"sha256:{by_digest[1]}" if by_digest else None


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
