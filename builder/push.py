"""Push packs to stores: parts first (content-addressed), then the manifest, then the lock.

    push(["out/hello"], ["gdrive://FOLDER", "/mnt/mirror", "s3://bucket/packs"], lock_path=Path("prebake.lock"))

A folder or fsspec destination keeps every pack in one shared folder, DEST/parts: each part under
its sha256 (part-SHA256.tar.zst, the name pack gives it) and each release's manifest under its
digest (manifest-HEX.json). Two packs or two releases that have parts in common store them once,
a push uploads only the parts the folder lacks (in_shared_folder), and nothing is overwritten (but
an object that does not prove to hold its name's bytes, which gets them), so every lock
ever written for that folder still restores. The lock pins DEST/parts and the digest
(locate.fetch_manifest reads manifest-HEX.json there).

Drive, and packs made before parts were named by their sha256 (part-NNN.tar.zst, which two packs
would both use), go to one folder per pack variant as before: NAME for a pack without a platform,
and NAME@PLATFORM (runtime.short, like opensmile@ubuntu22.04-x86_64-py3.12-glibc2.35) for one built
for a runtime, written through three store methods: a part the store already has (has_part: same
size, and sha256 where the store can tell) is not uploaded again, the others go up with put_part,
and put_manifest comes last, so a push cut short never leaves a manifest that names parts which are
not there. Stores that address files by id (Drive) hand back the part ids (part_ids), which the
manifest records so restores need no folder listing and no credentials; the manifest with those ids
is what every destination of this push receives, so they all carry the same digest, and it is
written back to the local pack folder so later pushes agree with it. Last, the lock is merged
(lock.write_lock): one entry per name and platform, so pushing a variant for another runtime adds it
and pushing the same platform replaces it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._fs import atomic_write
from .errors import IntegrityError, StoreAuthError, StoreNotFound, UsageError
from .locate import SHARED_FOLDER, manifest_file
from .lock import LockedPack, recorded, write_lock
from .manifest import MANIFEST_NAME, Manifest, loads
from .pack import part_name
from .runtime import short
from .stores import PartRef, Store, is_drive, open_destination, redact
from .stores.local import LocalStore

MAX_PRESIGN = 7 * 24 * 3600
"""The longest a presigned URL lasts: S3 (SigV4) and GCS (V4) sign for a week at most."""


@dataclass
class PushResult:
    name: str
    version: str
    digest: str
    platform: str = "any"
    locations: list[str] = field(default_factory=list)
    uploaded_parts: int = 0
    reused_parts: int = 0
    uploaded_bytes: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"pushed {self.name} {self.version} for {'any runtime' if self.platform == 'any' else self.platform} ({self.digest[:19]}): {self.uploaded_parts} part(s) uploaded "
            f"({self.uploaded_bytes / 2**20:.1f} MiB), {self.reused_parts} already there, in {self.seconds:.1f} s\n"
            + "\n".join(f"  {redact(loc)}" for loc in self.locations)  # a presigned URL's signature is a secret
        )


def _pack_folder(pack: str | Path) -> Path:
    path = Path(pack)
    return path.parent if path.name == MANIFEST_NAME else path


def variant_folder(manifest: Manifest) -> str:
    """The folder a destination keeps this pack in: NAME, or NAME@PLATFORM for a pack built for one."""
    if recorded(manifest.platform) is None:
        return manifest.name
    return f"{manifest.name}@{re.sub(r'[^A-Za-z0-9._+-]+', '-', short(manifest.platform))}"


def shares_parts(manifest: Manifest) -> bool:
    """Whether every part is named by its sha256, so it can sit in a folder shared with other packs."""
    return all(part.name == part_name(part.sha256) for part in manifest.parts)


@dataclass(frozen=True)
class _File:
    """A file named by its content, as a store writes a part (a manifest in a shared folder)."""

    name: str
    size: int
    sha256: str


def in_shared_folder(store: Store, ref: PartRef) -> bool:
    """Whether the shared folder holds `ref` whole (Store.holds: each store checks what it can); a
    file that is not there, or that the store will not show, is not."""
    try:
        return store.holds(ref)
    except (StoreNotFound, StoreAuthError):  # S3 answers 403 for a missing key to whoever may not list the bucket
        return False


def check_parts(folder: Path, manifest: Manifest) -> None:
    """Refuse to push a pack whose local parts are missing or damaged."""
    source = LocalStore(folder)
    for part in manifest.parts:
        if source.has_part(part):
            continue
        path = folder / part.name
        if not path.is_file():
            msg = f"{path} is missing; the pack folder is incomplete: pack it again"
            raise UsageError(msg)
        msg = f"{path} does not match its manifest (size or sha256); pack it again before pushing"
        raise IntegrityError(msg)


def push(packs: Sequence[str | Path], dests: Sequence[str], lock_path: Path | None = None, *, public: bool = False,
         presign: int | None = None, credentials: object | None = None,
         on_bytes: Callable[[int], None] | None = None) -> list[PushResult]:
    """Push each pack folder to every destination; returns one result per pack.

    `public` shares each pack's Drive folder as "anyone with the link" so that restores need no
    credentials (an object store's prefix is made public on the bucket; then the lock names its
    https URL). `presign` (seconds, at most a week) pins presigned https URLs of an S3 or GCS
    destination instead: the manifest's in the lock, each part's query in the manifest, so the
    lock restores with no SDK and no credentials until they expire.
    `credentials` overrides PREBAKE_GDRIVE_CREDENTIALS for Drive destinations.
    Locations go into the lock in the order of `dests` (restores try them in that order).
    """
    if not dests:
        msg = "push needs at least one --to destination (gdrive://FOLDER_ID, a folder, or an fsspec URL)"
        raise UsageError(msg)
    if presign is not None and not 1 <= presign <= MAX_PRESIGN:
        msg = f"--presign {presign} s: presigned URLs last 1 s to 7 days ({MAX_PRESIGN} s), the most S3 and GCS sign for"
        raise UsageError(msg)
    if presign is not None and public:
        msg = "--public and --presign both say how readers get in: choose one (a public prefix needs no signatures)"
        raise UsageError(msg)
    results: list[PushResult] = []
    pinned: list[LockedPack] = []
    for pack in packs:
        started = time.perf_counter()
        folder = _pack_folder(pack)
        local_path = folder / MANIFEST_NAME
        try:
            local_bytes = local_path.read_bytes()
        except OSError as e:
            msg = f"cannot read {local_path} ({e.strerror}); pass a pack folder made by `prebake pack` or `prebake build`"
            raise UsageError(msg) from e
        manifest = loads(local_bytes, str(local_path))
        check_parts(folder, manifest)
        result = PushResult(manifest.name, manifest.version, "", short(manifest.platform))
        shared = [shares_parts(manifest) and not is_drive(dest) for dest in dests]
        with contextlib.ExitStack() as stack:
            # Every destination is opened (and a read-only one refused) before anything is uploaded.
            stores = [stack.enter_context(open_destination(dest, SHARED_FOLDER if share else variant_folder(manifest),
                                                           credentials=credentials, public=public, presign=presign))
                      for dest, share in zip(dests, shared, strict=True)]
            for store, share in zip(stores, shared, strict=True):
                for part in manifest.parts:
                    if in_shared_folder(store, part) if share else store.has_part(part):
                        result.reused_parts += 1
                        continue
                    store.put_part(part, folder / part.name, on_bytes)
                    result.uploaded_parts += 1
                    result.uploaded_bytes += part.size
                for key, ids in {**store.part_ids(), **store.signed_ids([part.name for part in manifest.parts])}.items():
                    manifest = manifest.with_store_ids(key, ids)
            data = manifest.dumps()
            if data != local_bytes:
                atomic_write(local_path, data)  # the Drive ids, so later pushes produce the same digest
            result.locations = [_put_manifest(store, data, local_path) if share else store.put_manifest(data)
                                for store, share in zip(stores, shared, strict=True)]
        result.digest = manifest.digest
        result.seconds = time.perf_counter() - started
        results.append(result)
        pinned.append(LockedPack.pinning(manifest, result.digest, tuple(result.locations)))

    if lock_path is not None:
        write_lock(lock_path, pinned)
    return results


def _put_manifest(store: Store, data: bytes, local_path: Path) -> str:
    """Put a manifest into a shared folder under its digest, from the local file holding `data`
    (written like a part: it is named by its content); returns the folder, which a lock pins with
    the digest. A manifest already there (proven as a part is: in_shared_folder) is left as it is."""
    sha256 = hashlib.sha256(data).hexdigest()
    manifest = _File(manifest_file(sha256), len(data), sha256)
    if not in_shared_folder(store, manifest):
        store.put_part(manifest, local_path)
    # A store that can pin something else (an object store's public https URL, checked by reading
    # the manifest through it) says so; older stores pin their own URL.
    lock_location = getattr(store, "lock_location", None)
    return lock_location(manifest.name) if lock_location is not None else store.url
