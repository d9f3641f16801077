"""A pack folder served over HTTP(S): plain GETs, Range to resume and to split large parts.

requests' urllib3 Retry handles refused connections, 429 and 5xx with backoff; a body cut short
raises TransientStoreError so the restore resumes with Range where it stopped. A server that
ignores Range is handled by skipping the bytes already had.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import StoreAuthError, StoreError, StoreNotFound, TransientStoreError
from . import Store
from ._ranges import SEGMENT, ordered_ranges, range_header, ranged_body

TIMEOUT = (10, 60)


class Sessions:
    """One pooled, retrying session per thread (requests sessions are not thread-safe), all
    closed together."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()

    def get(self) -> requests.Session:
        existing = getattr(self._local, "session", None)
        if existing is None:
            existing = self._local.session = retrying_session()
            with self._lock:
                self._all.append(existing)
        return existing

    def close(self) -> None:
        with self._lock:
            for each in self._all:
                each.close()
            self._all.clear()
        self._local = threading.local()


def retrying_session() -> requests.Session:
    retry = Retry(
        total=5,
        connect=2,
        backoff_factor=0.25,
        backoff_max=4,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=("GET", "HEAD"),
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    new = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=8)
    new.mount("http://", adapter)
    new.mount("https://", adapter)
    return new


def check_response(response: requests.Response, what: str) -> None:
    """Turn an HTTP refusal into the StoreError that says what to do."""
    code = response.status_code
    if code in (200, 206):
        if response.headers.get("Content-Type", "").startswith("text/html"):
            msg = f"{what}: the server sent an HTML page instead of the file; the link needs a login or is not a direct download link"
            raise StoreError(msg)
        return
    if code == 404:
        msg = f"{what}: not found (HTTP 404); check the URL and that the pack was pushed there"
        raise StoreNotFound(msg)
    if code in (401, 403):
        msg = f"{what}: access refused (HTTP {code}); make the file public or pass credentials"
        raise StoreAuthError(msg)
    if code == 429 or code >= 500:
        msg = f"{what}: the server keeps failing (HTTP {code}) after retries; try again later or use another location"
        raise TransientStoreError(msg)
    msg = f"{what}: unexpected HTTP {code}"
    raise StoreError(msg)


def _get(session: requests.Session, url: str, offset: int, end: int | None) -> requests.Response:
    try:
        response = session.get(url, headers=range_header(offset, end), stream=True, timeout=TIMEOUT)
    except requests.RequestException as e:
        msg = f"{url}: cannot connect ({type(e).__name__}); check the network and the URL"
        raise TransientStoreError(msg) from e
    try:
        check_response(response, url)
    except BaseException:
        response.close()
        raise
    return response


def stream_range(session: requests.Session, url: str, offset: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Bytes [offset, end) of `url`."""
    return ranged_body(_get(session, url, offset, end), offset, end, url)


class HttpStore(Store):
    def __init__(self, url: str, parallel_ranges: int = 1) -> None:
        self.url = url.rstrip("/")
        self.parallel_ranges = parallel_ranges
        self.sessions = Sessions()

    def close(self) -> None:
        self.sessions.close()

    def _file_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def read_bytes(self, name: str) -> bytes:
        return b"".join(stream_range(self.sessions.get(), self._file_url(name)))

    def exists(self, name: str) -> bool:
        try:
            response = self.sessions.get().head(self._file_url(name), timeout=TIMEOUT, allow_redirects=True)
        except requests.RequestException as e:
            msg = f"{self._file_url(name)}: cannot connect ({type(e).__name__})"
            raise TransientStoreError(msg) from e
        return response.status_code == 200

    def open_read(self, name: str, offset: int = 0, size: int | None = None,
                  ids: Mapping[str, str] | None = None) -> Iterator[bytes]:
        url = self._file_url(name)
        if size is None or self.parallel_ranges < 2 or size - offset < 2 * SEGMENT:
            yield from stream_range(self.sessions.get(), url, offset)
            return
        sessions = self.sessions
        yield from ordered_ranges(lambda s, e: stream_range(sessions.get(), url, s, e), offset, size, self.parallel_ranges)
