"""A local HTTP server that speaks the Google Drive wire protocol prebake uses, with faults on request.

It is a test double of the network, never of prebake's own code: the real client libraries
(google-api-python-client, google-auth, gdown's confirm-page parser, requests) talk to it.
Shapes follow ../shared/reference/google-drive-protocol.md:

    POST /token                                     OAuth token endpoint (service-account JWT or refresh grant)
    GET  /drive/v3/files?q=...                      files.list ('X' in parents, name=, mimeType=, trashed=,
                                                    appProperties has { key='k' and value='v' })
    GET  /drive/v3/files/ID[?alt=media]             files.get: metadata JSON, or media with Range -> 206
    POST /drive/v3/files                            files.create, metadata only (folders)
    POST /drive/v3/files/ID/permissions             permissions.create (type=anyone -> public)
    POST /upload/drive/v3/files?uploadType=resumable  resumable session -> 200 + Location
    PUT  <Location>                                 chunks: Content-Range bytes a-b/total; 308 + Range until done;
                                                    bytes */total is a status query; non-final chunks 256 KiB multiples
    GET  /uc?export=download&id=ID                  303 -> /download?id=ID&export=download (drive.usercontent)
    GET  /download?id=ID...                         the file with Content-Disposition, Range honoured; files above
                                                    `confirm_above` bytes first get the virus-scan form; private
                                                    files 302 to /ServiceLogin

Faults (`server.faults[name] = times`; each use counts down): api_rate_limit (403 userRateLimitExceeded),
too_many_requests (429), server_error (500), media_quota (403 downloadQuotaExceeded), public_quota
(the "Too many users" page), reset_download (body cut after `reset_after` bytes), stall_download (body
stops after `reset_after` bytes, the connection held open), endless_download (no Content-Length, random
bytes until the client leaves; both end by themselves within FAULT_SECONDS), ignore_range (200 and
the whole body), html_instead (200 text/html where the file was expected), reset_upload (the connection
closes halfway through a chunk; what arrived is kept, rounded down to 256 KiB), token_refused (the token
endpoint answers invalid_grant). `server.fault_skip[name] = n` lets n eligible requests through first.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FOLDER = "application/vnd.google-apps.folder"
FAULT_SECONDS = 30.0  # the longest a stalled or endless download lasts
ENDLESS_BYTES = 256 * 1024 * 1024  # the most an endless download sends
CHUNK_UNIT = 256 * 1024
QUOTA_TEXT = (
    "Too many users have viewed or downloaded this file recently. Please try accessing the file again later. "
    "If the file you are trying to access is particularly large or is shared with many people, it may take up "
    "to 24 hours to be able to view or download the file."
)


@dataclass
class DriveFile:
    id: str
    name: str
    mime_type: str = "application/octet-stream"
    parents: list[str] = field(default_factory=list)
    app_properties: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    public: bool = False
    trashed: bool = False
    modified: int = 0

    def resource(self) -> dict:
        out = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": list(self.parents),
            "trashed": self.trashed,
            "modifiedTime": f"2026-01-01T00:00:00.{self.modified:06d}Z",
        }
        if self.app_properties:
            out["appProperties"] = dict(self.app_properties)
        if self.mime_type != FOLDER:
            out["size"] = str(len(self.data))
            out["md5Checksum"] = hashlib.md5(self.data).hexdigest()  # noqa: S324 - Drive's own field
            out["sha256Checksum"] = hashlib.sha256(self.data).hexdigest()
        return out


@dataclass
class UploadSession:
    metadata: dict
    total: int | None
    target: str | None = None  # files.update of this id
    received: bytearray = field(default_factory=bytearray)


class DriveServer:
    """`with DriveServer() as drive:`; `drive.base` is the root both the API and public paths live under."""

    def __init__(self, confirm_above: int = 1024 * 1024, reset_after: int = 100_000) -> None:
        self.files: dict[str, DriveFile] = {}
        self.sessions: dict[str, UploadSession] = {}
        self.tokens: set[str] = set()
        self.faults: dict[str, int] = {}
        self.fault_skip: dict[str, int] = {}  # let this many eligible requests pass before a fault applies
        self.confirm_above = confirm_above
        self.reset_after = reset_after
        self.upload_bytes = 0  # media bytes received in upload chunks
        self.media_bytes = 0  # bytes sent as file content
        self.requests: list[str] = []
        self.ranges: list[str] = []  # Range headers of media requests, in order
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> DriveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    # ------------------------------------------------------------ state helpers for tests

    def new_id(self) -> str:
        return f"{next(self._ids):04d}" + uuid.uuid4().hex[:24]

    def add_file(self, name: str, data: bytes = b"", parent: str | None = None, mime_type: str | None = None,
                 public: bool = False, **app_properties: str) -> DriveFile:
        with self.lock:
            f = DriveFile(self.new_id(), name, mime_type or "application/octet-stream", [parent] if parent else [],
                          dict(app_properties), data, public, modified=next(self._clock))
            self.files[f.id] = f
            return f

    def add_folder(self, name: str = "packs", parent: str | None = None, public: bool = False) -> DriveFile:
        return self.add_file(name, parent=parent, mime_type=FOLDER, public=public)

    def is_public(self, f: DriveFile) -> bool:
        seen = set()
        while f is not None and f.id not in seen:
            if f.public:
                return True
            seen.add(f.id)
            f = self.files.get(f.parents[0]) if f.parents else None
        return False

    def take(self, fault: str) -> bool:
        with self.lock:
            left = self.faults.get(fault, 0)
            if left <= 0:
                return False
            if self.fault_skip.get(fault, 0) > 0:
                self.fault_skip[fault] -= 1
                return False
            self.faults[fault] = left - 1
            return True

    def children(self, folder: str) -> list[DriveFile]:
        return [f for f in self.files.values() if folder in f.parents and not f.trashed]


# ---------------------------------------------------------------- the q language (the subset Drive clients send)

_CLAUSE = re.compile(
    r"\s*(?:'(?P<parent>[^']*)'\s+in\s+parents"
    r"|(?P<field>name|mimeType)\s*=\s*'(?P<value>(?:[^'\\]|\\.)*)'"
    r"|trashed\s*=\s*(?P<trashed>true|false)"
    r"|appProperties\s+has\s+\{\s*key\s*=\s*'(?P<key>[^']*)'\s+and\s+value\s*=\s*'(?P<pvalue>[^']*)'\s*\})\s*"
)


def _matcher(q: str):
    tests = []
    rest = q
    while rest.strip():
        m = _CLAUSE.match(rest)
        if not m:
            raise ValueError(f"unsupported q: {rest!r}")
        if m["parent"] is not None:
            tests.append(lambda f, p=m["parent"]: p in f.parents)
        elif m["field"] is not None:
            attr = "name" if m["field"] == "name" else "mime_type"
            value = m["value"].replace("\\'", "'")
            tests.append(lambda f, a=attr, v=value: getattr(f, a) == v)
        elif m["trashed"] is not None:
            tests.append(lambda f, t=m["trashed"] == "true": f.trashed == t)
        else:
            tests.append(lambda f, k=m["key"], v=m["pvalue"]: f.app_properties.get(k) == v)
        rest = rest[m.end():]
        if rest.strip():
            if not rest.lstrip().startswith("and "):
                raise ValueError(f"unsupported q: {rest!r}")
            rest = rest.lstrip()[4:]
    return lambda f: all(t(f) for t in tests)


# ---------------------------------------------------------------- the handler


def _handler(drive: DriveServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        # ---------------------------------------------------- plumbing

        def _send(self, code: int, body: bytes = b"", content_type: str = "application/json; charset=UTF-8",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, code: int, obj: dict, headers: dict[str, str] | None = None) -> None:
            self._send(code, json.dumps(obj).encode(), headers=headers)

        def _error(self, code: int, reason: str, message: str, domain: str = "global", **extra: str) -> None:
            err = {"domain": domain, "reason": reason, "message": message, **extra}
            self._json(code, {"error": {"code": code, "message": message, "errors": [err]}})

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _drain(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            while n > 0:
                got = self.rfile.read(min(n, 1 << 20))
                if not got:
                    break
                n -= len(got)

        def _cut(self) -> None:
            """Drop the connection without a proper end, like a reset in the middle of a transfer."""
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer ") and auth[7:] in drive.tokens:
                return True
            self._drain()
            self._error(401, "authError", "Request had invalid authentication credentials.", location="Authorization")
            return False

        def _api_faults(self) -> bool:
            if drive.take("api_rate_limit"):
                self._drain()
                self._error(403, "userRateLimitExceeded", "User rate limit exceeded.", domain="usageLimits")
                return True
            if drive.take("too_many_requests"):
                self._drain()
                self._error(429, "rateLimitExceeded", "Rate limit exceeded.", domain="usageLimits")
                return True
            if drive.take("server_error"):
                self._drain()
                self._error(500, "backendError", "Backend Error")
                return True
            return False

        def _route(self) -> tuple[str, dict[str, str]]:
            parsed = urllib.parse.urlsplit(self.path)
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
            with drive.lock:
                drive.requests.append(f"{self.command} {self.path}")
            return parsed.path, query

        # ---------------------------------------------------- verbs

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            path, query = self._route()
            if path in ("/uc", "/open"):
                return self._uc(query)
            if path == "/download":
                return self._public_download(query)
            if path == "/ServiceLogin":
                return self._send(200, b"<html><head><title>Google Drive: Sign-in</title></head><body>Sign in</body></html>",
                                  "text/html; charset=utf-8")
            if not path.startswith("/drive/v3/files"):
                return self._error(404, "notFound", f"Not Found: {path}")
            if not self._authorized() or self._api_faults():
                return None
            if path == "/drive/v3/files":
                return self._list(query)
            file_id = path.split("/")[4]
            f = drive.files.get(file_id)
            if f is None or f.trashed:
                return self._error(404, "notFound", f"File not found: {file_id}.", location="fileId")
            if query.get("alt") == "media":
                if drive.take("media_quota"):
                    return self._error(403, "downloadQuotaExceeded",
                                       "The download quota for this file has been exceeded.", domain="usageLimits")
                return self._media(f)
            return self._json(200, f.resource())

        def do_POST(self) -> None:  # noqa: N802
            path, query = self._route()
            if path == "/token":
                body = urllib.parse.parse_qs(self._body().decode())
                grant = body.get("grant_type", [""])[0]
                if drive.take("token_refused"):
                    return self._json(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
                if grant not in ("urn:ietf:params:oauth:grant-type:jwt-bearer", "refresh_token"):
                    return self._json(400, {"error": "unsupported_grant_type"})
                token = "ya29.fake-" + uuid.uuid4().hex
                drive.tokens.add(token)
                return self._json(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})
            if path.startswith("/upload/drive/v3/files") and "upload_id" in query:
                return self._chunk(query)
            if not self._authorized() or self._api_faults():
                return None
            if path == "/upload/drive/v3/files" and query.get("uploadType") == "resumable":
                return self._start_upload(json.loads(self._body() or b"{}"), None)
            if path == "/drive/v3/files":
                meta = json.loads(self._body() or b"{}")
                f = drive.add_file(meta.get("name", "Untitled"), parent=(meta.get("parents") or [None])[0],
                                   mime_type=meta.get("mimeType"), **meta.get("appProperties", {}))
                return self._json(200, f.resource())
            m = re.fullmatch(r"/drive/v3/files/([^/]+)/permissions", path)
            if m:
                perm = json.loads(self._body() or b"{}")
                f = drive.files.get(m[1])
                if f is None:
                    return self._error(404, "notFound", f"File not found: {m[1]}.")
                if perm.get("type") == "anyone":
                    f.public = True
                return self._json(200, {"kind": "drive#permission", "id": "anyoneWithLink", **perm})
            self._drain()
            return self._error(400, "badRequest", f"unsupported POST {path}")

        def do_PATCH(self) -> None:  # noqa: N802
            path, query = self._route()
            if not self._authorized() or self._api_faults():
                return None
            m = re.fullmatch(r"/upload/drive/v3/files/([^/]+)", path)
            if m and query.get("uploadType") == "resumable":
                if m[1] not in drive.files:
                    self._drain()
                    return self._error(404, "notFound", f"File not found: {m[1]}.")
                return self._start_upload(json.loads(self._body() or b"{}"), m[1])
            self._drain()
            return self._error(400, "badRequest", f"unsupported PATCH {path}")

        def do_PUT(self) -> None:  # noqa: N802
            path, query = self._route()
            if "upload_id" in query:
                return self._chunk(query)
            self._drain()
            return self._error(400, "badRequest", f"unsupported PUT {path}")

        # ---------------------------------------------------- API pieces

        def _list(self, query: dict[str, str]) -> None:
            try:
                match = _matcher(query.get("q", ""))
            except ValueError as e:
                return self._error(400, "invalid", str(e), location="q")
            found = sorted((f for f in drive.files.values() if match(f)), key=lambda f: -f.modified
                           if "modifiedTime desc" in query.get("orderBy", "") else f.modified)
            start = int(query.get("pageToken") or 0)
            size = int(query.get("pageSize") or 100)
            page = found[start:start + size]
            out: dict = {"kind": "drive#fileList", "files": [f.resource() for f in page]}
            if start + size < len(found):
                out["nextPageToken"] = str(start + size)
            return self._json(200, out)

        def _start_upload(self, meta: dict, target: str | None) -> None:
            total = self.headers.get("X-Upload-Content-Length")
            upload_id = uuid.uuid4().hex
            drive.sessions[upload_id] = UploadSession(meta, int(total) if total else None, target)
            where = f"/upload/drive/v3/files{'/' + target if target else ''}?uploadType=resumable&upload_id={upload_id}"
            return self._send(200, b"", headers={"Location": drive.base + where})

        def _chunk(self, query: dict[str, str]) -> None:
            session = drive.sessions.get(query["upload_id"])
            if session is None:
                self._drain()
                return self._error(404, "notFound", "Upload session not found or expired.")
            m = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", self.headers.get("Content-Range", ""))
            length = int(self.headers.get("Content-Length") or 0)
            if m is None:
                self._drain()
                return self._error(400, "badRequest", "Invalid Content-Range.")
            if m[3] != "*":
                session.total = int(m[3])
            if m[1] is None:  # status query
                self._drain()
                return self._progress(session)
            start, end = int(m[1]), int(m[2])
            if end - start + 1 != length:
                self._drain()
                return self._error(400, "badRequest", "Content-Range does not match Content-Length.")
            final = session.total is not None and end + 1 == session.total
            if not final and length % CHUNK_UNIT:
                self._drain()
                return self._error(400, "badRequest", "Invalid request. The number of bytes uploaded is required to be a multiple of 262144 bytes.")
            if start > len(session.received):
                self._drain()
                return self._error(400, "badRequest", "Content-Range starts after the bytes the server has.")
            if drive.take("reset_upload"):
                got = self.rfile.read(length // 2)
                drive.upload_bytes += len(got)
                data = bytes(session.received[:start]) + got
                del session.received[:]
                session.received += data[: len(data) // CHUNK_UNIT * CHUNK_UNIT]
                return self._cut()
            data = self.rfile.read(length)
            drive.upload_bytes += len(data)
            del session.received[start:]
            session.received += data
            if final and len(session.received) == session.total:
                return self._finish(query["upload_id"], session)
            return self._progress(session)

        def _progress(self, session: UploadSession) -> None:
            if session.total is not None and len(session.received) == session.total and session.total > 0:
                return self._finish(next(k for k, v in drive.sessions.items() if v is session), session)
            headers = {"Range": f"bytes=0-{len(session.received) - 1}"} if session.received else {}
            return self._send(308, b"", "text/plain", headers)

        def _finish(self, upload_id: str, session: UploadSession) -> None:
            meta, data = session.metadata, bytes(session.received)
            with drive.lock:
                drive.sessions.pop(upload_id, None)
            if session.target:
                f = drive.files[session.target]
                f.data, f.modified = data, next(drive._clock)
                f.name = meta.get("name", f.name)
                f.app_properties.update(meta.get("appProperties", {}))
            else:
                f = drive.add_file(meta.get("name", "Untitled"), data, (meta.get("parents") or [None])[0],
                                   meta.get("mimeType"), **meta.get("appProperties", {}))
            return self._json(200, f.resource())

        # ---------------------------------------------------- bytes out

        def _media(self, f: DriveFile, extra: dict[str, str] | None = None) -> None:
            if drive.take("html_instead"):
                page = b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>" \
                       b"<p>Something went wrong.</p></body></html>"
                return self._send(200, page, "text/html; charset=utf-8")
            if drive.take("endless_download"):
                return self._endless()
            data, size = f.data, len(f.data)
            start, end, code = 0, size - 1, 200
            with drive.lock:
                drive.ranges.append(self.headers.get("Range", ""))
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if m and not drive.take("ignore_range"):
                start = int(m[1])
                end = min(int(m[2]) if m[2] else size - 1, size - 1)
                if start >= size:
                    return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                code = 206
            headers = {"Accept-Ranges": "bytes", **(extra or {})}
            if code == 206:
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            self.send_response(code)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start + 1))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                return None
            cut = drive.reset_after if drive.take("reset_download") else None
            stall = drive.reset_after if cut is None and drive.take("stall_download") else None
            view = memoryview(data)[start:end + 1]
            sent = 0
            step = 1 << 20
            try:
                while sent < len(view):
                    if stall is not None and sent >= stall:
                        self.wfile.flush()
                        drive.stopping.wait(FAULT_SECONDS)
                        return self._cut()
                    n = min(step, len(view) - sent) if cut is None else min(step, cut - sent)
                    if stall is not None:
                        n = min(n, stall - sent)
                    if n <= 0:
                        return self._cut()
                    self.wfile.write(view[sent:sent + n])
                    sent += n
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                with drive.lock:
                    drive.media_bytes += sent
            return None

        def _endless(self) -> None:
            """A 200 whose body ignores the file: no Content-Length, random bytes until the client leaves."""
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", 'attachment; filename="endless"')
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            block, sent, deadline = os.urandom(1 << 18), 0, time.monotonic() + FAULT_SECONDS
            try:
                while sent < ENDLESS_BYTES and time.monotonic() < deadline and not drive.stopping.is_set():
                    self.wfile.write(block)
                    sent += len(block)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with drive.lock:
                    drive.media_bytes += sent

        def _uc(self, query: dict[str, str]) -> None:
            file_id = query.get("id", "")
            if file_id not in drive.files:
                return self._send(404, b"<html><title>Google Drive - Page Not Found</title></html>", "text/html")
            target = f"{drive.base}/download?id={file_id}&export=download"
            return self._send(303, b"", "text/html", {"Location": target})

        def _public_download(self, query: dict[str, str]) -> None:
            f = drive.files.get(query.get("id", ""))
            if f is None or f.trashed or f.mime_type == FOLDER:
                return self._send(404, b"<html><title>Not Found</title><body>Error 404 (Not Found)</body></html>", "text/html")
            if not drive.is_public(f):
                return self._send(302, b"", "text/html", {"Location": f"{drive.base}/ServiceLogin?continue=/download"})
            if drive.take("public_quota"):
                page = ("<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>\n"
                        "<p class=\"uc-error-caption\">Sorry, you can&#39;t view or download this file at this time.</p>\n"
                        f"<p class=\"uc-error-subcaption\">{QUOTA_TEXT}</p>\n</body></html>\n")
                return self._send(200, page.encode(), "text/html; charset=utf-8")
            if len(f.data) > drive.confirm_above and query.get("confirm") != "t":
                form = (
                    "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>\n"
                    f"<p class=\"uc-warning-caption\">Google Drive can&#39;t scan this file for viruses.</p>\n"
                    f"<form id=\"download-form\" action=\"{drive.base}/download\" method=\"get\">"
                    "<input type=\"submit\" id=\"uc-download-link\" value=\"Download anyway\"/>"
                    f"<input type=\"hidden\" name=\"id\" value=\"{f.id}\"><input type=\"hidden\" name=\"export\" value=\"download\">"
                    f"<input type=\"hidden\" name=\"confirm\" value=\"t\"><input type=\"hidden\" name=\"uuid\" value=\"{uuid.uuid4()}\">"
                    "</form>\n</body></html>\n"
                )
                return self._send(200, form.encode(), "text/html; charset=utf-8",
                                  {"Set-Cookie": "NID=fake-nid; Path=/; HttpOnly"})
            quoted = urllib.parse.quote(f.name)
            return self._media(f, {
                "Content-Disposition": f"attachment; filename=\"{f.name}\"; filename*=UTF-8''{quoted}",
                "Last-Modified": formatdate(usegmt=True),
            })

    return Handler


# ---------------------------------------------------------------- a plain static server, for comparisons


class FolderServer:
    """Serves a folder over plain HTTP with Range (the same socket code as DriveServer, for fair benchmarks)."""

    def __init__(self, folder: Path) -> None:
        files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        drive = DriveServer()
        self._drive = drive
        for name, data in files.items():
            drive.files[name] = DriveFile(name, name, data=data)
        inner = drive.httpd.RequestHandlerClass

        class Plain(inner):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:  # noqa: N802
                f = drive.files.get(self.path.strip("/").split("/")[-1])
                if f is None:
                    return self._send(404, b"not found", "text/plain")
                return self._media(f)

        drive.httpd.RequestHandlerClass = Plain
        self.base = drive.base

    def __enter__(self) -> FolderServer:
        self._drive.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._drive.__exit__(*exc)


def service_account_info(token_uri: str) -> dict:
    """A service-account key file with a freshly made RSA key, for google-auth's real JWT grant."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {
        "type": "service_account",
        "project_id": "prebake-test",
        "private_key_id": base64.b16encode(uuid.uuid4().bytes).decode().lower(),
        "private_key": pem.decode(),
        "client_email": "pusher@prebake-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
