"""Where packs live. A store reads and writes named files of one pack folder.

`open_store(url)` picks the backend by scheme and imports it lazily, so restoring from a local
folder or an HTTP server never imports a cloud client.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from ..errors import UsageError

CHUNK = 1024 * 1024


class Store(ABC):
    """One pack folder somewhere. Backends map their library's errors to StoreError subclasses;
    a stream cut short raises TransientStoreError so the caller can resume at its offset."""

    url: str

    @abstractmethod
    def read_bytes(self, name: str) -> bytes:
        """A small file (the manifest) whole."""

    @abstractmethod
    def open_read(self, name: str, offset: int = 0, size: int | None = None) -> Iterator[bytes]:
        """The bytes of `name` from `offset` on, in chunks; `size` is the file's full size if known."""

    def put(self, name: str, source: Path) -> None:
        msg = f"{self.url} is read-only for prebake; push to a local folder or a supported store"
        raise UsageError(msg)

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether `name` is in the folder."""

    def describe(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{name}"


def open_store(url: str | Path) -> Store:
    text = str(url)
    if text.startswith(("http://", "https://")):
        from .http import HttpStore

        return HttpStore(text)
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        msg = f"unsupported store {scheme}:// in {text!r}; use a local folder or an http(s) URL"
        raise UsageError(msg)
    from .local import LocalStore

    return LocalStore(Path(text))
