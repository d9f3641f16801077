"""Restore over real HTTP from a local server: resumes, retries and refusals."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from prebake.errors import IntegrityError, StoreAuthError, StoreError, StoreNotFound
from prebake.lock import Lock, LockedPack, dump
from prebake.restore import marker_path, restore
from prebake.stores.http import HttpStore

from ..conftest import make_awkward_tree, pack
from ..servers import FolderServer


@pytest.fixture
def served(tmp_path: Path):
    src = make_awkward_tree(tmp_path / "src", big_file_size=3_000_000)
    manifest = pack(src, tmp_path / "www" / "app", part_size=400_000)
    with FolderServer(tmp_path / "www") as server:
        yield server, manifest, src


def _same_big_file(root: Path, src: Path) -> bool:
    return (root / "opt/app/big.bin").read_bytes() == (src / "big.bin").read_bytes()


@pytest.mark.parametrize("form", ["folder", "folder/", "manifest"])
def test_restore_from_a_pack_url(tmp_path: Path, served, form: str) -> None:
    server, manifest, src = served
    url = f"{server.url}/app" + {"folder": "", "folder/": "/", "manifest": "/manifest.json"}[form]
    [result] = restore(url, root=tmp_path / "root", progress=False)
    assert result.digest == manifest.digest
    assert _same_big_file(tmp_path / "root", src)


def test_a_connection_dropped_mid_part_resumes_with_range(tmp_path: Path, served) -> None:
    server, manifest, src = served
    big = max(manifest.parts, key=lambda p: p.size)
    server.faults.drop_after[big.name] = big.size // 3
    restore(f"{server.url}/app", root=tmp_path / "root", progress=False)
    assert _same_big_file(tmp_path / "root", src)
    assert server.requests[big.name] == 2, "one cut transfer, then one ranged request for the rest"
    assert server.bytes_sent < manifest.packed_size + big.size // 2, "the resume must not fetch the whole part again"


def test_a_server_that_ignores_range_still_gives_a_correct_restore(tmp_path: Path, served) -> None:
    server, manifest, src = served
    big = max(manifest.parts, key=lambda p: p.size)
    server.faults.drop_after[big.name] = big.size // 2
    server.faults.ignore_range = True
    restore(f"{server.url}/app", root=tmp_path / "root", progress=False)
    assert _same_big_file(tmp_path / "root", src)


@pytest.fixture
def blob_server(tmp_path: Path, monkeypatch):
    """A 3 MB file served over a link slower than the reader (30 MB/s), with ranges and windows of
    256 KiB so that it makes many ranges: (server, its bytes)."""
    import prebake.stores._ranges as ranges

    monkeypatch.setattr(ranges, "SEGMENT", 256 * 1024)
    monkeypatch.setattr(ranges, "MIN_SEGMENT", 256 * 1024)
    monkeypatch.setattr(ranges, "PROBE", 256 * 1024)
    blob = os.urandom(3_000_000)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "blob").write_bytes(blob)
    with FolderServer(tmp_path / "www") as server:
        server.faults.connection_rate = 30e6
        yield server, blob


def test_parallel_ranged_requests_reassemble_a_large_part_in_order(blob_server) -> None:
    server, blob = blob_server
    with HttpStore(server.url, parallel_ranges=4) as store:  # the link is slower than the reader: ranges
        assert b"".join(store.open_read("blob", 0, len(blob))) == blob
        assert b"".join(store.open_read("blob", 1_000_001, len(blob))) == blob[1_000_001:]
    assert server.requests["blob"] > 10


def test_a_slow_server_that_ignores_range_is_read_on_one_connection(blob_server) -> None:
    """A server that answers a range with the whole file (a 200) would send every range's bytes
    from the file's start: however slow the link, the file comes over the one request, once."""
    server, blob = blob_server
    server.faults.ignore_range = True
    with HttpStore(server.url, parallel_ranges=4) as store:
        assert b"".join(store.open_read("blob", 0, len(blob))) == blob
    assert server.requests["blob"] == 1 and server.bytes_sent == len(blob)


def test_a_link_that_caps_each_connection_is_filled_by_several_at_once(tmp_path: Path) -> None:
    """Drive and CDNs cap each connection: a pack of two parts, restored with 2 workers, still has
    about PREBAKE_CONNECTIONS (8) bodies in flight, each part fetched as ranges."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        (src / f"blob-{i}").write_bytes(os.urandom(6_000_000))
    manifest = pack(src, tmp_path / "www" / "p", part_size=6_500_000, min_parts=1)
    assert len([p for p in manifest.parts if p.bytes > 1_000_000]) == 2  # and the folder's own part
    with FolderServer(tmp_path / "www") as server:
        server.faults.connection_rate = 8e6
        restore(f"{server.url}/p", root=tmp_path / "root", progress=False, jobs=2)
    assert server.most_sending >= 6, server.most_sending
    for i in range(2):
        assert (tmp_path / "root" / "opt" / "app" / f"blob-{i}").read_bytes() == (src / f"blob-{i}").read_bytes()


def test_a_part_corrupted_in_transit_is_fetched_again(tmp_path: Path, served) -> None:
    server, manifest, src = served
    victim = manifest.parts[0]
    server.faults.corrupt_once.add(victim.name)
    restore(f"{server.url}/app", root=tmp_path / "root", progress=False)
    assert server.requests[victim.name] == 2
    assert _same_big_file(tmp_path / "root", src)


def test_a_part_always_corrupt_fails_and_is_not_installed(tmp_path: Path, served) -> None:
    server, manifest, _ = served
    victim = manifest.parts[1]
    server.faults.corrupt_always.add(victim.name)
    with pytest.raises(IntegrityError, match=f"{victim.name} is corrupt.*fetched 3 times"):
        restore(f"{server.url}/app", root=tmp_path / "root", progress=False)
    assert not marker_path(tmp_path / "root", "app").exists()


def test_an_html_page_instead_of_a_part_is_never_extracted(tmp_path: Path, served) -> None:
    server, manifest, _ = served
    server.faults.html_instead.add(manifest.parts[0].name)
    with pytest.raises(StoreError, match="HTML page instead of the file"):
        restore(f"{server.url}/app", root=tmp_path / "root", progress=False, jobs=1)
    assert not marker_path(tmp_path / "root", "app").exists()


def test_server_errors_are_retried_then_succeed(tmp_path: Path, served) -> None:
    server, manifest, src = served
    server.faults.status[manifest.parts[0].name] = 503
    server.faults.status_times[manifest.parts[0].name] = 2
    restore(f"{server.url}/app", root=tmp_path / "root", progress=False)
    assert _same_big_file(tmp_path / "root", src)


@pytest.mark.parametrize(("status", "error", "hint"), [(404, StoreNotFound, "not found"), (403, StoreAuthError, "access refused")])
def test_refusals_become_one_clear_error(tmp_path: Path, served, status: int, error: type, hint: str) -> None:
    server, manifest, _ = served
    server.faults.status["manifest.json"] = status
    with pytest.raises(error, match=hint) as caught:
        restore(f"{server.url}/app", root=tmp_path / "root", progress=False)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("signature", [
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20250102T030405Z&X-Amz-Expires=3600&X-Amz-Signature=abc",
    "X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20250102T030405Z&X-Goog-Expires=3600&X-Goog-Signature=abc",
])
def test_an_expired_presigned_url_says_when_it_expired_and_what_to_ask_for(tmp_path: Path, served, signature: str) -> None:
    """A refused presigned URL whose time is up says so (rather than "make the file public"); the
    signature stays out of the message. One still valid, refused, gets the plain refusal."""
    server, manifest, _ = served
    server.faults.status["manifest.json"], server.faults.status_times["manifest.json"] = 403, 2
    with pytest.raises(StoreAuthError) as caught:
        restore(f"{server.url}/app/manifest.json?{signature}", root=tmp_path / "root", progress=False)
    message = str(caught.value)
    assert "presigned URL expired at 2025-01-02 04:04 UTC (HTTP 403); ask for a lock pushed again with --presign" in message
    assert "abc" not in message and "\n" not in message
    fresh = signature.replace("20250102T030405Z", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    with pytest.raises(StoreAuthError, match="access refused") as caught:
        restore(f"{server.url}/app/manifest.json?{fresh}", root=tmp_path / "root", progress=False)
    assert "expired" not in str(caught.value)


def test_a_lock_whose_first_location_is_dead_uses_the_next(tmp_path: Path, served) -> None:
    server, manifest, src = served
    lock = Lock((LockedPack("app", "1.0", manifest.digest, ("http://127.0.0.1:9/nothing-listens-here", f"{server.url}/app")),))
    dump(lock, tmp_path / "prebake.lock")
    [result] = restore(tmp_path / "prebake.lock", root=tmp_path / "root", progress=False)
    assert result.location == f"{server.url}/app"
    assert _same_big_file(tmp_path / "root", src)


def test_a_lock_refuses_a_pack_whose_digest_changed(tmp_path: Path, served) -> None:
    server, manifest, _ = served
    lock = Lock((LockedPack("app", "1.0", "sha256:" + "0" * 64, (f"{server.url}/app",)),))
    dump(lock, tmp_path / "prebake.lock")
    with pytest.raises(IntegrityError, match="the lock pins sha256:0000"):
        restore(tmp_path / "prebake.lock", root=tmp_path / "root", progress=False)
    assert not (tmp_path / "root/opt").exists()


def test_a_lock_served_over_http_with_relative_locations(tmp_path: Path, served) -> None:
    server, manifest, src = served
    dump(Lock((LockedPack("app", "1.0", manifest.digest, ("app",)),)), tmp_path / "www" / "prebake.lock")
    [result] = restore(f"{server.url}/prebake.lock", root=tmp_path / "root", progress=False)
    assert result.location == f"{server.url}/app" and result.digest == manifest.digest
    assert _same_big_file(tmp_path / "root", src)


def test_a_signed_lock_url_keeps_its_token_for_every_pack_and_every_message(tmp_path: Path, served) -> None:
    """`https://host/x/prebake.lock?token=T`: the lock, the manifests and the parts are all asked
    with the token (the server refuses anything without it), and no message or marker shows it."""
    server, manifest, src = served
    dump(Lock((LockedPack("app", "1.0", manifest.digest, ("app",)),)), tmp_path / "www" / "prebake.lock")
    server.faults.token = "s3cret"
    [result] = restore(f"{server.url}/prebake.lock?token=s3cret", root=tmp_path / "root", progress=False)
    assert _same_big_file(tmp_path / "root", src)
    assert "s3cret" not in result.location and "s3cret" not in marker_path(tmp_path / "root", "app").read_text()
    [again] = restore(f"{server.url}/app/manifest.json?token=s3cret", root=tmp_path / "root2", progress=False)
    assert not again.skipped and "s3cret" not in again.summary()
