"""Push packs to stores: parts first (content-addressed), then the manifest, then the lock.

    push(["out/hello"], ["gdrive://FOLDER", "/mnt/mirror", "s3://bucket/packs"], lock_path=Path("prebake.lock"))

Each destination holds one folder per pack variant: NAME for a pack without a platform, and
NAME@PLATFORM (runtime.short, like opensmile@ubuntu22.04-x86_64-py3.12-glibc2.35) for one built
for a runtime, so that the variants of a name sit side by side. Each is written through the same
three store methods: a part the store already has (has_part: same size, and sha256 where the store
can tell) is not uploaded again, the others go up with put_part, and put_manifest comes last, so a
push cut short never leaves a manifest that names parts which are not there. Stores that address
files by id (Drive) hand back the part ids (part_ids), which the manifest records so restores need
no folder listing and no credentials; the manifest with those ids is what every destination of this
push receives, so they all carry the same digest, and it is written back to the local pack folder so
later pushes agree with it. Last, the lock is merged (lock.write_lock): one entry per name and
platform, so pushing a variant for another runtime adds it and pushing the same platform replaces it.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._fs import atomic_write
from .errors import IntegrityError, UsageError
from .lock import LockedPack, recorded, write_lock
from .manifest import MANIFEST_NAME, Manifest, loads
from .runtime import short
from .stores import open_destination
from .stores.local import LocalStore


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
            + "\n".join(f"  {loc}" for loc in self.locations)
        )


def _pack_folder(pack: str | Path) -> Path:
    path = Path(pack)
    return path.parent if path.name == MANIFEST_NAME else path


def variant_folder(manifest: Manifest) -> str:
    """The folder a destination keeps this pack in: NAME, or NAME@PLATFORM for a pack built for one."""
    if recorded(manifest.platform) is None:
        return manifest.name
    return f"{manifest.name}@{re.sub(r'[^A-Za-z0-9._+-]+', '-', short(manifest.platform))}"


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
         credentials: object | None = None, on_bytes: Callable[[int], None] | None = None) -> list[PushResult]:
    """Push each pack folder to every destination; returns one result per pack.

    `public` shares each pack's Drive folder as "anyone with the link" so that restores need no
    credentials. `credentials` overrides PREBAKE_GDRIVE_CREDENTIALS for Drive destinations.
    Locations go into the lock in the order of `dests` (restores try them in that order).
    """
    if not dests:
        msg = "push needs at least one --to destination (gdrive://FOLDER_ID, a folder, or an fsspec URL)"
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
        with contextlib.ExitStack() as stack:
            # Every destination is opened (and a read-only one refused) before anything is uploaded.
            stores = [stack.enter_context(open_destination(dest, variant_folder(manifest), credentials=credentials, public=public))
                      for dest in dests]
            for store in stores:
                for part in manifest.parts:
                    if store.has_part(part):
                        result.reused_parts += 1
                        continue
                    store.put_part(part, folder / part.name, on_bytes)
                    result.uploaded_parts += 1
                    result.uploaded_bytes += part.size
                for key, ids in store.part_ids().items():
                    manifest = manifest.with_store_ids(key, ids)
            data = manifest.dumps()
            result.locations = [store.put_manifest(data) for store in stores]
        result.digest = manifest.digest
        if data != local_bytes:
            atomic_write(local_path, data)  # the Drive ids, so later pushes produce the same digest
        result.seconds = time.perf_counter() - started
        results.append(result)
        pinned.append(LockedPack.pinning(manifest, result.digest, tuple(result.locations)))

    if lock_path is not None:
        write_lock(lock_path, pinned)
    return results
