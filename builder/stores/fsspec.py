"""A pack folder behind any fsspec URL: s3://, gs://, az://, sftp://, memory://, ...

fsspec and its protocol backends (s3fs, gcsfs, adlfs, ...) are optional: `pip install 'prebake[fsspec]'`
plus the backend for the scheme. Reads are ranged (a seek, then sequential reads), so a restore
resumes a cut transfer at its byte offset; they stop at the size asked for and are held to the
store's low_speed; writes go through `put_file` and `pipe_file`.

Errors: FileNotFoundError -> StoreNotFound; PermissionError -> StoreAuthError; connection and
timeout errors -> TransientStoreError; anything else the backend raises -> StoreError.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import StoreAuthError, StoreError, StoreNotFound, TransientStoreError, UsageError
from . import CHUNK, MANIFEST, RESUMED, RETRY, PartRef, SpeedFloor, Store, redact, within

log = logging.getLogger(__name__)

HINT = "pip install 'prebake[fsspec]'"
MANIFEST_LIMIT = 16 * 2**20  # manifest.MAX_MANIFEST_BYTES (stores do not import the manifest module)


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError as e:
        msg = f"URLs like this need fsspec, which is not installed; run: {HINT} (plus s3fs, gcsfs, ... for the scheme)"
        raise UsageError(msg) from e
    return fsspec


def _mapped(e: BaseException, what: str) -> StoreError:
    if isinstance(e, FileNotFoundError):
        return StoreNotFound(f"{what} does not exist; check the URL and that the pack was pushed there")
    if isinstance(e, PermissionError):
        return StoreAuthError(f"{what}: access refused ({e}); check the credentials the fsspec backend uses")
    if isinstance(e, (ConnectionError, TimeoutError)):
        return TransientStoreError(f"{what}: the connection failed ({type(e).__name__}); retrying may help")
    return StoreError(f"{what}: {type(e).__name__}: {e}")


class FsspecStore(Store):
    writable = True

    def __init__(self, url: str, **storage_options: Any) -> None:
        fsspec = _fsspec()
        self.url = url.rstrip("/")
        self._parts: dict[str, tuple[int, str]] | None = None
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **storage_options)
        except (ImportError, ValueError) as e:
            scheme = url.split("://", 1)[0]
            msg = f"no fsspec backend for {scheme}:// ({e}); install the one for it (s3fs, gcsfs, adlfs, ...) or use a folder or http(s) URL"
            raise UsageError(msg) from e
        except OSError as e:
            raise _mapped(e, redact(self.url)) from e
        self.root = self.root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.reopenable = "memory" not in protocols

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def read_bytes(self, name: str, *, limit: int | None = None) -> bytes:
        data = b"".join(self._chunks(name, 0, None if limit is None else limit + 1, RETRY))
        return within(data, limit, self.describe(name))

    def open_read(self, name: str, offset: int = 0, size: int | None = None,
                  ids: Mapping[str, str] | None = None) -> Iterator[bytes]:
        return self._chunks(name, offset, size, RESUMED)

    def _chunks(self, name: str, offset: int, end: int | None, advice: str) -> Iterator[bytes]:
        """Bytes [offset, end) of `name`, held to low_speed between reads (a backend's read that
        blocks cannot be interrupted from here; its own timeouts end it)."""
        try:
            f = self.fs.open(self._path(name), "rb", block_size=CHUNK)
        except Exception as e:  # every backend has its own errors; mapped here
            raise _mapped(e, self.describe(name)) from e
        floor = SpeedFloor(self.low_speed, self.describe(name), advice)
        with f:
            try:
                f.seek(offset)
                left = None if end is None else end - offset
                while left != 0:
                    started = time.monotonic()
                    chunk = f.read(CHUNK if left is None else min(CHUNK, left))
                    floor.passed(len(chunk), time.monotonic() - started)
                    if not chunk:
                        return
                    if left is not None:
                        left -= len(chunk)
                    yield chunk
            except (ConnectionError, TimeoutError, OSError) as e:
                msg = f"{self.describe(name)}: the transfer broke ({type(e).__name__}); {advice}"
                raise TransientStoreError(msg) from e

    def has_part(self, part: PartRef) -> bool:
        """Listed with its sha256 by the manifest already here, and there with its size: hashing it
        would mean downloading it. Push writes a manifest after its parts, so a listed part was
        uploaded whole; a part of the same name from another build has another sha256."""
        if self._listed().get(part.name) != (part.size, part.sha256):
            return False
        try:
            return int(self.fs.size(self._path(part.name))) == part.size
        except FileNotFoundError:
            return False
        except Exception as e:
            raise _mapped(e, self.describe(part.name)) from e

    def _listed(self) -> dict[str, tuple[int, str]]:
        """{part name: (size, sha256)} from the manifest here; empty when there is none or it is unreadable."""
        if self._parts is None:
            try:
                listed = json.loads(self.read_bytes(MANIFEST, limit=MANIFEST_LIMIT))["parts"]
                self._parts = {p["name"]: (p["size"], p["sha256"]) for p in listed}
            except StoreNotFound:
                self._parts = {}
            except (StoreError, ValueError, KeyError, TypeError) as e:
                log.warning("%s is unreadable (%s); uploading every part again", self.describe(MANIFEST), e)
                self._parts = {}
        return self._parts

    def put_part(self, part: PartRef, source: Path, on_bytes: Callable[[int], None] | None = None) -> None:
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            self.fs.put_file(str(source), self._path(part.name))
        except Exception as e:
            raise _mapped(e, self.describe(part.name)) from e
        if on_bytes:
            on_bytes(part.size)

    def put_manifest(self, data: bytes) -> str:
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            self.fs.pipe_file(self._path(MANIFEST), data)
        except Exception as e:
            raise _mapped(e, self.describe(MANIFEST)) from e
        self._parts = None
        return self.url

    def exists(self, name: str) -> bool:
        try:
            return bool(self.fs.exists(self._path(name)))
        except Exception as e:
            raise _mapped(e, self.describe(name)) from e
