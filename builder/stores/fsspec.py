"""A pack folder behind any fsspec URL: s3:// (s3fs), gs:// (gcsfs), az://, sftp://, memory://, ...

fsspec and its protocol backends are optional: `pip install 'prebake[s3]'`, `'prebake[gcs]'`, or
`'prebake[fsspec]'` plus the backend for another scheme. Credentials and endpoints come from each
ecosystem's usual places, read by the backend itself: AWS_ACCESS_KEY_ID / AWS_PROFILE / ~/.aws,
AWS_REGION, AWS_ENDPOINT_URL (MinIO, R2, a test server) for S3; GOOGLE_APPLICATION_CREDENTIALS,
gcloud's application-default login or the VM's account (anonymous when there is none: public objects
only), STORAGE_EMULATOR_HOST for GCS. A store opens its own filesystem instance (not fsspec's
cached one), so credentials set in a notebook after a failed try are used by the next one.

Reads: a part (its size known) is read as ranged GETs (`cat_file(path, start, end)`, one request
each) of at most BLOCK bytes, handed on in CHUNK pieces; with `parallel_ranges` > 1 (set by the
restore) a large part is fetched as that many ranges at once and reassembled in order, as the HTTP
store does (_ranges.ordered_ranges). A range that fails raises TransientStoreError after the bytes
before it, so the restore resumes at the byte reached. The backends retry their own requests first
(s3fs: 5 times; gcsfs: 6 times with backoff). A request that stalls ends at the backend's read
timeout; the store's low_speed is checked between ranges.

Writes: `put_file`, which s3fs turns into a multipart upload and gcsfs into a resumable upload for
files above their thresholds (upload_chunk sets the piece size; default 50 MiB for both). On S3 and
GCS each part goes up with its sha256 in the object's metadata (stamped_sha256), which push requires
before it skips an object already there. A push never creates a bucket: open_destination checks
that it exists (check_destination) before anything is uploaded anywhere, and a write that still
finds none is refused the same way.

Public URLs: public_url(name) is the https URL of an object that anyone may read (a bucket policy
or IAM binding that makes the prefix public), which prebake's HTTP store reads as a plain folder;
public_url(name, expires=SECONDS) presigns one object (S3 with any credentials, GCS with a
service-account key): a folder URL cannot be presigned, each object needs its own signature.

Errors, mapped once here (_mapped) from what the backends raise or chain (botocore ClientError
codes, gcsfs HttpError codes, the OSError subclasses fsspec uses):

    NoSuchBucket (or nothing at all where a write goes)   StoreNotFound   create the bucket (push) or fix the URL
    NoSuchKey, 404, FileNotFoundError                     StoreNotFound   check the URL
    AccessDenied, 403, HTTP 401 (GCS), PermissionError    StoreAuthError  which credentials, which permission
    InvalidAccessKeyId, SignatureDoesNotMatch, ...        StoreAuthError  the credentials are not valid
    ExpiredToken, RequestExpired, RefreshError, ...       StoreAuthError  renew the credentials
    NoCredentialsError                                    StoreAuthError  where credentials are read from
    PermanentRedirect, AuthorizationHeaderMalformed, 301  StoreError      the bucket's region: set AWS_REGION
    RequestTimeTooSkewed                                  StoreError      set the clock right
    SlowDown, 5xx, 429, connection errors, timeouts       TransientStoreError
    anything else                                         StoreError
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import StoreAuthError, StoreError, StoreNotFound, TransientStoreError, UsageError
from . import CHUNK, MANIFEST, RESUMED, RETRY, PartRef, SpeedFloor, Store, join_url, redact, signed_key, within
from ._ranges import ordered_ranges, worth_ranges

log = logging.getLogger(__name__)

HINT = "pip install 'prebake[fsspec]'"
MANIFEST_LIMIT = 16 * 2**20  # manifest.MAX_MANIFEST_BYTES (stores do not import the manifest module)
BLOCK = 8 * 2**20
"""The most bytes one ranged GET asks for when a part is read on one connection."""

_BACKENDS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}
"""Schemes with first-class support: buckets that push never creates, public and presigned URLs."""
_EXTRAS = {"s3": "pip install 'prebake[s3]' (s3fs)", "gcs": "pip install 'prebake[gcs]' (gcsfs)"}
_GCS_PUBLIC = "https://storage.googleapis.com"
_STAMP = "sha256"
"""The metadata key put_part stores a part's sha256 under (S3: x-amz-meta-sha256)."""
_METADATA = {"s3": "Metadata", "gcs": "metadata"}
"""put_file's argument for an object's metadata: s3fs hands it to PutObject and
CreateMultipartUpload, gcsfs to the simple and the resumable upload."""

_NO_BUCKET = {"NoSuchBucket"}
_NO_KEY = {"NoSuchKey", "NotFound", "404"}
_DENIED = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "403", "Forbidden"}
_INVALID = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "InvalidClientTokenId",
            "UnrecognizedClientException", "InvalidSecurity"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}
_BUSY = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503", "500", "429"}
_NO_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "NoAuthTokenError",
                   "ProfileNotFound", "SSOTokenLoadError", "UnauthorizedSSOTokenError", "TokenRetrievalError",
                   "DefaultCredentialsError"}
_RENEW = {"RefreshError", "ReauthFailError"}
_BROKEN = {"HTTPClientError", "ClientPayloadError", "ClientConnectionError", "ServerDisconnectedError",
           "ConnectionClosedError", "EndpointConnectionError", "ReadTimeoutError", "ConnectTimeoutError",
           "IncompleteReadError", "ResponseStreamingError", "ChunkedEncodingError", "ConnectionError", "Timeout",
           "TimeoutError", "IncompleteRead", "ProtocolError", "ContentLengthError"}
"""Class names (anywhere in the MRO) of the backends' transport errors: aiohttp, botocore, requests."""


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError as e:
        msg = (f"URLs like this need fsspec, which is not installed; run: {HINT} (or prebake[s3], prebake[gcs] "
               "for s3:// and gs://)")
        raise UsageError(msg) from e
    return fsspec


# ---------------------------------------------------------------- the backends' errors, mapped once


def _chain(e: BaseException) -> Iterator[BaseException]:
    """`e` and what it was raised from (s3fs keeps botocore's ClientError as __cause__)."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen and len(seen) < 6:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _names(e: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(e).__mro__}


def _backend_code(e: BaseException) -> tuple[str | None, str, dict[str, str]]:
    """(code, message, headers) the service sent: a botocore ClientError's Error.Code, or a gcsfs
    HttpError's HTTP status; (None, "", {}) when the chain has neither."""
    for each in _chain(e):
        response = getattr(each, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            error = response["Error"]
            meta = response.get("ResponseMetadata") or {}
            headers = {str(k).lower(): str(v) for k, v in (meta.get("HTTPHeaders") or {}).items()}
            if error.get("Region"):
                headers.setdefault("x-amz-bucket-region", str(error["Region"]))
            code = str(error.get("Code") or meta.get("HTTPStatusCode") or "")
            return code or None, str(error.get("Message") or ""), headers
        if "HttpError" in _names(each) and getattr(each, "code", None) is not None:
            message = str(getattr(each, "message", "") or "").removesuffix(f", {each.code}")  # gcsfs appends the code
            return str(each.code), message, {}
    return None, "", {}


def _mapped(e: BaseException, what: str, backend: str | None = None, *, advice: str = RETRY,
            writing: bool = False) -> StoreError:
    """The StoreError that says what went wrong at `what` and what to do, from a backend's error."""
    if isinstance(e, StoreError):
        return e
    code, message, headers = _backend_code(e)
    names = set().union(*(_names(each) for each in _chain(e)))
    if code is None and _forbidden(e):  # gcsfs's 403: "Forbidden: URL\nwhat GCS said"
        code, message = "403", (str(e).splitlines()[1:] or [""])[0]
    said = f"{code}: {message}" if code and message else code or message or f"{type(e).__name__}: {e}"
    said = ("HTTP " + said if said[:3].isdigit() else said).splitlines()[0][:200]
    # An object store's write needs no object to exist: not found there means no bucket.
    if code in _NO_BUCKET or (writing and backend and isinstance(e, FileNotFoundError)):
        bucket = what.split("://", 1)[-1].split("/", 1)[0]
        fix = "create it first (prebake never creates buckets) or fix the URL" if writing else "check the URL"
        return StoreNotFound(f"{what}: the bucket {bucket!r} does not exist; {fix}")
    if code in _EXPIRED or names & _RENEW:
        fix = ("renew them (`aws sso login`, a new session token, or another AWS_PROFILE)" if backend == "s3" else
               "renew them (`gcloud auth application-default login`, or a new key in GOOGLE_APPLICATION_CREDENTIALS)")
        return StoreAuthError(f"{what}: the credentials have expired or were revoked ({said}); {fix} and run the same command again")
    if code in _INVALID:
        return StoreAuthError(f"{what}: the credentials are not valid ({said}); check AWS_ACCESS_KEY_ID, "
                              "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or AWS_PROFILE (and ~/.aws/credentials)")
    if names & _NO_CREDENTIALS:
        return StoreAuthError(f"{what}: no credentials found ({type(e).__name__}); {_credentials_hint(backend)}")
    if code in _REGION:
        region = headers.get("x-amz-bucket-region")
        where = f"region {region}" if region else "another region"
        return StoreError(f"{what}: the bucket is in {where} ({said}); set AWS_REGION={region or 'REGION'} (or the "
                          "profile's region) and run the same command again")
    if code == "RequestTimeTooSkewed":
        return StoreError(f"{what}: this machine's clock is off ({said}); set it right (NTP) and run the same command again")
    if code == "401" and backend == "gcs":
        return StoreAuthError(f"{what}: Google refused the request ({said}); {_credentials_hint('gcs')}")
    if _denied(e, code):
        return StoreAuthError(f"{what}: access refused ({said}); {_permission_hint(backend, writing)}")
    if isinstance(e, FileNotFoundError) or code in _NO_KEY:
        return StoreNotFound(f"{what} does not exist; check the URL and that the pack was pushed there")
    if code in _BUSY or (code and code.isdigit() and (int(code) >= 500 or code == "408")):
        return TransientStoreError(f"{what}: the service keeps failing ({said}) after retries; {advice}")
    if names & _BROKEN or isinstance(e, (ConnectionError, TimeoutError)) or _from_aiohttp(e):
        return TransientStoreError(f"{what}: the connection failed ({type(e).__name__}); {advice}")
    return StoreError(f"{what}: {said}")


def _denied(e: BaseException, code: str | None) -> bool:
    """A refusal to the caller (403), not a statement about the credentials themselves."""
    return code in _DENIED or isinstance(e, PermissionError) or _forbidden(e)


def _forbidden(e: BaseException) -> bool:
    """gcsfs's 403: a plain OSError("Forbidden: URL\nmessage")."""
    return type(e) is OSError and str(e).startswith("Forbidden")


def _from_aiohttp(e: BaseException) -> bool:
    """An aiohttp transport error (not an HTTP status, which the backends turn into codes)."""
    return any(type(x).__module__.startswith("aiohttp") and "ClientResponseError" not in _names(x) for x in _chain(e))


def _credentials_hint(backend: str | None) -> str:
    if backend == "s3":
        return ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (~/.aws/credentials), or run "
                "`aws sso login`; to read a public bucket without credentials use its https:// URL")
    if backend == "gcs":
        return ("set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file or run `gcloud auth "
                "application-default login`; without credentials only public objects can be read")
    return "check the credentials the fsspec backend uses"


def _permission_hint(backend: str | None, writing: bool) -> str:
    if backend == "s3":
        need = "s3:PutObject, s3:GetObject and s3:ListBucket" if writing else "s3:GetObject"
        return f"the credentials in use (AWS_PROFILE / AWS_ACCESS_KEY_ID) need {need} on this bucket and prefix"
    if backend == "gcs":
        role = "roles/storage.objectUser" if writing else "roles/storage.objectViewer"
        return f"the account in use (GOOGLE_APPLICATION_CREDENTIALS / gcloud) needs {role} on this bucket"
    return "check the credentials the fsspec backend uses"


# ---------------------------------------------------------------- the store


class FsspecStore(Store):
    writable = True
    upload_chunk: int | None = None
    """Bytes per request of a multipart (S3) or resumable (GCS) upload; None keeps the backend's
    default (50 MiB: parts of 100 MiB and more go up in pieces on S3, of 5 MiB and more on GCS)."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        fsspec = _fsspec()
        self.url = url.rstrip("/")
        scheme = self.url.split("://", 1)[0].lower()
        self.backend = _BACKENDS.get(scheme)
        if self.backend:
            storage_options.setdefault("skip_instance_cache", True)
        if self.backend == "s3":  # presigned URLs too: botocore signs those SigV2 by default, which regions since 2014 refuse
            storage_options.setdefault("config_kwargs", {"signature_version": "s3v4"})
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **storage_options)
        except ImportError as e:
            install = _EXTRAS.get(self.backend or "", "install the one for it (adlfs, sshfs, ...)")
            msg = f"no fsspec backend for {scheme}:// ({e}); {install}, or use a folder or http(s) URL"
            raise UsageError(msg) from e
        except ValueError as e:
            msg = f"no fsspec backend for {scheme}:// ({e}); install the one for it (s3fs, gcsfs, adlfs, ...) or use a folder or http(s) URL"
            raise UsageError(msg) from e
        except Exception as e:
            raise _mapped(e, redact(self.url), self.backend) from e
        self.root = self.root.rstrip("/")
        if self.backend and not self.root:
            msg = f"{redact(self.url)} names no bucket; write {scheme}://BUCKET/PREFIX"
            raise UsageError(msg)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.reopenable = "memory" not in protocols
        if self.backend == "gcs":
            _quiet("gcsfs")

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def _mapped(self, e: BaseException, name: str, *, advice: str = RETRY, writing: bool = False) -> StoreError:
        return _mapped(e, self.describe(name) if name else redact(self.url), self.backend, advice=advice, writing=writing)

    # ------------------------------------------------------------ reading

    def read_bytes(self, name: str, *, limit: int | None = None) -> bytes:
        data = self._get(name, 0, None if limit is None else limit + 1, RETRY)
        return within(data, limit, self.describe(name))

    def open_read(self, name: str, offset: int = 0, size: int | None = None,
                  ids: Mapping[str, str] | None = None) -> Iterator[bytes]:
        if size is None:
            yield from self._stream(name, offset)
            return
        if worth_ranges(offset, size, self.parallel_ranges):
            # Each read is one request that returns whole, so there is no stream to time: always split.
            yield from ordered_ranges(lambda start, end: self._blocks(name, start, end), offset, size, self.parallel_ranges,
                                      probe=False)
            return
        yield from self._blocks(name, offset, size)

    def _blocks(self, name: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) of `name` in requests of BLOCK bytes, one after the other."""
        for first in range(start, end, BLOCK):
            last = min(first + BLOCK, end)
            got = 0
            for piece in self._range(name, first, last):
                got += len(piece)
                yield piece
            if got < last - first:  # the file is shorter than asked: the caller's size check says so
                return

    def _get(self, name: str, start: int, end: int | None, advice: str) -> bytes:
        """Bytes [start, end) of `name` in one request (fewer at the end of the file, none past it),
        held to low_speed."""
        started = time.monotonic()
        try:
            data = self.fs.cat_file(self._path(name), start=start, end=end)
        except Exception as e:  # every backend has its own errors; mapped here
            if start and _backend_code(e)[0] in ("InvalidRange", "416"):
                return b""  # the file ends before `start`: the caller's size check says so
            raise self._mapped(e, name, advice=advice) from e
        if end is not None and len(data) > end - start:  # a server that sent more than asked
            data = data[: end - start]
        SpeedFloor(self.low_speed, self.describe(name), advice).passed(len(data), time.monotonic() - started)
        return data

    def _range(self, name: str, start: int, end: int) -> Iterator[bytes]:
        data = memoryview(self._get(name, start, end, RESUMED))
        for i in range(0, len(data), CHUNK):
            yield data[i : i + CHUNK]

    def _stream(self, name: str, offset: int) -> Iterator[bytes]:
        """`name` from `offset` to its end, its size asked first."""
        try:
            size = int(self.fs.size(self._path(name)))
        except Exception as e:
            raise self._mapped(e, name, advice=RESUMED) from e
        return self.open_read(name, offset, size)

    def exists(self, name: str) -> bool:
        try:
            return bool(self.fs.exists(self._path(name)))
        except Exception as e:
            raise self._mapped(e, name) from e

    # ------------------------------------------------------------ writing (push)

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
            raise self._mapped(e, part.name) from e

    _parts: dict[str, tuple[int, str]] | None = None

    def _listed(self) -> dict[str, tuple[int, str]]:
        """{part name: (size, sha256)} from the manifest here; empty when there is none or it is unreadable."""
        if self._parts is None:
            try:
                listed = json.loads(self.read_bytes(MANIFEST, limit=MANIFEST_LIMIT))["parts"]
                self._parts = {p["name"]: (p["size"], p["sha256"]) for p in listed}
            except StoreNotFound:
                self._parts = {}
            except (StoreAuthError, TransientStoreError):
                raise
            except (StoreError, ValueError, KeyError, TypeError) as e:
                log.warning("%s is unreadable (%s); uploading every part again", self.describe(MANIFEST), e)
                self._parts = {}
        return self._parts

    def check_destination(self) -> None:
        """A bucket that does not exist is refused now, before anything is uploaded anywhere (push
        never creates one). A refusal to look (HeadBucket needs s3:ListBucket) proves nothing: the
        upload itself then tells."""
        if not self.backend:
            return
        bucket = self.root.split("/", 1)[0]
        try:
            self.fs.info(bucket)
        except Exception as e:
            code = _backend_code(e)[0]
            if _denied(e, code) and code not in _INVALID and code not in _EXPIRED:
                log.debug("cannot look at bucket %s (%s); the upload will tell", bucket, e)
                return
            raise self._mapped(e, "", writing=True) from e

    def put_part(self, part: PartRef, source: Path, on_bytes: Callable[[int], None] | None = None) -> None:
        progress = _Progress(on_bytes)
        options: dict[str, Any] = {"callback": progress.callback()} if on_bytes else {}
        if self.upload_chunk and self.backend:
            options["chunksize"] = self.upload_chunk
        if self.backend:  # with the object, in the same PUT (or the upload's first request): see stamped_sha256
            options[_METADATA[self.backend]] = {_STAMP: part.sha256}
        try:
            self._folder()
            self.fs.put_file(str(source), self._path(part.name), **options)
        except Exception as e:
            raise self._mapped(e, part.name, writing=True, advice="run the same command again: parts already up are not sent again") from e
        progress.finish(part.size)

    def put_manifest(self, data: bytes) -> str:
        try:
            self._folder()
            self.fs.pipe_file(self._path(MANIFEST), data)
        except Exception as e:
            raise self._mapped(e, MANIFEST, writing=True) from e
        self._parts = None
        return self.lock_location(MANIFEST)

    def holds(self, ref: PartRef) -> bool:
        """On S3 and GCS, the object must carry the sha256 put_part stored with it (read without its
        bytes); one without, or with another, is uploaded again, over it."""
        if self.backend:
            return self.stamped_sha256(ref.name) == ref.sha256
        return super().holds(ref)

    def stamped_sha256(self, name: str) -> str | None:
        """The sha256 put_part stored with object `name` on S3 (user metadata) or GCS (custom
        metadata), read with one HEAD or GET of the object's metadata; None when it has none (another
        tool wrote it) or on other schemes, which keep no metadata. Object stores write an object
        and its metadata at once, so the stamp is the sha256 of the bytes that went up with it."""
        if not self.backend:
            return None
        path = self._path(name)
        try:
            meta = self.fs.metadata(path) if self.backend == "s3" else self.fs.info(path).get("metadata")
        except Exception as e:
            raise self._mapped(e, name) from e
        return (meta or {}).get(_STAMP)

    def _folder(self) -> None:
        """Make the folder where folders exist (sftp, memory); an object store has none, and its
        bucket is never made (s3fs's makedirs would create it)."""
        if not self.backend:
            self.fs.makedirs(self.root, exist_ok=True)

    # ------------------------------------------------------------ URLs anyone can read

    def public_url(self, name: str = "", *, expires: int | None = None) -> str | None:
        """An http(s) URL of `name` in this folder (of the folder itself when `name` is empty) that
        needs no cloud SDK: the plain object URL, which works for objects anyone may read (and, for a
        folder, as a base URL prebake's HTTP store joins part names to), or with `expires` (seconds)
        a presigned URL of that one object. None for other schemes."""
        if self.backend is None:
            return None
        if expires is not None:
            return self._presigned(name, expires)
        if self.backend == "gcs":
            base = str(getattr(self.fs, "_location", "") or _GCS_PUBLIC).rstrip("/")
            return f"{base}/{urllib.parse.quote(self.root)}" + (f"/{urllib.parse.quote(name)}" if name else "")
        # The S3 client knows the addressing (virtual-hosted or path style, the region's host, a
        # custom endpoint): presign a name inside the folder and keep only the folder's part.
        try:
            signed = self.fs.url(self._path(name or "x"), expires=60)
        except Exception as e:
            raise self._mapped(e, name) from e
        parts = urllib.parse.urlsplit(signed)
        path = parts.path if name else parts.path.rsplit("/", 1)[0]
        return urllib.parse.urlunsplit(parts._replace(path=path, query="", fragment=""))

    def _presigned(self, name: str, expires: int) -> str:
        if not name:
            msg = "a folder cannot be presigned: each object needs its own signature (presign a file, or make the prefix public)"
            raise UsageError(msg)
        try:
            if self.backend == "gcs":
                return str(self.fs.sign(self._path(name), expiration=expires))
            return str(self.fs.url(self._path(name), expires=expires))
        except AttributeError as e:  # gcsfs: credentials without a private key cannot sign
            msg = (f"{self.describe(name)}: these Google credentials cannot sign URLs ({str(e).split('.')[0]}); "
                   "use a service-account key (GOOGLE_APPLICATION_CREDENTIALS) or make the prefix public")
            raise StoreAuthError(msg) from e
        except Exception as e:
            raise self._mapped(e, name) from e

    def signed_ids(self, names: list[str]) -> dict[str, dict[str, str]]:
        """With push --presign, the query that presigns each of `names`, under the key of the https
        folder the signed URLs share (what the HTTP store reading that folder looks up)."""
        if self.presign is None or not names:
            return {}
        signed = {name: urllib.parse.urlsplit(self._presigned(name, self.presign)) for name in names}
        folders = {url._replace(path=url.path.rsplit("/", 1)[0], query="", fragment="").geturl() for url in signed.values()}
        [folder] = folders  # one folder: the signer addresses every name of it alike
        return {signed_key(folder): {name: url.query for name, url in signed.items()}}

    def lock_location(self, name: str) -> str:
        """What a lock pins for this folder once `name` (its manifest) is in it: the store's URL, or
        with push --public the folder's public https URL, or with push --presign the manifest's
        presigned URL, checked first by reading `name` through it with no credentials (a lock must
        not name a URL its readers cannot open)."""
        if self.presign is not None and self.backend is not None:
            signed = self._presigned(name, self.presign)
            _check_anonymous(signed, self.describe(name), self.backend)
            return signed
        if not self.public or self.backend is None:
            return self.url
        folder = self.public_url()
        assert folder is not None
        _check_anonymous(join_url(folder, name), self.describe(name), self.backend)
        return folder


def _check_anonymous(url: str, what: str, backend: str) -> None:
    """Refuse when `url` does not answer a GET without credentials."""
    import requests

    try:
        with requests.get(url, headers={"Range": "bytes=0-0"}, stream=True, timeout=(10, 60)) as response:
            status = response.status_code
    except requests.RequestException as e:
        msg = f"{what}: cannot check its public URL {redact(url)} ({type(e).__name__}); check the network and push again"
        raise TransientStoreError(msg) from e
    if status in (200, 206):
        return
    how = ("a bucket policy that allows s3:GetObject to everyone (Principal \"*\") on arn:aws:s3:::BUCKET/PREFIX/*, "
           "with the bucket's Block Public Access off for policies" if backend == "s3" else
           "`gcloud storage buckets add-iam-policy-binding gs://BUCKET --member=allUsers --role=roles/storage.objectViewer`")
    msg = (f"--public: {redact(url)} is not readable without credentials (HTTP {status}); make the prefix public "
           f"({how}) and push again, or push without --public and give readers credentials")
    raise StoreAuthError(msg)


class _Progress:
    """put_file's fsspec callback as push's on_bytes: bytes reported as they go up, the rest at the end."""

    def __init__(self, on_bytes: Callable[[int], None] | None) -> None:
        self.on_bytes = on_bytes
        self.sent = 0

    def callback(self) -> Any:
        from fsspec.callbacks import Callback

        outer = self

        class Reported(Callback):
            def call(self, *args: Any, **kwargs: Any) -> None:
                outer.report(int(self.value or 0))

        return Reported()

    def report(self, value: int) -> None:
        if self.on_bytes and value > self.sent:
            self.on_bytes(value - self.sent)
            self.sent = value

    def finish(self, size: int) -> None:
        self.report(size)


def _quiet(name: str) -> None:
    """The backend's own logger, left unset by the application, stays quiet below CRITICAL: it logs
    every refused request with a traceback, which prebake reports itself in one line."""
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)
