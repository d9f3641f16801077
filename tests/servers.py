"""A real HTTP server on 127.0.0.1 serving a folder, with switches for the faults tests need.

Used by the tests and by bench/restore.py. It is a stand-in for the network, never for prebake:
prebake's real HTTP code (requests, urllib3's Retry, Range resumes) talks to it over TCP.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_PIECE = 256 * 1024
FAULT_SECONDS = 30.0
"""The longest a hanging, trickling or endless response lasts: every server loop ends by itself."""
ENDLESS_BYTES = 256 * 1024 * 1024
"""The most an endless body sends, so a client that does not stop reading cannot fill the memory."""


class RateLimit:
    """A token bucket shared by every connection: the server's whole output is held to `rate`."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + n / self.rate
            wait = self._next - now
        if wait > 0:
            time.sleep(wait)


@dataclass
class Faults:
    """Switches a test flips; each `*_once` fault fires on the first matching request only."""

    drop_after: dict[str, int] = field(default_factory=dict)
    ignore_range: bool = False
    html_instead: set[str] = field(default_factory=set)
    status: dict[str, int] = field(default_factory=dict)
    status_times: dict[str, int] = field(default_factory=dict)
    corrupt_once: set[str] = field(default_factory=set)
    corrupt_always: set[str] = field(default_factory=set)
    rate: RateLimit | None = None
    connection_rate: float | None = None
    """Each response on its own held to this many bytes/s, as Drive and CDNs cap each connection."""
    hang_after: dict[str, int] = field(default_factory=dict)
    """Once per name: send that many body bytes, then nothing, holding the connection open."""
    trickle: dict[str, float] = field(default_factory=dict)
    """Once per name: send the body one byte every that many seconds."""
    endless: set[str] = field(default_factory=set)
    """Ignore the file's length: no Content-Length, random bytes until the client leaves."""
    token: str | None = None
    """When set, a request without `token=<token>` in its query is refused with 403."""


class FolderServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, folder: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.folder = folder
        self.faults = Faults()
        self.stopping = threading.Event()
        self.requests: Counter[str] = Counter()
        self.bytes_sent = 0
        self.sending = 0
        self.most_sending = 0
        """How many bodies were being sent at once, at most."""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> FolderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join()

    def handle_error(self, request, client_address) -> None:
        """A client that closes its connection (a restore that stops a request at the end of its
        range, or a test that cuts one) is not the server's error; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def count(self, name: str, sent: int) -> None:
        with self._lock:
            self.requests[name] += 1
            self.bytes_sent += sent

    def count_bytes(self, sent: int) -> None:
        with self._lock:
            self.bytes_sent += sent

    def body_started(self, started: bool) -> None:
        with self._lock:
            self.sending += 1 if started else -1
            self.most_sending = max(self.most_sending, self.sending)


class _Handler(BaseHTTPRequestHandler):
    server: FolderServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet in tests
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        server, faults = self.server, self.server.faults
        relative = self.path.split("?", 1)[0].lstrip("/")
        path = server.folder / relative
        name = path.name
        if faults.token is not None and f"token={faults.token}" not in self.path.partition("?")[2].split("&"):
            self._plain(403, b"a token is required\n")
            return
        if name in faults.status and faults.status_times.get(name, 1) > 0:
            faults.status_times[name] = faults.status_times.get(name, 1) - 1
            self._plain(faults.status[name], b"refused by the test server\n")
            return
        if name in faults.html_instead:
            self._plain(200, b"<!DOCTYPE html><html><body>Sign in to continue</body></html>", "text/html; charset=utf-8")
            return
        if not path.is_file() or ".." in relative.split("/"):
            self._plain(404, b"not found\n")
            return
        if name in faults.endless:
            self._endless(body)
            return
        total = path.stat().st_size
        flip_at = -1
        if name in faults.corrupt_always or name in faults.corrupt_once:
            faults.corrupt_once.discard(name)
            flip_at = total // 2
        start, end, status = 0, total, HTTPStatus.OK
        ranged = self.headers.get("Range")
        if ranged and not faults.ignore_range:
            first, _, last = ranged.removeprefix("bytes=").partition("-")
            start = int(first)
            end = min(int(last) + 1, total) if last else total
            if start >= total:
                self._plain(416, b"")
                return
            status = HTTPStatus.PARTIAL_CONTENT
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if name.endswith(".json") else "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{total}")
        self.end_headers()
        if not body:
            return
        drop = faults.drop_after.pop(name, None)
        hang = faults.hang_after.pop(name, None)
        trickle = faults.trickle.pop(name, None)
        sent, stalled = 0, False
        server.count(name, 0)  # before the body: a client that has it all sees its request counted
        own_rate = RateLimit(faults.connection_rate) if faults.connection_rate else None
        server.body_started(True)
        try:
            with open(path, "rb") as f:
                f.seek(start)
                position = start
                while position < end:
                    piece = f.read(min(_PIECE, end - position))
                    if start <= flip_at < position + len(piece) and flip_at >= position:
                        i = flip_at - position
                        piece = piece[:i] + bytes([piece[i] ^ 0xFF]) + piece[i + 1 :]
                    if drop is not None and sent + len(piece) > drop:
                        self.wfile.write(piece[: max(0, drop - sent)])
                        sent = drop
                        self.close_connection = True
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        return
                    if hang is not None and sent + len(piece) > hang:
                        self.wfile.write(piece[: max(0, hang - sent)])
                        self.wfile.flush()
                        sent, stalled = hang, True
                        break
                    if trickle is not None:
                        sent += self._trickle(piece, trickle)
                        self.close_connection = True
                        return
                    if faults.rate is not None:
                        faults.rate.take(len(piece))
                    if own_rate is not None:
                        own_rate.take(len(piece))
                    self.wfile.write(piece)
                    sent += len(piece)
                    position += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            server.body_started(False)
            server.count_bytes(sent)
        if stalled:
            server.stopping.wait(FAULT_SECONDS)
            self.close_connection = True

    def _trickle(self, data: bytes, every: float) -> int:
        """One byte of `data` every `every` seconds, for at most FAULT_SECONDS; how many were sent."""
        deadline = time.monotonic() + FAULT_SECONDS
        for i in range(len(data)):
            if time.monotonic() > deadline or self.server.stopping.wait(every):
                return i
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
        return len(data)

    def _endless(self, body: bool) -> None:
        """A 200 with no Content-Length whose body never ends (within FAULT_SECONDS and ENDLESS_BYTES)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        sent = 0
        block = os.urandom(_PIECE)
        deadline = time.monotonic() + FAULT_SECONDS
        try:
            while body and sent < ENDLESS_BYTES and time.monotonic() < deadline and not self.server.stopping.is_set():
                self.wfile.write(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.server.count(self.path.split("?", 1)[0].rsplit("/", 1)[-1], sent)

    def _plain(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.count(self.path.rsplit("/", 1)[-1], len(body))
