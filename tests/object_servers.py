"""Real object-store servers on 127.0.0.1 for the tests, and a TCP proxy that breaks connections.

- MotoServer: moto's S3 server (`python -m moto.server`) in its own process, so its IAM checks
  (switched on with enforce_auth) and its state belong to it alone.
- GcsEmulator: gcp-storage-emulator (the GCS JSON API, uploads and downloads) in its own process,
  in memory. It checks no credentials: refusals are played by the proxy's canned answers.
- FaultProxy: a byte-level TCP proxy in front of either, for what the servers cannot do themselves:
  drop a connection after N bytes in one direction, or answer every request with a canned HTTP
  response (a 401, a 403, S3's wrong-region redirect). It also notes each request's method, path and
  headers.

These stand in for the network and the services, never for prebake's own code: s3fs, gcsfs,
botocore and aiohttp speak their real protocols to them.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
from typing import NamedTuple

import requests

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before answering")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer at {url} within {timeout} s")


class _Process:
    """A server in its own process, stopped (and waited for) on exit."""

    process: subprocess.Popen
    url: str

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class MotoServer(_Process):
    """moto's S3 (and IAM) server. With auth off (the start) every request is allowed and signed
    with anything; enforce_auth() turns IAM checks on, for the users made with user()."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.admin = ("AKIAADMINADMINADMIN0", "admin-secret")
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_until_up(f"{self.url}/moto-api/", self.process, "moto_server")
        except BaseException:
            self.stop()
            raise

    def client(self, service: str = "s3", key: tuple[str, str] | None = None):
        import boto3

        key_id, secret = key or self.admin
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=key_id, aws_secret_access_key=secret)

    def user(self, name: str, actions: list[str]) -> tuple[str, str]:
        """A new IAM user allowed `actions` on every resource; its (access key id, secret)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        if actions:
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
            iam.put_user_policy(UserName=name, PolicyName="prebake-test", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def enforce_auth(self) -> None:
        """From now on every request needs a known key whose policy allows it."""
        requests.post(f"{self.url}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()

    def public_read(self, bucket: str, prefix: str) -> None:
        """A bucket policy that lets anyone GET the objects under `prefix` (no ACLs: the way AWS
        recommends, and what a bucket with ACLs disabled allows)."""
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*"}]}
        self.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


_GCS_EMULATOR = r"""
import json, re, sys
from gcp_storage_emulator import server
from gcp_storage_emulator.__main__ import main

# The emulator reads a multipart/related upload (what gcsfs sends for files under 5 MiB) with the
# email module, which takes a file's last byte for half of a CRLF when it is a CR, and drops it.
# GCS cuts at the boundary exactly; so does this.
original = server._read_data

def read_data(handler, query):
    content_type = handler.headers.get("Content-Type") or ""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/related") or not boundary:
        return original(handler, query)
    raw = server._decode_raw_data(server._read_raw_data(handler), handler)
    sections = raw.split(b"--" + boundary[1].encode())[1:3]
    parsed = []
    for section in sections:
        newline = b"\r\n" if section.startswith(b"\r\n") else b"\n"
        head, _, body = section[len(newline):].partition(newline * 2)
        fields = dict(line.split(b":", 1) for line in head.split(newline) if b":" in line)
        kind = {k.strip().lower(): v.strip() for k, v in fields.items()}.get(b"content-type", b"application/octet-stream")
        parsed.append((kind.decode().split(";")[0], body.removesuffix(newline)))
    return {"meta": json.loads(parsed[0][1]), "content": parsed[1][1], "content-type": parsed[1][0]}

server._read_data = read_data
main(sys.argv[1:])
"""


class GcsEmulator(_Process):
    """gcp-storage-emulator in memory (with its multipart upload parser made exact)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-c", _GCS_EMULATOR, "start", "--host", HOST, "--port", str(self.port),
                                         "--in-memory", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_until_up(f"{self.url}/", self.process, "gcp-storage-emulator")
        except BaseException:
            self.stop()
            raise

    def make_bucket(self, name: str) -> None:
        response = requests.post(f"{self.url}/storage/v1/b", params={"project": "test"}, json={"name": name}, timeout=10)
        response.raise_for_status()


_REQUEST = re.compile(rb"(GET|PUT|POST|HEAD|DELETE|PATCH) (\S+) HTTP/1\.[01]\r\n((?:[^\r\n]+\r\n)*)\r\n")


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]


def _requests_in(data: bytes) -> list[Request]:
    """The request heads that start in `data` (a body that happens to look like one is not expected)."""
    found = []
    for method, path, head in _REQUEST.findall(data):
        fields = (line.split(b":", 1) for line in head.split(b"\r\n") if b":" in line)
        found.append(Request(method.decode(), path.decode(), {k.strip().lower().decode(): v.strip().decode() for k, v in fields}))
    return found


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of `upstream` (host, port).

    cut(after, times, direction): the next `times` connections that carry more than `after` bytes
    in `direction` ("down": server to client, "up": client to server) are reset after exactly
    `after` of them. canned: while set, every new connection gets this HTTP response to its first
    request and is closed. requests: every request seen going up (method, path, headers)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server((HOST, 0))
        self.url = f"http://{HOST}:{self.listener.getsockname()[1]}"
        self.canned: bytes | None = None
        self.requests: list[Request] = []
        self.cuts_done = 0
        self._cut: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closing = False
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cut(self, after: int, times: int = 1, direction: str = "down") -> None:
        with self._lock:
            self._cut[direction] = (after, times)

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below (a close alone would not)
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            for each in list(self._sockets):
                with contextlib.suppress(OSError):
                    each.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.add(client)
            if self.canned is not None:
                threading.Thread(target=self._answer, args=(client, self.canned), daemon=True).start()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                break_both(client)
                continue
            with self._lock:
                self._sockets.add(server)
            pair = {"up": 0, "down": 0}
            threading.Thread(target=self._pump, args=(client, server, "up", pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, "down", pair), daemon=True).start()

    def _take_cut(self, direction: str, total: int) -> int | None:
        """Where to cut this connection, if it is one of those to cut and went past the mark."""
        with self._lock:
            after, times = self._cut.get(direction, (0, 0))
            if times <= 0 or total <= after:
                return None
            self._cut[direction] = (after, times - 1)
            self.cuts_done += 1
            return after

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str, counted: dict[str, int]) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if direction == "up":
                    self.requests.extend(_requests_in(data))
                before = counted[direction]
                counted[direction] += len(data)
                at = self._take_cut(direction, counted[direction])
                if at is not None:
                    sink.sendall(data[: max(0, at - before)])
                    break_both(source, sink)
                    return
                sink.sendall(data)
        except OSError:
            pass
        for each in (source, sink):
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                each.close()

    def _answer(self, client: socket.socket, response: bytes) -> None:
        """Read one request's head, send the canned response, then drain what the client still sends."""
        client.settimeout(5)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    break
                head += data
            self.requests.extend(_requests_in(head))
            client.sendall(response)
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)
            while client.recv(65536):
                pass
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.close()


def break_both(*sockets: socket.socket) -> None:
    """Drop the connections at once, as a cut link looks to both ends. shutdown() first: a plain
    close() from this thread would wait for the other pump's recv() on the same socket to return,
    and neither end would notice anything."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


def http_response(status: int, reason: str, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 response that closes its connection."""
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
             "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def s3_error(status: int, code: str, message: str, **extra: str) -> bytes:
    """An S3 REST error response, as AWS sends it."""
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"{fields}<RequestId>TEST</RequestId></Error>").encode()
    headers = {"x-amz-bucket-region": extra["Region"]} if "Region" in extra else {}
    return http_response(status, "Error", body, "application/xml", headers)


def gcs_error(status: int, message: str, reason: str) -> bytes:
    """A GCS JSON API error response."""
    body = json.dumps({"error": {"code": status, "message": message, "errors": [{"message": message, "domain": "global",
                                                                                  "reason": reason}]}}).encode()
    return http_response(status, "Error", body, "application/json; charset=UTF-8")
