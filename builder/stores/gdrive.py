"""Google Drive: `gdrive://ID` and Drive share links, read with or without credentials, pushed with them.

    gdrive://MANIFEST_FILE_ID   what `prebake push` writes into locks; restores with or without credentials
    gdrive://FOLDER_ID          a pack folder (or, for push, the folder that holds one folder per pack);
                                reading a folder needs credentials (Drive has no public folder listing API)
    https://drive.google.com/file/d/ID/view, .../open?id=ID, .../uc?id=ID, .../drive/folders/ID, and the
    same on docs.google.com and drive.usercontent.google.com (stores.parse_drive reads them all, for
    restore and push alike)

With credentials (PREBAKE_GDRIVE_CREDENTIALS: a service-account or authorized-user JSON file, or
`colab` inside Colab) the Drive API v3 is used: google-api-python-client for metadata, files.list
and resumable uploads, and files.get?alt=media streamed through google-auth's AuthorizedSession with
Range (parallel ranges for large parts). Without credentials the public download path is used: the
`uc` endpoint, gdown's parser for the virus-scan confirm page, and gdown's cookie file
(~/.cache/gdown/cookies.txt) when there is one. Either way the restore verifies size and sha256.

Part files are found through the manifest: each part records its Drive file id under the key
`gdrive:<folder id>` in `store_ids` (prebake push writes it), so no listing is needed to restore.

Errors, mapped at this boundary (googleapiclient HttpError, requests, gdown FileURLRetrievalError):
    StoreNotFound        404: wrong id, deleted, or not shared with this account
    StoreAuthError       401, a sign-in page, no permission
    StoreError           Drive's per-file download quota ("Too many users have viewed or downloaded
                         this file recently"), storage quota, a web page where the file was expected
    TransientStoreError  403 rate limits, 429, 5xx (retried here with backoff first), connections cut
                         mid-transfer or slower than the store's low_speed (the restore resumes a
                         part at its byte offset with Range)

Messages name the file by Drive id and pack name (gdrive://ID (part-003.tar.zst)). Bodies are read
no further than asked: a part's size, read_bytes' limit, PAGE_LIMIT for web pages and error JSON.

Credentials never appear in messages or logs; tokens travel only in Authorization headers.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from .. import settings
from ..errors import StoreAuthError, StoreError, StoreNotFound, TransientStoreError, UsageError
from . import MANIFEST, RESUMED, RETRY, PartRef, Store, parse_drive, within
from ._ranges import RangedBody, body_pieces, ordered_ranges, range_header, worth_ranges

log = logging.getLogger(__name__)

HINT = "pip install 'prebake[drive]'"
FOLDER_MIME = "application/vnd.google-apps.folder"
READ_SCOPES = ["https://www.googleapis.com/auth/drive.readonly"]
WRITE_SCOPES = ["https://www.googleapis.com/auth/drive"]
UPLOAD_CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB, as Drive requires of non-final chunks
CONNECT_TIMEOUT = 10  # seconds; the read timeout is the store's low_speed window
RETRIES = 5
PAGE_LIMIT = 1024 * 1024  # the most read of a web page or error body where a file was expected
BACKOFF = 1.0  # seconds, doubled per retry
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
_RATE_REASONS = {"userRateLimitExceeded", "rateLimitExceeded", "backendError", "internalError"}
_QUOTA_REASONS = {"downloadQuotaExceeded", "quotaExceeded"}

QUOTA_FIX = (
    "Drive's per-file download quota is used up (too many users have downloaded this file recently; it resets "
    "within about 24 h). Fix: restore with credentials (PREBAKE_GDRIVE_CREDENTIALS), add a second location to "
    "the lock (prebake push --to another folder or mirror), or make a copy in your own Drive"
)
SHARE_FIX = (
    "Fix: share the pack folder as 'Anyone with the link' (prebake push --public) or set "
    "PREBAKE_GDRIVE_CREDENTIALS to credentials that can read it"
)


def api_base() -> str:
    return settings.GDRIVE_API_BASE.get().rstrip("/") + "/"


def public_base() -> str:
    return settings.GDRIVE_PUBLIC_BASE.get().rstrip("/")


def _need(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        msg = f"the Google Drive store needs {module.split('.')[0]}, which is not installed; run: {HINT}"
        raise UsageError(msg) from e


# ---------------------------------------------------------------- ids and credentials


def load_credentials(spec: str | None = None, scopes: list[str] | None = None) -> Any | None:
    """Credentials from `spec` or PREBAKE_GDRIVE_CREDENTIALS: a service-account JSON file, an
    authorized-user JSON file (a user OAuth token with refresh token), or `colab`. None when unset."""
    spec = settings.GDRIVE_CREDENTIALS.get(spec)
    scopes = scopes or READ_SCOPES
    if not spec:
        return None
    if spec == "colab":
        try:
            from google.colab import auth  # type: ignore[import-not-found]
        except ImportError as e:
            msg = "credentials 'colab' work only inside Google Colab; elsewhere pass a service-account or OAuth token JSON file"
            raise UsageError(msg) from e
        auth.authenticate_user()
        google_auth = _need("google.auth")
        credentials, _ = google_auth.default(scopes=scopes)
        return credentials
    path = Path(spec).expanduser()
    try:
        info = json.loads(path.read_text())
        kind = info.get("type")
    except (OSError, ValueError, AttributeError) as e:
        msg = f"cannot read Drive credentials from {path} ({type(e).__name__}); pass a service-account or OAuth token JSON file"
        raise StoreAuthError(msg) from None
    try:
        if kind == "service_account":
            return _need("google.oauth2.service_account").Credentials.from_service_account_info(info, scopes=scopes)
        if kind == "authorized_user":
            oauth2 = _need("google.oauth2.credentials")
            missing = [k for k in ("refresh_token", "client_id", "client_secret") if not info.get(k)]
            if missing:
                raise ValueError(f"missing fields {', '.join(missing)}")
            return oauth2.Credentials(  # from_authorized_user_info would drop the file's token_uri
                token=None, refresh_token=info["refresh_token"], client_id=info["client_id"],
                client_secret=info["client_secret"], token_uri=info.get("token_uri", "https://oauth2.googleapis.com/token"),
                scopes=info.get("scopes"), quota_project_id=info.get("quota_project_id"))
    except ValueError as e:
        msg = f"{path} is not usable Drive credentials ({str(e).splitlines()[0][:200]})"
        raise StoreAuthError(msg) from None
    msg = f"{path} has credentials of type {kind!r}; prebake reads 'service_account' and 'authorized_user' JSON files"
    raise StoreAuthError(msg)


# ---------------------------------------------------------------- turning refusals into one line


def _reason_of(content: bytes | str | None) -> tuple[str, str]:
    try:
        error = json.loads(content or b"{}")["error"]
        first = (error.get("errors") or [{}])[0]
        return first.get("reason", "") or error.get("status", ""), error.get("message", "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", ""


def refusal(status: int, content: bytes | str | None, what: str) -> StoreError:
    """The StoreError for an API refusal; TransientStoreError when it is worth retrying (the loop
    that retries says how often when it gives up: see _retry)."""
    reason, message = _reason_of(content)
    detail = f"HTTP {status}{' ' + reason if reason else ''}"
    if status == 429 or status >= 500 or (status == 403 and reason in _RATE_REASONS):
        return TransientStoreError(f"{what}: Google Drive is rate-limiting or failing ({detail})")
    if reason in _QUOTA_REASONS:
        return StoreError(f"{what}: {QUOTA_FIX}")
    if reason == "storageQuotaExceeded":
        return StoreError(f"{what}: the Drive account has no storage left ({detail}); service accounts have no Drive storage of their own: push into a shared drive, or use a user OAuth token")
    if reason == "cannotDownloadAbusiveFile":
        return StoreError(f"{what}: Drive flagged the file as abusive and refuses it ({detail}); push the pack again to another folder")
    if status == 404:
        return StoreNotFound(f"{what}: not found on Google Drive ({detail}); check the id or link, that it was not deleted, and that it is shared with this account")
    if status == 401:
        return StoreAuthError(f"{what}: Google refused the credentials ({detail}); the token expired or was revoked: create new credentials and set PREBAKE_GDRIVE_CREDENTIALS")
    if status == 403:
        return StoreAuthError(f"{what}: no permission ({detail}{': ' + message if message else ''}); share the folder with this account (writer to push, reader to restore)")
    return StoreError(f"{what}: Google Drive answered {detail}{': ' + message if message else ''}")


def _html_refusal(text: str, what: str) -> StoreError:
    """A web page where the public path expected the file: the quota page, or Drive refusing it.
    No sharing advice: a file that is not shared never gets here (Drive redirects it to a sign-in,
    see _public_get), and the location may be a single shared file, with no folder to share."""
    errors = _need("gdown.exceptions")
    confirm = _need("gdown.download").get_url_from_gdrive_confirmation
    try:
        confirm(text)
    except errors.FileURLRetrievalError as e:
        if "too many users" in str(e).lower():
            return StoreError(f"{what}: {QUOTA_FIX}")
    title = re.search(r"<title>(.*?)</title>", text, re.DOTALL | re.IGNORECASE)
    page = f" ({title[1].strip()[:80]!r})" if title else ""
    return StoreError(f"{what}: Google Drive sent a web page{page} instead of the file, so nothing was written; Drive is refusing the download for now: try again later, restore with credentials (PREBAKE_GDRIVE_CREDENTIALS) or use another location")


def _auth_error(e: Exception, what: str) -> StoreError:
    """google-auth's failures to get a token; anything else is not ours to map."""
    exceptions = _need("google.auth.exceptions")
    if isinstance(e, exceptions.RefreshError):
        return StoreAuthError(f"{what}: Google refused to issue a token for the Drive credentials ({type(e).__name__}); the key or token was revoked or is for another project: create new credentials")
    if isinstance(e, exceptions.TransportError):
        return TransientStoreError(f"{what}: cannot reach Google's token endpoint ({type(e).__name__}); check the network")
    raise e


def _retry(error: StoreError, attempt: int, doing: str = "retrying") -> None:
    """Back off before retry `attempt + 1`; raise `error` instead when it is not worth retrying,
    or, saying how many retries were made, when none are left."""
    if not isinstance(error, TransientStoreError):
        raise error
    if attempt >= RETRIES:
        msg = f"{error}; gave up after {RETRIES} retries with backoff: wait a minute and run the same command again"
        raise TransientStoreError(msg) from error
    log.warning("%s; %s (retry %d of %d)", error, doing, attempt + 1, RETRIES)
    time.sleep(BACKOFF * 2**attempt)


# ---------------------------------------------------------------- the store


class GDriveStore(Store):
    def __init__(self, file_id: str, credentials: Any | None = None, *, is_folder: bool = False) -> None:
        self.id = file_id
        self.url = f"gdrive://{file_id}"
        self.credentials = credentials
        self.folder: str | None = file_id if is_folder else None
        self.parallel_ranges = 1
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._services: list[Any] = []
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._part_ids: dict[str, str] = {}

    @classmethod
    def from_url(cls, url: str, credentials: Any | None = None) -> GDriveStore:
        file_id, is_folder = parse_drive(url)
        return cls(file_id, credentials if credentials is not None else load_credentials(), is_folder=is_folder)

    @property
    def key(self) -> str:
        """The `store_ids` key under which this folder's part ids are recorded."""
        return f"gdrive:{self.folder or self.id}"

    def describe(self, name: str) -> str:
        return f"{self.url} ({name})"

    def close(self) -> None:
        with self._lock:
            for each in self._sessions:
                each.close()
            self._sessions.clear()
            for service in self._services:
                service.close()
            self._services.clear()
        self._local = threading.local()

    # ------------------------------------------------ clients, one per thread

    def _session(self) -> requests.Session:
        existing = getattr(self._local, "session", None)
        if existing is not None:
            return existing
        if self.credentials is not None:
            transport = _need("google.auth.transport.requests")
            new: requests.Session = transport.AuthorizedSession(self.credentials)
        else:
            new = requests.Session()
            new.headers["User-Agent"] = USER_AGENT
            cookies = Path("~/.cache/gdown/cookies.txt").expanduser()
            if cookies.exists():  # the gdown FAQ's fix for quota pages: cookies exported from a browser
                from http.cookiejar import LoadError, MozillaCookieJar

                jar = MozillaCookieJar(str(cookies))
                try:
                    jar.load(ignore_discard=True, ignore_expires=True)
                    new.cookies.update(jar)
                except (OSError, LoadError):
                    log.warning("ignoring unreadable gdown cookie file %s", cookies)
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=8)
        new.mount("http://", adapter)
        new.mount("https://", adapter)
        self._local.session = new
        with self._lock:
            self._sessions.append(new)
        return new

    def _service(self) -> Any:
        existing = getattr(self._local, "service", None)
        if existing is not None:
            return existing
        if self.credentials is None:
            msg = f"{self.url}: this needs the Drive API; set PREBAKE_GDRIVE_CREDENTIALS to a service-account or OAuth token JSON file"
            raise StoreAuthError(msg)
        discovery = _need("googleapiclient.discovery")
        cache = _need("googleapiclient.discovery_cache")
        http_mod = _need("googleapiclient.http")
        auth_httplib2 = _need("google_auth_httplib2")
        doc = json.loads(cache.get_static_doc("drive", "v3"))
        doc["rootUrl"] = doc["mtlsRootUrl"] = api_base()
        # build_http() is the client's own httplib2 setup: it stops treating 308 (resume incomplete) as a redirect
        http = auth_httplib2.AuthorizedHttp(self.credentials, http=http_mod.build_http())
        service = discovery.build_from_document(doc, http=http)
        self._local.service = service
        with self._lock:
            self._services.append(service)
        return service

    def _execute(self, request: Any, what: str) -> Any:
        """Run one API request, retrying rate limits, 5xx and dropped connections with backoff."""
        errors = _need("googleapiclient.errors")
        httplib2 = _need("httplib2")
        for attempt in range(RETRIES + 1):
            try:
                return request.execute(num_retries=0)
            except errors.HttpError as e:
                error = refusal(e.resp.status, e.content, what)
            except (OSError, httplib2.HttpLib2Error) as e:
                error = TransientStoreError(f"{what}: cannot reach Google Drive ({type(e).__name__}); check the network")
            except Exception as e:  # noqa: BLE001 - _auth_error re-raises what is not google-auth's
                error = _auth_error(e, what)
            _retry(error, attempt)
        raise AssertionError("unreachable")

    # ------------------------------------------------ finding files

    def _meta(self, file_id: str) -> dict:
        """files.get metadata, through the same light session as downloads (no discovery document)."""
        if self.credentials is None:
            self._service()  # raises the "needs credentials" error
        what = f"gdrive://{file_id}"
        url = f"{api_base()}drive/v3/files/{file_id}?fields=id,name,mimeType,parents,size&supportsAllDrives=true"
        for attempt in range(RETRIES + 1):
            try:
                response = self._get(url, {}, what)
                body = self._page(response, what)
                if response.status_code == 200:
                    return json.loads(body)
                error = refusal(response.status_code, body, what)
            except TransientStoreError as e:
                error = e
            _retry(error, attempt)
        raise AssertionError("unreachable")

    def _resolve_folder(self) -> str:
        if self.folder is None:
            meta = self._meta(self.id)
            if meta.get("mimeType") == FOLDER_MIME:
                self.folder = self.id
            else:
                self._names.setdefault(meta.get("name", MANIFEST), self.id)
                self.folder = (meta.get("parents") or [self.id])[0]
        return self.folder

    def find(self, *, name: str | None = None, properties: Mapping[str, str] | None = None,
             folder: str | None = None, mime_type: str | None = None) -> list[dict]:
        """Files in the folder matching a name and appProperties, newest first."""
        folder = folder or self._resolve_folder()
        clauses = [f"'{folder}' in parents", "trashed = false"]
        if name is not None:
            clauses.append("name = '{}'".format(name.replace("\\", "\\\\").replace("'", "\\'")))
        if mime_type is not None:
            clauses.append(f"mimeType = '{mime_type}'")
        for key, value in (properties or {}).items():
            clauses.append(f"appProperties has {{ key='{key}' and value='{value}' }}")
        found: list[dict] = []
        token = None
        while True:
            request = self._service().files().list(
                q=" and ".join(clauses), fields="nextPageToken,files(id,name,size,mimeType,appProperties,sha256Checksum)",
                orderBy="modifiedTime desc", pageSize=1000, pageToken=token,
                supportsAllDrives=True, includeItemsFromAllDrives=True)
            page = self._execute(request, f"gdrive://{folder}")
            found += page.get("files", [])
            token = page.get("nextPageToken")
            if not token:
                return found

    def _id_of(self, name: str) -> str:
        if name in self._names:
            return self._names[name]
        if self.folder is None and self.credentials is None:
            if name == MANIFEST:
                return self.id
            msg = f"{self.url}: the manifest records no Drive id for {name} and listing a folder needs credentials; push the pack with `prebake push` or set PREBAKE_GDRIVE_CREDENTIALS"
            raise StoreNotFound(msg)
        if name == MANIFEST and self.folder is None:
            self._resolve_folder()
            if name in self._names:
                return self._names[name]
        found = self.find(name=name)
        if not found:
            msg = f"{self.url}: no file named {name} in Drive folder {self.folder}; push the pack there with `prebake push`"
            raise StoreNotFound(msg)
        self._names[name] = found[0]["id"]
        return found[0]["id"]

    # ------------------------------------------------ reading

    def read_bytes(self, name: str, *, limit: int | None = None) -> bytes:
        file_id = self._id_of(name)
        try:
            data = b"".join(self._stream(name, file_id, 0, None if limit is None else limit + 1, RETRY, ask_end=False))
        except StoreNotFound as e:
            if name == MANIFEST and self.credentials is None:
                msg = f"{e} (a folder id needs credentials: restore from the manifest's file id, as in the lock `prebake push` writes, or set PREBAKE_GDRIVE_CREDENTIALS)"
                raise StoreNotFound(msg) from None
            raise
        return within(data, limit, self._what(name, file_id))

    def exists(self, name: str) -> bool:
        try:
            self._id_of(name)
        except StoreNotFound:
            return False
        return True

    def open_read(self, name: str, offset: int = 0, size: int | None = None,
                  ids: Mapping[str, str] | None = None) -> Iterator[bytes]:
        candidates = [v for k, v in (ids or {}).items() if k == self.key]
        candidates += [v for k, v in (ids or {}).items() if k.startswith("gdrive:") and v not in candidates]
        if not candidates:
            candidates = [self._id_of(name)]
        for i, file_id in enumerate(candidates):
            started = False
            try:
                if self.credentials is not None and worth_ranges(offset, size, self.parallel_ranges):
                    stream = ordered_ranges(lambda s, e, f=file_id: self._stream(name, f, s, e, RESUMED, ask_end=True),
                                            offset, size, self.parallel_ranges)
                else:
                    stream = self._stream(name, file_id, offset, size, RESUMED, ask_end=False)
                for chunk in stream:
                    started = True
                    yield chunk
                return
            except (StoreNotFound, StoreAuthError):
                if started or i == len(candidates) - 1:
                    raise
                log.warning("%s: Drive copy %s is unavailable, trying the next one", name, file_id)

    def _what(self, name: str, file_id: str) -> str:
        """A file for messages: its Drive id and its name in the pack (part-003.tar.zst)."""
        return f"gdrive://{file_id} ({name})"

    def _stream(self, name: str, file_id: str, offset: int, end: int | None, advice: str, *,
                ask_end: bool) -> Iterator[bytes]:
        """Bytes [offset, end) of a file, by the API with credentials, else by the public path; the
        Range header names `end` only with `ask_end` (a size or limit caps what Drive may send)."""
        what = self._what(name, file_id)
        headers = range_header(offset, end if ask_end else None)
        if self.credentials is not None:
            response = self._api_get(file_id, headers, what)
        else:
            response = self._public_get(file_id, headers, what)
        return RangedBody(response, offset, end, what, self.low_speed, advice)

    def _get(self, url: str, headers: dict[str, str], what: str) -> requests.Response:
        try:
            return self._session().get(url, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT, self.low_speed[1]))
        except requests.RequestException as e:
            raise TransientStoreError(f"{what}: cannot reach Google Drive ({type(e).__name__}); check the network") from e
        except Exception as e:
            raise _auth_error(e, what) from e

    def _page(self, response: requests.Response, what: str) -> bytes:
        """An error or confirm page's body: at most PAGE_LIMIT bytes, held to low_speed."""
        with response:
            return b"".join(body_pieces(response, PAGE_LIMIT, 0, what, self.low_speed, RETRY))

    def _api_get(self, file_id: str, headers: dict[str, str], what: str) -> requests.Response:
        url = f"{api_base()}drive/v3/files/{file_id}?alt=media&supportsAllDrives=true"
        for attempt in range(RETRIES + 1):
            try:
                response = self._get(url, headers, what)
            except TransientStoreError as e:
                _retry(e, attempt)
                continue
            if response.status_code in (200, 206):
                if response.headers.get("Content-Type", "").startswith("text/html"):
                    response.close()
                    msg = (f"{what}: Google Drive sent a web page instead of the file, so nothing was written; a proxy "
                           "or Drive is refusing the download: try again later or use another location")
                    raise StoreError(msg)
                return response
            _retry(refusal(response.status_code, self._page(response, what), what), attempt)
        raise AssertionError("unreachable")

    def _public_get(self, file_id: str, headers: dict[str, str], what: str) -> requests.Response:
        url = f"{public_base()}/uc?export=download&id={file_id}"
        attempt = hops = 0
        while True:
            response = self._get(url, headers, what)
            code = response.status_code
            if "ServiceLogin" in response.url or "accounts.google.com" in response.url:
                response.close()
                raise StoreAuthError(f"{what}: the file is not shared publicly (Drive asks for a sign-in). {SHARE_FIX}")
            if code in (429,) or code >= 500:
                response.close()
                _retry(TransientStoreError(f"{what}: Google Drive is failing (HTTP {code})"), attempt)
                attempt += 1
                continue
            if code == 404:
                response.close()
                raise StoreNotFound(f"{what}: not found on Google Drive (HTTP 404); check the id or link and that the file was not deleted")
            if code in (401, 403):
                response.close()
                raise StoreAuthError(f"{what}: Google Drive refused the download (HTTP {code}). {SHARE_FIX}")
            if code not in (200, 206):
                response.close()
                raise StoreError(f"{what}: Google Drive answered HTTP {code}")
            if "Content-Disposition" in response.headers or not response.headers.get("Content-Type", "").startswith("text/html"):
                return response
            text = self._page(response, what).decode(response.encoding or "utf-8", errors="replace")
            hops += 1
            # gdown (and BeautifulSoup under it) only now that a page needs parsing: ~60 ms of imports.
            confirm = _need("gdown.download").get_url_from_gdrive_confirmation
            errors = _need("gdown.exceptions")
            try:
                url = confirm(text)
            except errors.FileURLRetrievalError:
                raise _html_refusal(text, what) from None
            if hops > 3:
                raise _html_refusal(text, what)

    # ------------------------------------------------ writing (push)

    writable = True

    @classmethod
    def for_push(cls, dest: str, pack_name: str, credentials: Any | None = None, *, public: bool = False) -> GDriveStore:
        """The store for pack `pack_name` inside Drive folder `dest` (its subfolder, made if missing),
        shared as "anyone with the link" when `public`, so restores need no credentials."""
        parent, _ = parse_drive(dest)
        credentials = credentials if credentials is not None else load_credentials(scopes=WRITE_SCOPES)
        if credentials is None:
            msg = (f"pushing to {dest} needs Drive credentials: set PREBAKE_GDRIVE_CREDENTIALS to a service-account JSON "
                   "(share a folder in a shared drive with it: service accounts have no storage quota of their own), "
                   "an OAuth token JSON, or `colab` inside Colab")
            raise StoreAuthError(msg)
        root = cls(parent, credentials, is_folder=True)
        meta = root._meta(parent)
        if meta.get("mimeType") != FOLDER_MIME:
            msg = f"{dest} is a file, not a folder; push to a folder: gdrive://FOLDER_ID or https://drive.google.com/drive/folders/FOLDER_ID"
            raise UsageError(msg)
        found = root.find(name=pack_name, mime_type=FOLDER_MIME, folder=parent)
        if found:
            folder_id = found[0]["id"]
        else:
            body = {"name": pack_name, "mimeType": FOLDER_MIME, "parents": [parent], "appProperties": {"prebake": "pack"}}
            folder_id = root._execute(root._service().files().create(body=body, fields="id", supportsAllDrives=True),
                                      f"gdrive://{parent}")["id"]
        root.close()
        store = cls(folder_id, credentials, is_folder=True)
        if public:
            store.share_public()
        return store

    def share_public(self) -> None:
        """Anyone with the link may read the pack folder (and so every file in it)."""
        body = {"type": "anyone", "role": "reader"}
        request = self._service().permissions().create(fileId=self._resolve_folder(), body=body, supportsAllDrives=True)
        self._execute(request, self.url)

    def has_part(self, part: PartRef) -> bool:
        """A file in the folder with the part's sha256 in its appProperties and its size, whatever
        its name (an older build's part with the same bytes); its id goes into part_ids."""
        for existing in self.find(properties={"sha256": part.sha256}):
            if int(existing.get("size", -1)) == part.size:
                self._part_ids[part.name] = existing["id"]
                return True
        return False

    def put_part(self, part: PartRef, source: Path, on_bytes: Callable[[int], None] | None = None) -> None:
        meta = {"name": part.name, "parents": [self._resolve_folder()], "mimeType": "application/octet-stream",
                "appProperties": {"sha256": part.sha256, "prebake": "part"}}
        with open(source, "rb") as f:
            created = self._upload(meta, f, part.size, self.describe(part.name), on_bytes)
        remote = created.get("sha256Checksum")
        if remote and remote != part.sha256:
            msg = f"{self.describe(part.name)}: Drive stored bytes with sha256 {remote}, the part has {part.sha256}; push again"
            raise StoreError(msg)
        self._part_ids[part.name] = created["id"]

    def part_ids(self) -> dict[str, dict[str, str]]:
        """Restores read parts by these ids: no folder listing, so no credentials needed."""
        return {self.key: dict(self._part_ids)}

    def put_manifest(self, data: bytes) -> str:
        """Kept by digest (appProperties), so the ids older locks name stay valid; returns gdrive://FILE_ID."""
        digest = hashlib.sha256(data).hexdigest()
        found = self.find(name=MANIFEST, properties={"digest": digest})
        if found:
            file_id = found[0]["id"]
        else:
            meta = {"name": MANIFEST, "parents": [self._resolve_folder()], "mimeType": "application/json",
                    "appProperties": {"digest": digest, "prebake": "manifest"}}
            file_id = self._upload(meta, io.BytesIO(data), len(data), self.describe(MANIFEST), None)["id"]
        self._names[MANIFEST] = file_id
        return f"gdrive://{file_id}"

    def _upload(self, meta: dict, stream: Any, size: int, what: str,
                on_bytes: Callable[[int], None] | None) -> dict:
        """A resumable upload; a dropped chunk is resumed from the byte Drive says it has."""
        http_mod = _need("googleapiclient.http")
        errors = _need("googleapiclient.errors")
        httplib2 = _need("httplib2")
        class ChunkBytes(http_mod.MediaIoBaseUpload):
            # Chunks as bytes, not stream slices: httplib2 resends a request once after a dropped
            # connection, and a slice already read would go out empty and hang the upload.
            def has_stream(self) -> bool:
                return False

        media = ChunkBytes(stream, mimetype=meta["mimeType"], chunksize=UPLOAD_CHUNK, resumable=True)
        request = self._service().files().create(body=meta, media_body=media, supportsAllDrives=True,
                                                 fields="id,size,sha256Checksum")
        response, failures, sent = None, 0, 0
        while response is None:
            try:
                status, response = request.next_chunk(num_retries=0)
            except errors.HttpError as e:
                error: StoreError = refusal(e.resp.status, e.content, what)
                if e.resp.status in (404, 410):  # the upload session is gone: start a new one
                    request.resumable_uri, request.resumable_progress = None, 0
                    error = TransientStoreError(f"{what}: the upload session expired")
            except (OSError, httplib2.HttpLib2Error) as e:
                error = TransientStoreError(f"{what}: the upload was cut off ({type(e).__name__})")
            except Exception as e:  # noqa: BLE001 - _auth_error re-raises what is not google-auth's
                error = _auth_error(e, what)
            else:
                done = size if response is not None else status.resumable_progress
                if on_bytes and done > sent:
                    on_bytes(done - sent)
                sent, failures = max(sent, done), 0
                continue
            _retry(error, failures, "resuming at the byte Drive has")
            failures += 1
        return response
