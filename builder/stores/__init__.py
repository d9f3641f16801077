"""Where packs live. A store reads and writes named files of one pack folder.

`open_store(url)` picks the backend by scheme and imports it lazily, so restoring from a local
folder or an HTTP server never imports a cloud client: gdrive:// and Drive links go to
stores.gdrive, http(s) to stores.http, other schemes (s3://, gs://, memory://, ...) to stores.fsspec.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..errors import UsageError

CHUNK = 1024 * 1024


class Store(ABC):
    """One pack folder somewhere. Backends map their library's errors to StoreError subclasses;
    a stream cut short raises TransientStoreError so the caller can resume at its offset."""

    url: str
    parallel_ranges: int = 1
    """How many ranged requests a backend that can split one file may run at once."""
    reopenable: bool = True
    """Whether another process opening the same URL sees the same files (not memory://)."""

    @abstractmethod
    def read_bytes(self, name: str) -> bytes:
        """A small file (the manifest) whole."""

    @abstractmethod
    def open_read(self, name: str, offset: int = 0, size: int | None = None,
                  ids: Mapping[str, str] | None = None) -> Iterator[bytes]:
        """The bytes of `name` from `offset` on, in chunks; `size` is the file's full size if known;
        `ids` is the part's `store_ids` from the manifest (stores that address files by id use it)."""

    def put(self, name: str, source: Path) -> None:
        msg = f"{self.url} is read-only for prebake; push to a local folder or a supported store"
        raise UsageError(msg)

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether `name` is in the folder."""

    def close(self) -> None:
        """Release connections; a store is also a context manager that closes itself."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{name}"


_DRIVE_HOSTS = ("https://drive.google.com/", "https://drive.usercontent.google.com/", "https://docs.google.com/")


def open_store(url: str | Path) -> Store:
    text = str(url)
    if text.startswith(("gdrive://", *_DRIVE_HOSTS)):
        from .gdrive import GDriveStore

        return GDriveStore.from_url(text)
    if text.startswith(("http://", "https://")):
        from .http import HttpStore

        return HttpStore(text)
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        from .fsspec import FsspecStore

        return FsspecStore(text)
    from .local import LocalStore

    return LocalStore(Path(text))
