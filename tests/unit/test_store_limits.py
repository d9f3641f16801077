"""Stores against hostile servers: reads bounded by a limit or a part's size, a minimum transfer
rate (stalls and trickles fail fast and resume), credentials kept out of messages, and names
joined under a URL's path. Real servers on 127.0.0.1 (tests/servers.py and the Drive wire double
tests/drive_server.py) talk to prebake's real requests/urllib3 code; nothing of prebake is mocked."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import string
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prebake.errors import StoreError, StoreNotFound, TransientStoreError
from prebake.locate import manifest_location
from prebake.manifest import Part
from prebake.stores import _ranges, gdrive, join_url, open_store, redact, url_path, with_path
from prebake.stores.gdrive import GDriveStore, load_credentials
from prebake.stores.http import HttpStore
from prebake.stores.local import LocalStore

from ..drive_server import DriveServer, service_account_info
from ..servers import FolderServer

LOW = (1000, 1.0)  # bytes/s over seconds: a stall or trickle fails in about a second
PART = "part-000.tar.zst"
MANIFEST = b'{"format": "prebake-pack/1", "padding": "' + b"x" * 4000 + b'"}'
FAST = 5.0  # seconds: every failure here must come well before the servers' own 30 s bound
restore_mod = importlib.import_module("prebake.restore")  # `prebake.restore` is also the function


@pytest.fixture
def data() -> bytes:
    return os.urandom(300_000)


@pytest.fixture
def server(tmp_path: Path, data: bytes):
    (tmp_path / "www" / "app").mkdir(parents=True)
    (tmp_path / "www" / "app" / "manifest.json").write_bytes(MANIFEST)
    (tmp_path / "www" / "app" / PART).write_bytes(data)
    with FolderServer(tmp_path / "www") as served:
        yield served


def http_store(server: FolderServer, suffix: str = "") -> HttpStore:
    store = HttpStore(f"{server.url}/app{suffix}")
    store.low_speed = LOW
    return store


def drain(chunks) -> tuple[bytes, float]:
    started = time.monotonic()
    return b"".join(chunks), time.monotonic() - started


# ---------------------------------------------------------------- credentials and query strings


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:pw@h.example/p/manifest.json?token=abc&id=1&x=",
     "https://***@h.example/p/manifest.json?token=***&id=1&x=***"),
    ("https://h.example/p?X-Amz-Credential=AKIA&X-Amz-Signature=f00d",
     "https://h.example/p?X-Amz-Credential=***&X-Amz-Signature=***"),
    ("https://drive.google.com/uc?export=download&id=1AbC&resourcekey=0-k&alt=media&confirm=t",
     "https://drive.google.com/uc?export=download&id=1AbC&resourcekey=0-k&alt=media&confirm=***"),
    ("s3://KEY:SECRET@bucket/packs/app", "s3://***@bucket/packs/app"),
    ("http://127.0.0.1:8000/app#part", "http://127.0.0.1:8000/app#part"),
    ("/content/packs/a?b=c", "/content/packs/a?b=c"),  # a local path: nothing to redact
    ("s3://bucket/a?b=c#d/parts", "s3://bucket/a?b=c#d/parts"),  # '?' and '#' are part of an S3 or GCS key
    ("gs://KEY@bucket/a?token=x", "gs://***@bucket/a?token=x"),
])
def test_redact_hides_userinfo_and_query_values_but_keeps_drive_addressing(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(("base", "name", "joined"), [
    ("s3://b/h#sh", "parts", "s3://b/h#sh/parts"),
    ("s3://b/a?b", "parts", "s3://b/a?b/parts"),
    ("gs://b/x%41+y z/", "m.json", "gs://b/x%41+y z/m.json"),
    ("s3://b", "parts", "s3://b/parts"),
    ("memory://b/r#1", "parts", "memory://b/r#1/parts"),
    ("https://h.example/packs?X-Amz-Signature=f00d", "m.json", "https://h.example/packs/m.json?X-Amz-Signature=f00d"),
    ("http://h.example/packs/#frag", "m.json", "http://h.example/packs/m.json#frag"),
    ("/content/packs/a?b", "parts", "/content/packs/a?b/parts"),
])
def test_join_url_appends_to_the_path_and_an_object_key_has_no_query(base: str, name: str, joined: str) -> None:
    assert join_url(base, name) == joined


# Every character S3 allows in a key, the "special handling" ones included, '/' apart (it separates).
_KEY_CHARS = string.ascii_letters + string.digits + "!-_.*'()&$@=;:+ ,?#%^`{}[]<>~|\\\"\x7f"
_SEGMENT = st.text(st.sampled_from(_KEY_CHARS), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(scheme=st.sampled_from(["s3", "gs", "gcs", "memory"]), prefix=st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join),
       name=_SEGMENT, digest=st.text("0123456789abcdef", min_size=64, max_size=64))
def test_a_name_joined_to_an_object_prefix_splits_back_off(scheme: str, prefix: str, name: str, digest: str) -> None:
    """join_url then split (url_path, with_path, as locate reads a manifest's URL) gives back the
    prefix and the name, whatever legal characters the key holds."""
    base = f"{scheme}://bucket-1/{prefix}"
    joined = join_url(base, name)
    assert joined == f"{base}/{name}" and redact(joined) == joined
    folder, _, last = url_path(joined).rpartition("/")
    assert (folder, last) == (f"/{prefix}", name)
    assert with_path(joined, folder) == base
    assert manifest_location(join_url(base, f"manifest-{digest}.json")) == (base, f"sha256:{digest}")


def test_a_signed_url_keeps_its_token_after_the_name_and_out_of_messages(server: FolderServer, data: bytes) -> None:
    server.faults.token = "s3cret"  # the server refuses any request whose query lacks it
    store = http_store(server, "?token=s3cret")
    assert store.read_bytes("manifest.json") == MANIFEST
    assert b"".join(store.open_read(PART, 0, len(data))) == data
    assert store.describe(PART) == f"{server.url}/app/{PART}?token=***"
    with pytest.raises(StoreNotFound) as missing:
        store.read_bytes("no-such.json")
    assert f"{server.url}/app/no-such.json?token=***" in str(missing.value)
    port = server.server_address[1]
    with pytest.raises(StoreError) as refused:
        open_store(f"http://alice:hunter2@127.0.0.1:{port}/app?token=wrong").read_bytes("manifest.json")
    message = str(refused.value)
    assert f"http://***@127.0.0.1:{port}/app/manifest.json?token=***" in message
    assert "hunter2" not in message and "wrong" not in message and "alice" not in message


# ---------------------------------------------------------------- bounded reads


def test_an_endless_manifest_stops_at_the_limit_with_one_line(server: FolderServer) -> None:
    server.faults.endless.add("manifest.json")  # no Content-Length, random bytes up to 256 MiB
    started = time.monotonic()
    with pytest.raises(StoreError) as too_big:
        http_store(server, "?token=s3cret").read_bytes("manifest.json", limit=1 << 20)
    assert time.monotonic() - started < FAST
    message = str(too_big.value)
    assert "\n" not in message
    assert f"{server.url}/app/manifest.json?token=***" in message and "1048576 bytes" in message
    assert "check the location" in message


@pytest.mark.parametrize("kind", ["local", "memory", "http"])
def test_read_bytes_takes_a_file_of_exactly_the_limit_and_refuses_one_byte_more(kind: str, server: FolderServer,
                                                                                 tmp_path: Path) -> None:
    if kind == "local":
        store = LocalStore(tmp_path / "www" / "app")
    elif kind == "memory":
        store = open_store(f"memory://limits-{os.getpid()}/app")
        store.fs.pipe_file(f"/limits-{os.getpid()}/app/manifest.json", MANIFEST)
    else:
        store = http_store(server)
    assert store.read_bytes("manifest.json", limit=len(MANIFEST)) == MANIFEST
    with pytest.raises(StoreError, match=f"manifest.json is larger than {len(MANIFEST) - 1} bytes"):
        store.read_bytes("manifest.json", limit=len(MANIFEST) - 1)


def test_an_endless_part_is_read_no_further_than_its_size(server: FolderServer, data: bytes) -> None:
    server.faults.endless.add(PART)
    store = http_store(server)
    body, seconds = drain(store.open_read(PART, 0, len(data)))
    assert len(body) == len(data) and seconds < FAST
    assert len(b"".join(store.open_read(PART, 1000, len(data)))) == len(data) - 1000


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_a_file_longer_than_the_part_size_is_cut_at_the_size(kind: str, tmp_path: Path, data: bytes) -> None:
    if kind == "local":
        (tmp_path / "folder").mkdir()
        (tmp_path / "folder" / PART).write_bytes(data)
        store = LocalStore(tmp_path / "folder")
    else:
        store = open_store(f"memory://cut-{os.getpid()}")
        store.fs.pipe_file(f"/cut-{os.getpid()}/{PART}", data)
    assert b"".join(store.open_read(PART, 10, 4096)) == data[10:4096]


# ---------------------------------------------------------------- stalls and trickles


def test_a_part_that_stops_mid_body_fails_within_the_window(server: FolderServer, data: bytes) -> None:
    server.faults.hang_after[PART] = 100_000  # then nothing, the connection held open
    got = bytearray()
    started = time.monotonic()
    with pytest.raises(TransientStoreError) as stalled:
        for chunk in http_store(server).open_read(PART, 0, len(data)):
            got += chunk
    assert time.monotonic() - started < FAST
    assert bytes(got) == data[:100_000]
    message = str(stalled.value)
    assert message.startswith(f"{server.url}/app/{PART}: slower than 1000 bytes/s for 1 s (stalled or throttled); ")
    assert "resumes" in message


def test_a_trickle_fails_although_a_byte_keeps_arriving(server: FolderServer, data: bytes) -> None:
    server.faults.trickle[PART] = 0.2  # a byte every 0.2 s: a read timeout alone never fires
    started = time.monotonic()
    with pytest.raises(TransientStoreError, match=r"slower than 1000 bytes/s for 1 s \(stalled or throttled\)"):
        drain(http_store(server).open_read(PART, 0, len(data)))
    assert time.monotonic() - started < FAST


def test_a_trickled_or_cut_manifest_says_to_run_again_and_promises_no_resume(server: FolderServer) -> None:
    store = http_store(server)
    server.faults.trickle["manifest.json"] = 0.2
    with pytest.raises(TransientStoreError) as slow:
        store.read_bytes("manifest.json", limit=1 << 20)
    server.faults.drop_after["manifest.json"] = 1000
    with pytest.raises(TransientStoreError) as cut:
        store.read_bytes("manifest.json", limit=1 << 20)
    assert "slower than 1000 bytes/s" in str(slow.value)
    assert "cut after 1000 bytes" in str(cut.value)
    for error in (slow.value, cut.value):
        assert "resum" not in str(error).lower() and "run the same command again" in str(error)


def test_a_stalled_part_resumes_where_it_stopped(server: FolderServer, data: bytes, monkeypatch) -> None:
    monkeypatch.setattr(restore_mod, "_BACKOFF", 0.01)
    server.faults.hang_after[PART] = 100_000
    part = Part(PART, len(data), "", 1, len(data))
    body, seconds = drain(restore_mod.read_part(http_store(server), part, retries=2))
    assert body == data and seconds < FAST
    assert server.requests[PART] == 2, "one stalled transfer, then one ranged request for the rest"
    assert server.bytes_sent < 2 * len(data) - 100_000


def test_a_slow_consumer_is_not_a_slow_server(server: FolderServer, data: bytes, monkeypatch) -> None:
    """Only time spent waiting on the network counts: extraction may take longer than the window."""
    monkeypatch.setattr(_ranges, "CHUNK", 16 * 1024)
    store = http_store(server)
    store.low_speed = (10_000_000, 0.5)  # far above what arrives per second of wall clock below
    got = bytearray()
    for i, chunk in enumerate(store.open_read(PART, 0, len(data))):
        got += chunk
        if i == 0:
            time.sleep(0.7)
    assert bytes(got) == data


# ---------------------------------------------------------------- Google Drive


@pytest.fixture
def drive(monkeypatch):
    monkeypatch.setattr(gdrive, "BACKOFF", 0.001)
    with DriveServer(reset_after=50_000) as server:
        monkeypatch.setenv("PREBAKE_GDRIVE_API_BASE", server.base)
        monkeypatch.setenv("PREBAKE_GDRIVE_PUBLIC_BASE", server.base)
        yield server


@pytest.fixture
def shared(drive, data):
    """A public pack folder with a manifest and one part, as `prebake push --public` leaves it."""
    folder = drive.add_folder("demo", public=True)
    manifest = drive.add_file("manifest.json", MANIFEST, parent=folder.id, mime_type="application/json")
    part = drive.add_file(PART, data, parent=folder.id)
    return manifest.id, {f"gdrive:{folder.id}": part.id}


def drive_store(drive: DriveServer, manifest_id: str, tmp_path: Path, with_credentials: bool) -> GDriveStore:
    credentials = None
    if with_credentials:
        key = tmp_path / "sa.json"
        key.write_text(json.dumps(service_account_info(drive.base + "/token")))
        credentials = load_credentials(str(key))
    store = GDriveStore.from_url(f"gdrive://{manifest_id}", credentials)
    store.low_speed = LOW
    return store


@pytest.mark.parametrize("with_credentials", [True, False])
def test_drive_web_page_instead_of_a_part_names_the_part_and_gives_no_folder_advice(
        drive, shared, data, tmp_path, with_credentials: bool) -> None:
    manifest_id, ids = shared
    drive.faults["html_instead"] = 10**6
    store = drive_store(drive, manifest_id, tmp_path, with_credentials)
    with pytest.raises(StoreError) as page:
        drain(store.open_read(PART, 0, len(data), ids))
    message = str(page.value)
    assert f"gdrive://{ids[next(iter(ids))]} ({PART})" in message and "web page" in message
    assert "folder" not in message  # the location is a single shared file: there is no folder to share


@pytest.mark.parametrize("with_credentials", [True, False])
def test_drive_stalled_download_fails_within_the_window_naming_the_part(drive, shared, data, tmp_path,
                                                                        with_credentials: bool) -> None:
    manifest_id, ids = shared
    drive.faults["stall_download"] = 1  # 50,000 bytes, then nothing
    store = drive_store(drive, manifest_id, tmp_path, with_credentials)
    started = time.monotonic()
    with pytest.raises(TransientStoreError, match=rf"\({PART}\): slower than 1000 bytes/s for 1 s"):
        drain(store.open_read(PART, 0, len(data), ids))
    assert time.monotonic() - started < FAST


def test_drive_endless_download_is_cut_at_the_size_and_at_the_limit(drive, shared, data, tmp_path) -> None:
    manifest_id, ids = shared
    drive.faults["endless_download"] = 2
    store = drive_store(drive, manifest_id, tmp_path, with_credentials=False)
    body, seconds = drain(store.open_read(PART, 0, len(data), ids))
    assert len(body) == len(data) and seconds < FAST
    with pytest.raises(StoreError, match=rf"gdrive://{manifest_id} \(manifest.json\) is larger than 1000 bytes"):
        store.read_bytes("manifest.json", limit=1000)


def test_drive_retry_counts_in_logs_and_message_agree(drive, shared, tmp_path, caplog) -> None:
    manifest_id, _ = shared
    drive.faults["too_many_requests"] = 10**6
    store = drive_store(drive, manifest_id, tmp_path, with_credentials=True)
    with caplog.at_level(logging.WARNING, logger=gdrive.__name__), pytest.raises(TransientStoreError) as gave_up:
        store.read_bytes("manifest.json")
    retries = [re.search(r"\(retry (\d) of (\d)\)$", r.getMessage()) for r in caplog.records]
    assert [m.groups() for m in retries if m] == [(str(i), "5") for i in range(1, 6)]
    assert not any("gave up" in r.getMessage() or "after" in r.getMessage() for r in caplog.records)
    assert "gave up after 5 retries" in str(gave_up.value)
    asked = [r for r in drive.requests if r.startswith(f"GET /drive/v3/files/{manifest_id}")]
    assert len(asked) == 6, "the first try and 5 retries"
