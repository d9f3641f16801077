"""A pack folder on a local or mounted filesystem (including a mounted Google Drive).

Reads stop at the size asked for, so a part that is a link to /dev/zero (or a file that keeps
growing) cannot make a restore read forever."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..errors import StoreError, StoreNotFound
from . import CHUNK, Store, within


class LocalStore(Store):
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

    def put(self, name: str, source: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._path(f".{name}.uploading")
        shutil.copyfile(source, tmp)
        tmp.replace(self._path(name))

    def exists(self, name: str) -> bool:
        return self._path(name).exists()
