"""Where packs live. A store reads the files of one pack folder; push writes them.

`open_store(url)` picks the backend by scheme and imports it lazily, so restoring from a local
folder or an HTTP server never imports a cloud client: gdrive:// and Drive links go to
stores.gdrive, http(s) to stores.http, other schemes (s3://, gs://, memory://, ...) to stores.fsspec.
`open_destination(dest, pack)` is the same choice for push, which writes through three methods every
writable store has (has_part, put_part, put_manifest), so push is one loop whatever the store.
"""

from __future__ import annotations

import re
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

from ..errors import StoreError, TransientStoreError, UsageError

CHUNK = 1024 * 1024
MANIFEST = "manifest.json"

RESUMED = "the restore resumes parts where they stopped; if this persists, check the network or use another location"
"""What to do about a broken part transfer: the caller (restore's read_part) resumes it with Range."""
RETRY = "check the network and run the same command again, or use another location"
"""What to do about a broken whole-file read (manifest, lock): nothing resumes it."""

_PUBLIC_QUERY = frozenset({"id", "export", "alt", "resourcekey"})


def _is_web(location: str) -> bool:
    return location[:8].lower().startswith(("http://", "https://"))


def _split_object_url(location: str) -> tuple[str, str]:
    """(SCHEME://NETLOC, /PATH) of a URL that is not http(s): everything after the bucket (or host)
    is the path. `?` and `#` are legal in S3 and GCS keys, so such a URL has no query or fragment."""
    scheme, _, rest = location.partition("://")
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc}", slash + path


def redact(url: str) -> str:
    """`url` safe to print: userinfo becomes `***@` and, in an http(s) URL, every query value
    `***`, except the harmless Drive addressing (id, export, alt, resourcekey); a signed URL's token
    is a secret. Other URLs (s3://, gs://, ...) have no query: their path is printed as it is."""
    if "://" not in url:
        return url
    if not _is_web(url):
        head, path = _split_object_url(url)
        scheme, _, netloc = head.partition("://")
        return f"{scheme}://***@{netloc.rpartition('@')[2]}{path}" if "@" in netloc else url
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
    """The path of a URL (of an http(s) URL without its query; of an s3://, gs://, ... URL all
    after the bucket, `?` and `#` included), or a local path as it is."""
    if "://" not in location:
        return location
    return urllib.parse.urlsplit(location).path if _is_web(location) else _split_object_url(location)[1]


def with_path(location: str, path: str) -> str:
    """`location` (a URL or a local path) with its path replaced; an http(s) URL's query (a signed
    URL's token) stays."""
    if "://" not in location:
        return path
    if _is_web(location):
        return urllib.parse.urlunsplit(urllib.parse.urlsplit(location)._replace(path=path))
    return _split_object_url(location)[0] + ("/" if path and not path.startswith("/") else "") + path


SIGNED = "signed:"
"""The store_ids key prefix of presigned queries: `signed:<https folder URL>` (see signed_key)."""


def signed_key(folder: str) -> str:
    """The store_ids key under which a manifest records, for each part, the query that presigns it
    in the https folder `folder` (push --presign). An object store signs each object's own path,
    so a presigned manifest's query opens no part: the HTTP store reading that folder adds each
    part's own query to the part's URL, and only the query, so a manifest cannot send it to
    another host or object."""
    parts = urllib.parse.urlsplit(folder)
    return SIGNED + urllib.parse.urlunsplit(parts._replace(query="", fragment="")).rstrip("/")


def join_url(base: str, name: str) -> str:
    """`name` inside the folder `base` names: appended to its path, so an http(s) URL's query stays
    after it instead of swallowing the name (in an s3:// or gs:// URL `?` and `#` are part of the key)."""
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


class PartRef(Protocol):
    """What a store needs to know of a part to write it (manifest.Part has it; stores do not
    import the manifest module)."""

    name: str
    size: int
    sha256: str


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

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether `name` is in the folder."""

    def close(self) -> None:
        """Release connections; a store is also a context manager that closes itself."""
        return

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self, name: str) -> str:
        """Where `name` is, fit for messages (credentials redacted)."""
        return redact(join_url(self.url, name))

    # ------------------------------------------------ writing (push); read-only unless a backend can

    writable: bool = False
    """Whether push can write here; open_destination refuses a store that cannot before anything
    is uploaded anywhere."""

    def has_part(self, part: PartRef) -> bool:
        """Whether the part is already here, with its size (and its sha256, where the store can
        tell without downloading it), so push need not upload it again."""
        raise self.read_only()

    def holds(self, ref: PartRef) -> bool:
        """Whether `ref` is here whole, in a folder where files are named by their sha256 (push's
        shared folder), which has no manifest for has_part to look a part up in. A file of that name
        with its size is taken for it (a store writes a file whole or not at all), asked as its last
        byte and the one after (a ranged read of at most 2 bytes); stores that can tell the bytes
        (a local folder, S3 and GCS) check them, since a file of that name may hold others (bit
        rot, a botched copy, another tool) that every restore would refuse and no push replace."""
        if ref.size == 0:
            return self.exists(ref.name)
        return len(b"".join(self.open_read(ref.name, ref.size - 1, ref.size + 1))) == 1

    def put_part(self, part: PartRef, source: Path, on_bytes: Callable[[int], None] | None = None) -> None:
        """Upload the part from the local file `source`, reporting bytes sent to `on_bytes`."""
        raise self.read_only()

    def put_manifest(self, data: bytes) -> str:
        """Write the manifest (after every part it names); returns the location a lock pins."""
        raise self.read_only()

    public: bool = False
    """push --public: a store that can name an https URL anyone may read pins that in the lock
    (lock_location); set by open_destination."""
    presign: int | None = None
    """push --presign: seconds the presigned URLs a store pins (S3, GCS) stay valid; set by
    open_destination."""

    def check_destination(self) -> None:
        """Refuse, before push uploads anything anywhere, a destination that cannot take it (a
        bucket that does not exist: push never creates one). Nothing to check by default."""
        return

    def lock_location(self, name: str) -> str:
        """What a lock pins for this folder once `name` (the manifest) is written into it."""
        return self.url

    def public_url(self, name: str = "", *, expires: int | None = None) -> str | None:
        """An http(s) URL of `name` (of the folder when empty) that needs no SDK or credentials, or
        with `expires` (seconds) a presigned one, where the store can make it (S3, GCS); else None."""
        return None

    def part_ids(self) -> dict[str, dict[str, str]]:
        """{store_ids key: {part name: file id}} for the parts has_part found or put_part wrote, for
        a store that addresses files by id (push records them in the manifest); empty otherwise."""
        return {}

    def signed_ids(self, names: list[str]) -> dict[str, dict[str, str]]:
        """With push --presign, {signed_key(folder): {name: the query that signs it}} for the files
        `names` (push records them in the manifest, as it does Drive's ids); empty otherwise."""
        return {}

    def read_only(self) -> UsageError:
        """The refusal to write here, with what to push to instead."""
        msg = (f"{redact(self.url)} is read-only for prebake: push to gdrive://FOLDER_ID, a folder or an fsspec URL "
               "(s3://..., gs://...), and serve that over http(s) to restore from it")
        return UsageError(msg)


PRESIGNABLE = ("s3://", "s3a://", "gs://", "gcs://")
"""The destinations push --presign accepts: the object stores that sign URLs."""
_DRIVE_PREFIXES = ("gdrive://", "https://drive.google.com/", "https://drive.usercontent.google.com/", "https://docs.google.com/")


def is_drive(location: str) -> bool:
    """Whether `location` is gdrive://ID or a Google Drive link (drive, docs or
    drive.usercontent .google.com), which go to the Drive store for reading and for push."""
    return location.startswith(_DRIVE_PREFIXES)


def parse_drive(location: str) -> tuple[str, bool]:
    """(file or folder id, whether the link names a folder) for a location `is_drive` accepts."""
    if location.startswith("gdrive://"):
        file_id = location[len("gdrive://") :].strip("/").split("/")[0].split("?")[0]
        if not file_id:
            msg = f"{redact(location)!r} has no Drive id; write gdrive://FOLDER_ID or gdrive://FILE_ID"
            raise UsageError(msg)
        return file_id, False
    parts = urllib.parse.urlsplit(location)
    m = re.search(r"/drive/(?:u/\d+/)?folders/([-\w]+)", parts.path)
    if m:
        return m[1], True
    # Files are named in the path (/file/d/ID/view) or the query (open?id=, uc?id=, download?id=,
    # folderview?id=); read here rather than with gdown's parse_url, which imports all of gdown (150 ms).
    m = re.search(r"/d/([-\w]{10,})", parts.path)
    file_id = m[1] if m else (urllib.parse.parse_qs(parts.query).get("id") or [None])[0]
    if not file_id:
        msg = (f"cannot find a Drive file or folder id in {redact(location)!r}; pass a share link like "
               "https://drive.google.com/file/d/ID/view, https://drive.google.com/drive/folders/ID or gdrive://ID")
        raise UsageError(msg)
    return file_id, parts.path.rstrip("/").endswith("/folderview")


def open_store(url: str | Path) -> Store:
    text = str(url)
    if is_drive(text):
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


def open_destination(dest: str, pack: str, *, credentials: object | None = None, public: bool = False,
                     presign: int | None = None) -> Store:
    """The store push writes pack `pack` to: its own folder inside `dest` (made if missing; a bucket
    never is). `credentials` are Drive's; `public` shares a Drive folder as "anyone with the link",
    and makes an object store's lock_location its https URL (who may read is set on the bucket);
    `presign` (seconds) makes it a presigned https URL (S3 and GCS only)."""
    if presign is not None and not dest.lower().startswith(PRESIGNABLE):
        msg = (f"--presign: {redact(dest)} is not an s3:// or gs:// URL, and only S3 and GCS presign URLs; "
               "push there, or use --public (Drive: anyone with the link)")
        raise UsageError(msg)
    if is_drive(dest):
        from .gdrive import GDriveStore

        return GDriveStore.for_push(dest, pack, credentials, public=public)
    store = open_store(join_url(dest, pack))
    try:
        if not store.writable:
            raise store.read_only()
        store.public, store.presign = public, presign
        store.check_destination()
    except BaseException:
        store.close()
        raise
    return store
