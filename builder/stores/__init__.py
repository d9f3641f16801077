"""Where packs live. A store reads and writes named files of one pack folder.

`open_store(url)` picks the backend by scheme and imports it lazily, so restoring from a local
folder or an HTTP server never imports a cloud client: gdrive:// and Drive links go to
stores.gdrive, http(s) to stores.http, other schemes (s3://, gs://, memory://, ...) to stores.fsspec.
"""

from __future__ import annotations

import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..errors import StoreError, TransientStoreError, UsageError

CHUNK = 1024 * 1024

RESUMED = "the restore resumes parts where they stopped; if this persists, check the network or use another location"
"""What to do about a broken part transfer: the caller (restore's read_part) resumes it with Range."""
RETRY = "check the network and run the same command again, or use another location"
"""What to do about a broken whole-file read (manifest, lock): nothing resumes it."""

_PUBLIC_QUERY = frozenset({"id", "export", "alt", "resourcekey"})


def redact(url: str) -> str:
    """`url` safe to print: userinfo becomes `***@` and every query value `***`, except the
    harmless Drive addressing (id, export, alt, resourcekey); a signed URL's token is a secret."""
    if "://" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    fields = []
    for field in parts.query.split("&") if parts.query else []:
        key, eq, _ = field.partition("=")
        fields.append(field if not eq or key.lower() in _PUBLIC_QUERY else f"{key}=***")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query="&".join(fields)))


def url_path(location: str) -> str:
    """The path of a URL, or a local path as it is ('?' and '#' are just characters there)."""
    return urllib.parse.urlsplit(location).path if "://" in location else location


def with_path(location: str, path: str) -> str:
    """`location` (a URL or a local path) with its path replaced; a URL's query (a signed URL's
    token) stays."""
    if "://" not in location:
        return path
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(location)._replace(path=path))


def join_url(base: str, name: str) -> str:
    """`name` inside the folder `base` names: appended to its path, so a query stays after it
    instead of swallowing the name."""
    return with_path(base, f"{url_path(base).rstrip('/')}/{name}")


def within(data: bytes, limit: int | None, what: str) -> bytes:
    """`data`, unless it is over `limit` (readers stop at limit + 1, so an endless body costs no more)."""
    if limit is not None and len(data) > limit:
        msg = (f"{what} is larger than {limit} bytes, the most prebake reads for this file: it is not a pack "
               "manifest or lock, or its server sends an endless body; check the location")
        raise StoreError(msg)
    return data


class SpeedFloor:
    """curl's --speed-limit/--speed-time for one transfer: fails it when fewer than `rate` bytes/s
    arrived over `seconds`. Only time spent waiting for data counts, so a slow consumer (extraction
    of the previous chunk) never passes for a slow server."""

    def __init__(self, low_speed: tuple[int, float], what: str, advice: str) -> None:
        self.rate, self.seconds = low_speed
        self.what, self.advice = what, advice
        self._got = 0
        self._waited = 0.0

    def passed(self, got: int, waited: float) -> None:
        """Count `got` bytes that took `waited` seconds; raise at the end of a window below the rate."""
        self._got += got
        self._waited += waited
        if self._waited >= self.seconds:
            if self._got < self.rate * self._waited:
                raise self.error()
            self._got, self._waited = 0, 0.0

    def error(self) -> TransientStoreError:
        """The error for a window below the rate, also for a read that timed out after `seconds`."""
        msg = f"{self.what}: slower than {self.rate} bytes/s for {self.seconds:g} s (stalled or throttled); {self.advice}"
        return TransientStoreError(msg)


class Store(ABC):
    """One pack folder somewhere. Backends map their library's errors to StoreError subclasses;
    a stream cut short raises TransientStoreError so the caller can resume at its offset."""

    url: str
    low_speed: tuple[int, float] = (1024, 60.0)
    """A transfer slower than low_speed[0] bytes/s over low_speed[1] seconds fails as transient
    (a stalled or trickling server); the restore sets it per restore."""
    parallel_ranges: int = 1
    """How many ranged requests a backend that can split one file may run at once."""
    reopenable: bool = True
    """Whether another process opening the same URL sees the same files (not memory://)."""

    @abstractmethod
    def read_bytes(self, name: str, *, limit: int | None = None) -> bytes:
        """A small file (manifest, lock) whole; StoreError when it is over `limit` bytes, read no
        further than that, because an endless body would otherwise fill the memory."""

    @abstractmethod
    def open_read(self, name: str, offset: int = 0, size: int | None = None,
                  ids: Mapping[str, str] | None = None) -> Iterator[bytes]:
        """The bytes of `name` from `offset` on, in chunks, never past `size` (the file's full size if
        known: a server that sends more is cut there); `ids` is the part's `store_ids` from the
        manifest (stores that address files by id use it)."""

    def put(self, name: str, source: Path) -> None:
        msg = f"{redact(self.url)} is read-only for prebake; push to a local folder or a supported store"
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
        """Where `name` is, fit for messages (credentials redacted)."""
        return redact(join_url(self.url, name))


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
