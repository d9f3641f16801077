"""A pack folder on a local or mounted filesystem (including a mounted Google Drive).

Reads stop at the size asked for, so a part that is a link to /dev/zero (or a file that keeps
growing) cannot make a restore read forever."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from .._fs import atomic_write
from ..errors import StoreError, StoreNotFound
from . import CHUNK, MANIFEST, PartRef, Store, within


def file_sha256(path: Path) -> str:
    """A file's sha256, read in chunks (parts are hundreds of MiB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * CHUNK):
            h.update(chunk)
    return h.hexdigest()


class LocalStore(Store):
    writable = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder.absolute()
        self.url = str(self.folder)

    def _path(self, name: str) -> Path:
        return self.folder / name

    def read_bytes(self, name: str, *, limit: int | None = None) -> bytes:
        try:
            with open(self._path(name), "rb") as f:
                return within(f.read(-1 if limit is None else limit + 1), limit, str(self._path(name)))
        except FileNotFoundError as e:
            msg = f"{self._path(name)} does not exist; check the path of the pack folder"
            raise StoreNotFound(msg) from e
        except OSError as e:
            msg = f"cannot read {self._path(name)}: {e.strerror}"
            raise StoreError(msg) from e

    def open_read(self, name: str, offset: int = 0, size: int | None = None,
                  ids: Mapping[str, str] | None = None) -> Iterator[bytes]:
        try:
            f = open(self._path(name), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError as e:
            msg = f"{self._path(name)} is missing from the pack folder; copy the whole folder again"
            raise StoreNotFound(msg) from e
        with f:
            f.seek(offset)
            left = None if size is None else size - offset
            while left != 0 and (chunk := f.read(CHUNK if left is None else min(CHUNK, left))):
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def has_part(self, part: PartRef) -> bool:
        """Hashed exactly: a local read is cheap, and a part left by an older pack (part-NNN) has the
        same name."""
        path = self._path(part.name)
        return path.is_file() and path.stat().st_size == part.size and file_sha256(path) == part.sha256

    def holds(self, ref: PartRef) -> bool:
        return self.has_part(ref)

    def put_part(self, part: PartRef, source: Path, on_bytes: Callable[[int], None] | None = None) -> None:
        """Copied beside its final name and renamed, so a copy cut short is never taken for the part.
        The copy's name is this push's own: two pushes into one shared folder may put the same part."""
        tmp = self._path(f".{part.name}.{os.getpid()}-{threading.get_ident()}.uploading")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp)
            tmp.replace(self._path(part.name))
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise self._write_error(part.name, e) from e
        if on_bytes:
            on_bytes(part.size)

    def put_manifest(self, data: bytes) -> str:
        try:
            atomic_write(self._path(MANIFEST), data)
        except OSError as e:
            raise self._write_error(MANIFEST, e) from e
        return str(self.folder)

    def _write_error(self, name: str, e: OSError) -> StoreError:
        return StoreError(f"cannot write {self._path(name)}: {e.strerror}; check the folder's permissions and free space")

    def exists(self, name: str) -> bool:
        return self._path(name).exists()
