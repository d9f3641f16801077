"""Push packs to stores: parts first (content-addressed), then the manifest, then the lock.

    push(["out/hello"], ["gdrive://FOLDER", "/mnt/mirror", "s3://bucket/packs"], lock_path=Path("prebake.lock"))

Each destination holds one folder per pack, named after the pack. Drive destinations go first:
a part whose sha256 is already in the pack's Drive folder (recorded in the file's appProperties)
is not uploaded again, uploads are resumable, and each part's Drive file id is recorded in the
manifest (`store_ids["gdrive:<folder>"]`) so restores need no folder listing and no credentials.
The manifest with those ids is what every destination of this push receives, so they all carry the
same digest, and it is written back to the local pack folder so later pushes agree with it.
Name-addressed stores (folders, fsspec URLs) skip a part when the manifest already there lists it
with the same sha256 and the file is present with the right size.
Only then is the manifest uploaded, and last the lock is written or merged: a push cut short never
leaves a manifest that names parts which are not there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import lock as lockfile
from ._fs import atomic_write
from .errors import IntegrityError, StoreError, StoreNotFound, UsageError
from .manifest import MANIFEST_NAME, Manifest, Part, loads
from .stores import Store, open_store

log = logging.getLogger(__name__)

_DRIVE_PREFIXES = ("gdrive://", "https://drive.google.com/")


@dataclass
class PushResult:
    name: str
    version: str
    digest: str
    locations: list[str] = field(default_factory=list)
    uploaded_parts: int = 0
    reused_parts: int = 0
    uploaded_bytes: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"pushed {self.name} {self.version} ({self.digest[:19]}): {self.uploaded_parts} part(s) uploaded "
            f"({self.uploaded_bytes / 2**20:.1f} MiB), {self.reused_parts} already there, in {self.seconds:.1f} s\n"
            + "\n".join(f"  {loc}" for loc in self.locations)
        )


def is_drive(dest: str) -> bool:
    return dest.startswith(_DRIVE_PREFIXES)


def _pack_folder(pack: str | Path) -> Path:
    path = Path(pack)
    return path.parent if path.name == MANIFEST_NAME else path


def check_parts(folder: Path, manifest: Manifest) -> None:
    """Refuse to push a pack whose local parts are missing or damaged."""
    for part in manifest.parts:
        path = folder / part.name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            msg = f"{path} is missing; the pack folder is incomplete: pack it again"
            raise UsageError(msg) from None
        if size != part.size or _sha256(path) != part.sha256:
            msg = f"{path} does not match its manifest (size or sha256); pack it again before pushing"
            raise IntegrityError(msg)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def _location(dest_folder: str, lock_path: Path | None) -> str:
    if "://" in dest_folder:
        return dest_folder
    folder = Path(dest_folder).resolve()
    if lock_path is not None:
        base = lock_path.resolve().parent
        if folder.is_relative_to(base):
            return os.path.relpath(folder, base)
    return str(folder)


def _sub(dest: str, name: str) -> str:
    if dest.startswith("file://"):
        dest = dest[len("file://") :]
    return f"{dest.rstrip('/')}/{name}"


# ---------------------------------------------------------------- name-addressed stores


def _remote_manifest(store: Store) -> Manifest | None:
    try:
        return loads(store.read_bytes(MANIFEST_NAME), store.describe(MANIFEST_NAME))
    except StoreNotFound:
        return None
    except (StoreError, IntegrityError, UsageError) as e:
        log.warning("%s; uploading every part again", e)
        return None


def _already_there(store: Store, part: Part, remote: Manifest | None) -> bool:
    from .stores.local import LocalStore

    if isinstance(store, LocalStore):  # cheap to check exactly
        path = store.folder / part.name
        return path.is_file() and path.stat().st_size == part.size and _sha256(path) == part.sha256
    listed = {p.name: p for p in remote.parts} if remote else {}
    old = listed.get(part.name)
    if old is None or old.sha256 != part.sha256 or old.size != part.size or not store.exists(part.name):
        return False
    size = getattr(store, "size", None)
    return size is None or size(part.name) == part.size


def _push_named(store: Store, folder: Path, manifest: Manifest, data: bytes, result: PushResult,
                on_bytes: Callable[[int], None]) -> None:
    remote = _remote_manifest(store)
    for part in manifest.parts:
        if _already_there(store, part, remote):
            result.reused_parts += 1
            continue
        store.put(part.name, folder / part.name)
        result.uploaded_parts += 1
        result.uploaded_bytes += part.size
        on_bytes(part.size)
    with tempfile.TemporaryDirectory(prefix="prebake-push-") as tmp:
        staged = Path(tmp) / MANIFEST_NAME
        staged.write_bytes(data)
        store.put(MANIFEST_NAME, staged)


# ---------------------------------------------------------------- the one call


def push(packs: Sequence[str | Path], dests: Sequence[str], lock_path: Path | None = None, *, public: bool = False,
         credentials: object | None = None, on_bytes: Callable[[int], None] | None = None) -> list[PushResult]:
    """Push each pack folder to every destination; returns one result per pack.

    `public` shares each pack's Drive folder as "anyone with the link" so that restores need no
    credentials. `credentials` overrides PREBAKE_GDRIVE_CREDENTIALS for Drive destinations.
    """
    if not dests:
        msg = "push needs at least one --to destination (gdrive://FOLDER_ID, a folder, or an fsspec URL)"
        raise UsageError(msg)
    on_bytes = on_bytes or (lambda n: None)
    results: list[PushResult] = []
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
        result = PushResult(manifest.name, manifest.version, "")

        drive_stores = []
        for dest in (d for d in dests if is_drive(d)):
            from .stores.gdrive import GDriveStore

            store = GDriveStore.for_push(dest, manifest.name, credentials)
            if public:
                store.share_public()
            ids = {}
            for part in manifest.parts:
                ids[part.name], uploaded = store.put_part(part.name, folder / part.name, part.sha256, part.size, on_bytes)
                if uploaded:
                    result.uploaded_parts += 1
                    result.uploaded_bytes += part.size
                else:
                    result.reused_parts += 1
            manifest = manifest.with_store_ids(store.key, ids)
            drive_stores.append(store)

        data = manifest.dumps()
        result.digest = manifest.digest
        for store in drive_stores:
            file_id, _ = store.put_manifest(data, result.digest)
            result.locations.append(f"gdrive://{file_id}")
            store.close()
        for dest in (d for d in dests if not is_drive(d)):
            target = _sub(dest, manifest.name)
            store = open_store(target)
            try:
                _push_named(store, folder, manifest, data, result, on_bytes)
            finally:
                getattr(store, "close", lambda: None)()
            result.locations.append(_location(target, lock_path))
        if data != local_bytes:
            atomic_write(local_path, data)  # the Drive ids, so later pushes produce the same digest
        result.seconds = time.perf_counter() - started
        results.append(result)

    if lock_path is not None:
        new = lockfile.Lock(tuple(lockfile.LockedPack(r.name, r.version, r.digest, tuple(r.locations)) for r in results))
        if lock_path.exists():
            new = lockfile.load(lock_path).merged(new)
        lockfile.dump(new, lock_path)
    return results
