"""A pack folder served over HTTP(S): plain GETs, Range to resume and to split large parts.

requests' urllib3 Retry handles refused connections, 429 and 5xx with backoff; a body cut short,
stalled or slower than the store's low_speed raises TransientStoreError so the restore resumes with
Range where it stopped. A server that ignores Range is handled by skipping the bytes already had;
one that sends more than the file's size (or a read limit) is cut there. URLs may carry a token
(user:pass@, ?token=): names are joined into the path, and messages show them redacted.
"""

from __future__ import annotations

import datetime
import threading
import urllib.parse
from collections.abc import Iterator, Mapping

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import StoreAuthError, StoreError, StoreNotFound, TransientStoreError
from . import RESUMED, RETRY, Store, join_url, redact, signed_key, within
from ._ranges import RangedBody, ordered_ranges, range_header, worth_ranges

CONNECT_TIMEOUT = 10  # seconds; the read timeout is the store's low_speed window


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


def _get(session: requests.Session, url: str, headers: dict[str, str], read_timeout: float) -> requests.Response:
    """The response to a GET, refusals raised; `url` never appears unredacted in a message."""
    try:
        response = session.get(url, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT, read_timeout))
    except requests.RequestException as e:
        msg = f"{redact(url)}: cannot connect ({type(e).__name__}); check the network and the URL"
        raise TransientStoreError(msg) from e
    try:
        check_response(response, redact(url))
    except StoreAuthError as e:
        response.close()
        expired = _expired_at(url)
        if expired is None:
            raise
        msg = (f"{redact(url)}: its presigned URL expired at {expired:%Y-%m-%d %H:%M} UTC (HTTP {response.status_code}); "
               "ask for a lock pushed again with --presign, or for credentials")
        raise StoreAuthError(msg) from e
    except BaseException:
        response.close()
        raise
    return response


def _expired_at(url: str) -> datetime.datetime | None:
    """When a presigned S3 (X-Amz-Date + X-Amz-Expires) or GCS (X-Goog-Date + X-Goog-Expires) URL
    expired, if it has; None for any other URL or one still valid (refused for another reason)."""
    query = {k.lower(): v for k, v in urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)}
    for vendor in ("amz", "goog"):
        try:
            signed = datetime.datetime.strptime(query[f"x-{vendor}-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
            ends = signed + datetime.timedelta(seconds=int(query[f"x-{vendor}-expires"]))
        except (KeyError, ValueError, OverflowError):
            continue
        return ends if ends <= datetime.datetime.now(datetime.timezone.utc) else None
    return None


class HttpStore(Store):
    def __init__(self, url: str, parallel_ranges: int = 1) -> None:
        self.url = url
        self.parallel_ranges = parallel_ranges
        self.sessions = Sessions()

    def close(self) -> None:
        self.sessions.close()

    def _url(self, name: str, ids: Mapping[str, str] | None) -> str:
        """`name` in this folder: with the query that presigns it when the manifest records one for
        this folder (push --presign; see stores.signed_key), else with the folder's own query."""
        url = join_url(self.url, name)
        query = (ids or {}).get(signed_key(self.url))
        if query is None:
            return url
        return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(query=query))

    def _stream(self, name: str, offset: int, end: int | None, advice: str, *, ask_end: bool,
                ids: Mapping[str, str] | None = None) -> Iterator[bytes]:
        """Bytes [offset, end) of `name`; the Range header names `end` only with `ask_end` (a part's
        size or a read limit is a cap on what a server may send, not a change to the request)."""
        url = self._url(name, ids)
        response = _get(self.sessions.get(), url, range_header(offset, end if ask_end else None), self.low_speed[1])
        return RangedBody(response, offset, end, redact(url), self.low_speed, advice)

    def read_bytes(self, name: str, *, limit: int | None = None) -> bytes:
        data = b"".join(self._stream(name, 0, None if limit is None else limit + 1, RETRY, ask_end=False))
        return within(data, limit, self.describe(name))

    def exists(self, name: str) -> bool:
        url = join_url(self.url, name)
        try:
            response = self.sessions.get().head(url, timeout=(CONNECT_TIMEOUT, self.low_speed[1]), allow_redirects=True)
        except requests.RequestException as e:
            msg = f"{redact(url)}: cannot connect ({type(e).__name__}); check the network and the URL"
            raise TransientStoreError(msg) from e
        return response.status_code == 200

    def open_read(self, name: str, offset: int = 0, size: int | None = None,
                  ids: Mapping[str, str] | None = None) -> Iterator[bytes]:
        if not worth_ranges(offset, size, self.parallel_ranges):
            yield from self._stream(name, offset, size, RESUMED, ask_end=False, ids=ids)
            return
        yield from ordered_ranges(lambda s, e: self._stream(name, s, e, RESUMED, ask_end=True, ids=ids), offset, size,
                                  self.parallel_ranges)
