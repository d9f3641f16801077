"""Google Drive store and push, against tests/drive_server.py driven by the real client libraries
(google-api-python-client + google-auth for the API path, gdown's confirm-page parser + requests for
the public path). Every injected fault shows what the user sees and that nothing corrupt is installed."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drive_server import DriveServer, service_account_info  # noqa: E402

restore_mod = __import__("importlib").import_module("prebake.restore")
from prebake import stores  # noqa: E402
from prebake.cli import main  # noqa: E402
from prebake.errors import StoreAuthError, StoreError, StoreNotFound, UsageError  # noqa: E402
from prebake.lock import Lock, LockedPack, dump  # noqa: E402
from prebake.manifest import loads  # noqa: E402
from prebake.pack import PackOptions, pack_tree  # noqa: E402
from prebake.push import push  # noqa: E402
from prebake.restore import marker_path, restore  # noqa: E402
from prebake.stores import _ranges as ranges  # noqa: E402
from prebake.stores import gdrive  # noqa: E402

PART = 300_000  # parts of one or more 100 KB files


@pytest.fixture(autouse=True)
def _fast_and_isolated(monkeypatch, tmp_path):
    for var in [v for v in os.environ if v.startswith("PREBAKE_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no gdown cookies from the developer's machine
    monkeypatch.setattr(gdrive, "BACKOFF", 0.001)
    monkeypatch.setattr(gdrive, "UPLOAD_CHUNK", 256 * 1024)
    monkeypatch.setattr(ranges, "CHUNK", 16 * 1024)  # a reset lands mid-transfer, not before the first chunk
    monkeypatch.setattr(restore_mod, "_BACKOFF", 0.001)


@pytest.fixture
def drive(monkeypatch):
    with DriveServer(confirm_above=256 * 1024, reset_after=50_000) as server:
        monkeypatch.setenv("PREBAKE_GDRIVE_API_BASE", server.base)
        monkeypatch.setenv("PREBAKE_GDRIVE_PUBLIC_BASE", server.base)
        yield server


@pytest.fixture
def creds(drive, tmp_path, monkeypatch):
    path = tmp_path / "secrets" / "sa.json"
    path.parent.mkdir()
    path.write_text(json.dumps(service_account_info(drive.base + "/token")))
    monkeypatch.setenv("PREBAKE_GDRIVE_CREDENTIALS", str(path))
    return path


def make_tree(root: Path, files: int = 12, size: int = 100_000, seed: int = 0) -> Path:
    import random

    rng = random.Random(seed)
    for i in range(files):
        path = root / "lib" / f"d{i % 3}" / f"f{i:02d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    (root / "bin").mkdir(exist_ok=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\necho hi\n")
    return root


def make_pack(tmp_path: Path, name: str = "demo", src: Path | None = None) -> Path:
    src = src or make_tree(tmp_path / "src")
    out = tmp_path / f"pack-{name}"
    pack_tree(src, out, PackOptions(name=name, version="1", target="/opt/demo", part_size=PART))
    return out


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def pack(tmp_path):
    out = make_pack(tmp_path)
    assert len(loads((out / "manifest.json").read_bytes()).parts) >= 3
    return out


@pytest.fixture
def pushed(drive, creds, pack, tmp_path):
    folder = drive.add_folder("packs")
    lock = tmp_path / "prebake.lock"
    push([pack], [f"gdrive://{folder.id}"], lock, public=True)
    return lock


def assert_restored(root: Path, tmp_path: Path) -> None:
    assert tree_digest(root / "opt" / "demo") == tree_digest(tmp_path / "src")


def assert_nothing_installed(root: Path) -> None:
    assert not marker_path(root, "demo").exists()
    written = [p for p in (root / "opt").rglob("*") if p.is_file()] if (root / "opt").exists() else []
    assert written == []


# ---------------------------------------------------------------- the happy paths


def test_push_then_restore_through_the_api(pushed, drive, tmp_path):
    drive.requests.clear()
    [result] = restore(pushed, root=tmp_path / "root", progress=False)
    assert_restored(tmp_path / "root", tmp_path)
    assert any("alt=media" in r for r in drive.requests)
    assert not any(r.startswith("GET /uc") for r in drive.requests)
    assert result.location.startswith("gdrive://")


def test_restore_without_credentials_goes_through_the_confirm_page(pushed, drive, tmp_path, monkeypatch):
    monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    drive.requests.clear()
    drive.confirm_above = 64 * 1024  # below every part: public downloads meet the virus-scan page
    restore(pushed, root=tmp_path / "root", progress=False)
    assert_restored(tmp_path / "root", tmp_path)
    assert any("confirm=t" in r and "uuid=" in r for r in drive.requests), "gdown's form parsing was not exercised"
    assert not any("/drive/v3/" in r for r in drive.requests)


def test_restore_a_folder_with_credentials(pushed, drive, tmp_path):
    pack_folder = next(f for f in drive.files.values() if f.name == "demo")
    restore(f"gdrive://{pack_folder.id}", root=tmp_path / "root", progress=False)
    assert_restored(tmp_path / "root", tmp_path)


def test_second_push_uploads_no_part_bytes(pushed, drive, pack, tmp_path):
    before, lock_before = drive.upload_bytes, pushed.read_text()
    folder = next(f for f in drive.files.values() if f.name == "packs")
    [result] = push([pack], [f"gdrive://{folder.id}"], pushed, public=True)
    assert drive.upload_bytes == before
    assert result.uploaded_parts == 0 and result.reused_parts == len(loads((pack / "manifest.json").read_bytes()).parts)
    assert pushed.read_text() == lock_before


def test_push_after_a_change_uploads_only_the_changed_part(pushed, drive, pack, tmp_path):
    folder = next(f for f in drive.files.values() if f.name == "packs")
    (tmp_path / "src" / "bin" / "tool").write_text("#!/bin/sh\necho changed\n")  # sorts last: only the last part changes
    old = loads((pack / "manifest.json").read_bytes())
    changed = make_pack(tmp_path, "demo", tmp_path / "src")
    new = loads((changed / "manifest.json").read_bytes())
    [changed_part] = [q for q in new.parts if q.sha256 not in {p.sha256 for p in old.parts}]
    assert len(old.parts) == len(new.parts)
    before = drive.upload_bytes
    [result] = push([changed], [f"gdrive://{folder.id}"], pushed, public=True)
    assert result.uploaded_parts == 1
    assert drive.upload_bytes - before == changed_part.size + len((changed / "manifest.json").read_bytes())
    restore(pushed, root=tmp_path / "root2", progress=False)
    assert_restored(tmp_path / "root2", tmp_path)


def test_push_records_drive_ids_in_the_manifest(pushed, pack, drive):
    manifest = loads((pack / "manifest.json").read_bytes())
    for part in manifest.parts:
        [(key, file_id)] = part.store_ids.items()
        assert key.startswith("gdrive:")
        assert drive.files[file_id].app_properties["sha256"] == part.sha256


# ---------------------------------------------------------------- faults that recover


def test_reset_mid_upload_resumes_where_drive_stopped(drive, creds, pack, tmp_path):
    folder = drive.add_folder("packs")
    drive.faults["reset_upload"] = 3
    push([pack], [f"gdrive://{folder.id}"], tmp_path / "prebake.lock")
    assert drive.faults["reset_upload"] == 0
    total = sum(p.size for p in loads((pack / "manifest.json").read_bytes()).parts)
    assert total < drive.upload_bytes < total + 3 * 256 * 1024 + 10_000  # resent at most the cut chunks
    assert any("bytes */" in r or "PUT" in r for r in drive.requests)
    restore(tmp_path / "prebake.lock", root=tmp_path / "root", progress=False)
    assert_restored(tmp_path / "root", tmp_path)


@pytest.mark.parametrize("fault", ["api_rate_limit", "too_many_requests", "server_error"])
def test_rate_limits_are_retried_with_backoff(pushed, drive, tmp_path, fault):
    drive.faults[fault] = 3
    restore(pushed, root=tmp_path / "root", progress=False)
    assert drive.faults[fault] == 0
    assert_restored(tmp_path / "root", tmp_path)


@pytest.mark.parametrize("with_credentials", [True, False])
def test_reset_mid_download_resumes_with_range(pushed, drive, tmp_path, monkeypatch, with_credentials):
    if not with_credentials:
        monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    drive.faults["reset_download"] = 2
    drive.fault_skip["reset_download"] = 1  # not the manifest: parts
    drive.ranges.clear()
    restore(pushed, root=tmp_path / "root", progress=False, jobs=1)
    assert drive.faults["reset_download"] == 0
    assert any(r.startswith("bytes=") and r != "bytes=0-" for r in drive.ranges), drive.ranges
    assert_restored(tmp_path / "root", tmp_path)


def test_a_server_that_ignores_range_is_skipped_not_spliced(pushed, drive, tmp_path, monkeypatch):
    monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    drive.faults["reset_download"] = 1
    drive.fault_skip["reset_download"] = 1  # not the manifest: a part
    drive.faults["ignore_range"] = 5
    restore(pushed, root=tmp_path / "root", progress=False, jobs=1)
    assert drive.faults["reset_download"] == 0 and drive.faults["ignore_range"] < 5
    assert_restored(tmp_path / "root", tmp_path)


# ---------------------------------------------------------------- faults the user must act on


def test_quota_page_is_one_line_with_the_fix_and_installs_nothing(pushed, drive, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    drive.faults["public_quota"] = 10**6
    with pytest.raises(SystemExit) as exit_info:
        main(["restore", str(pushed), "--root", str(tmp_path / "root"), "-q"])
    assert exit_info.value.code == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("prebake: error: ")
    assert "too many users have downloaded this file recently" in err[0] and "Fix:" in err[0]
    assert_nothing_installed(tmp_path / "root")


def test_api_download_quota(pushed, drive, tmp_path):
    drive.faults["media_quota"] = 10**6
    with pytest.raises(StoreError, match="download quota"):
        restore(pushed, root=tmp_path / "root", progress=False)
    assert_nothing_installed(tmp_path / "root")


def test_html_instead_of_the_file_is_never_written(pushed, drive, tmp_path, monkeypatch):
    monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    drive.faults["html_instead"] = 10**6
    with pytest.raises(StoreError, match="web page .* instead of the file"):
        restore(pushed, root=tmp_path / "root", progress=False)
    assert_nothing_installed(tmp_path / "root")


@pytest.mark.parametrize("with_credentials", [True, False])
def test_html_instead_of_a_part_is_never_written(pushed, drive, tmp_path, monkeypatch, with_credentials):
    if not with_credentials:
        monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    drive.faults["html_instead"] = 10**6
    drive.fault_skip["html_instead"] = 1  # the manifest comes through; every part is a web page
    with pytest.raises(StoreError, match="web page"):
        restore(pushed, root=tmp_path / "root", progress=False)
    assert_nothing_installed(tmp_path / "root")


def test_not_shared(drive, creds, pack, tmp_path, monkeypatch):
    folder = drive.add_folder("packs")
    push([pack], [f"gdrive://{folder.id}"], tmp_path / "prebake.lock")  # not --public
    monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    with pytest.raises(StoreAuthError, match="not shared publicly.*Anyone with the link"):
        restore(tmp_path / "prebake.lock", root=tmp_path / "root", progress=False)
    assert_nothing_installed(tmp_path / "root")


@pytest.mark.parametrize("with_credentials", [True, False])
def test_not_found(drive, creds, tmp_path, monkeypatch, with_credentials):
    if not with_credentials:
        monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    with pytest.raises(StoreNotFound, match="not found on Google Drive"):
        restore("gdrive://1nosuchfileAAAAAAAAAAAAAAAAAAAAA", root=tmp_path / "root", progress=False)


def test_lock_whose_first_location_is_dead(pushed, drive, tmp_path, monkeypatch):
    monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    good = pushed.read_text().split('"gdrive://')[1].split('"')[0]
    digest = pushed.read_text().split('digest = "')[1].split('"')[0]
    lock = tmp_path / "mirrors.lock"
    dump(Lock((LockedPack("demo", "1", digest, ("gdrive://1deadAAAAAAAAAAAAAAAAAAAAAAAAA", "http://127.0.0.1:9/dead", f"gdrive://{good}")),)), lock)
    [result] = restore(lock, root=tmp_path / "root", progress=False)
    assert result.location == f"gdrive://{good}"
    assert_restored(tmp_path / "root", tmp_path)


def test_quota_on_the_first_location_falls_through_to_a_mirror(drive, creds, pack, tmp_path, monkeypatch):
    folder = drive.add_folder("packs")
    lock = tmp_path / "prebake.lock"
    push([pack], [f"gdrive://{folder.id}", str(tmp_path / "mirror")], lock, public=True)
    monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    drive.faults["public_quota"] = 10**6
    [result] = restore(lock, root=tmp_path / "root", progress=False)
    assert result.location.endswith("/mirror/parts") and '"mirror/parts"' in lock.read_text()
    assert_restored(tmp_path / "root", tmp_path)


# ---------------------------------------------------------------- credentials, links, imports


def test_credentials_are_never_printed_logged_or_pushed(drive, creds, pack, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    folder = drive.add_folder("packs")
    drive.faults["api_rate_limit"] = 1
    drive.faults["reset_upload"] = 1
    main_args = ["push", str(pack), "--to", f"gdrive://{folder.id}", "-o", str(tmp_path / "prebake.lock"), "--public"]
    with pytest.raises(SystemExit) as exit_info:
        main(main_args)
    assert exit_info.value.code == 0
    secret = json.loads(creds.read_text())
    key_line = secret["private_key"].splitlines()[5]
    out = capsys.readouterr()
    seen = out.out + out.err + caplog.text + (tmp_path / "prebake.lock").read_text() + (pack / "manifest.json").read_text()
    uploaded = b"".join(f.data for f in drive.files.values())
    for token in [key_line, *drive.tokens]:
        assert token not in seen
        assert token.encode() not in uploaded


def test_push_without_credentials_explains_service_accounts(drive, pack, tmp_path):
    folder = drive.add_folder("packs")
    with pytest.raises(StoreAuthError, match="shared drive"):
        push([pack], [f"gdrive://{folder.id}"], tmp_path / "prebake.lock")


DRIVE_SPELLINGS = [
    ("gdrive://1AbC_-x", ("1AbC_-x", False)),
    ("gdrive://1AbC_-x/", ("1AbC_-x", False)),
    ("https://drive.google.com/file/d/1AbCdEf_-g/view?usp=sharing", ("1AbCdEf_-g", False)),
    ("https://drive.google.com/open?id=1AbCdEf_-g", ("1AbCdEf_-g", False)),
    ("https://drive.google.com/uc?id=1AbCdEf_-g&export=download", ("1AbCdEf_-g", False)),
    ("https://drive.google.com/drive/folders/1FoLdEr_-x?usp=sharing", ("1FoLdEr_-x", True)),
    ("https://drive.google.com/drive/u/1/folders/1FoLdEr_-x", ("1FoLdEr_-x", True)),
    ("https://drive.google.com/folderview?id=1FoLdEr_-x&usp=sharing", ("1FoLdEr_-x", True)),
    ("https://docs.google.com/uc?export=download&id=1AbCdEf_-g", ("1AbCdEf_-g", False)),
    ("https://docs.google.com/file/d/1AbCdEf_-g/edit", ("1AbCdEf_-g", False)),
    ("https://docs.google.com/folderview?id=1FoLdEr_-x", ("1FoLdEr_-x", True)),
    ("https://drive.usercontent.google.com/download?id=1AbCdEf_-g&export=download&confirm=t", ("1AbCdEf_-g", False)),
    ("https://drive.usercontent.google.com/u/0/uc?id=1AbCdEf_-g&export=download", ("1AbCdEf_-g", False)),
]


@pytest.mark.parametrize(("link", "expected"), DRIVE_SPELLINGS)
def test_drive_links(link, expected):
    """One parser for restore (open_store) and push (open_destination)."""
    assert stores.is_drive(link)
    assert stores.parse_drive(link) == expected


@pytest.mark.parametrize("location", ["https://example.com/drive/folders/1FoLdEr_-x", "s3://bucket/packs", "/mnt/drive",
                                      "http://drive.google.com.example.com/x"])
def test_other_locations_are_not_drive(location):
    assert not stores.is_drive(location)


def test_a_link_without_an_id_is_a_usage_error():
    with pytest.raises(UsageError, match="cannot find a Drive file or folder id"):
        stores.parse_drive("https://drive.google.com/drive/my-drive")
    with pytest.raises(UsageError, match="cannot find a Drive file or folder id"):
        stores.open_destination("https://docs.google.com/", "demo")


@pytest.mark.parametrize("spelling", [
    "gdrive://{id}",
    "https://drive.google.com/drive/folders/{id}?usp=sharing",
    "https://drive.google.com/drive/u/0/folders/{id}",
    "https://drive.google.com/open?id={id}",
    "https://drive.google.com/folderview?id={id}",
    "https://docs.google.com/folderview?id={id}",
])
def test_push_accepts_every_folder_spelling(drive, creds, tmp_path, spelling, monkeypatch):
    src = make_tree(tmp_path / "src", files=3, size=20_000)
    folder = drive.add_folder("packs")
    lock = tmp_path / "prebake.lock"
    [result] = push([make_pack(tmp_path, "small", src)], [spelling.format(id=folder.id)], lock, public=True)
    assert result.uploaded_parts >= 1 and result.locations[0].startswith("gdrive://")
    assert [f.name for f in drive.files.values() if f.parents == [folder.id]] == ["small"]
    monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    restore(lock, root=tmp_path / "root", progress=False)
    assert tree_digest(tmp_path / "root" / "opt" / "demo") == tree_digest(src)


@pytest.mark.parametrize("spelling", [
    "https://drive.google.com/file/d/{id}/view",
    "https://docs.google.com/uc?export=download&id={id}",
    "https://drive.usercontent.google.com/download?id={id}&export=download",
])
def test_push_to_a_file_link_says_to_use_a_folder(drive, creds, tmp_path, spelling):
    """Every Drive spelling reaches Drive (none falls through to the read-only HTTP store)."""
    src = make_tree(tmp_path / "src", files=2, size=10_000)
    file = drive.add_file("notes.txt", b"hello")
    with pytest.raises(UsageError, match="is a file, not a folder; push to a folder: gdrive://FOLDER_ID"):
        push([make_pack(tmp_path, "small", src)], [spelling.format(id=file.id)], None)


@pytest.mark.parametrize("spelling", [
    "https://drive.google.com/file/d/{id}/view?usp=sharing",
    "https://docs.google.com/uc?export=download&id={id}",
    "https://drive.usercontent.google.com/download?id={id}&export=download",
])
def test_restore_from_every_file_spelling(pushed, drive, tmp_path, monkeypatch, spelling):
    monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    manifest_id = pushed.read_text().split("gdrive://")[1].split('"')[0]
    restore(spelling.format(id=manifest_id), root=tmp_path / "root", progress=False)
    assert_restored(tmp_path / "root", tmp_path)


def test_pushing_to_drive_and_a_folder_gives_both_the_same_manifest(drive, creds, pack, tmp_path):
    folder = drive.add_folder("packs")
    mirror = tmp_path / "mirror"
    [result] = push([pack], [str(mirror), f"gdrive://{folder.id}"], tmp_path / "prebake.lock")
    on_drive = drive.files[result.locations[1].removeprefix("gdrive://")].data
    assert (mirror / "parts" / f"manifest-{result.digest[7:]}.json").read_bytes() == on_drive == (pack / "manifest.json").read_bytes()
    assert all(part.store_ids for part in loads(on_drive).parts)


def test_a_user_oauth_token_file_works_too(pushed, drive, tmp_path, monkeypatch):
    user = tmp_path / "secrets" / "user.json"
    user.write_text(json.dumps({"type": "authorized_user", "client_id": "cid.apps.googleusercontent.com",
                                "client_secret": "not-a-secret", "refresh_token": "1//refresh", "token_uri": drive.base + "/token"}))
    monkeypatch.setenv("PREBAKE_GDRIVE_CREDENTIALS", str(user))
    drive.requests.clear()
    restore(pushed, root=tmp_path / "root", progress=False)
    assert "POST /token" in drive.requests and any("alt=media" in r for r in drive.requests)
    assert_restored(tmp_path / "root", tmp_path)


def test_revoked_credentials_are_one_line(pushed, drive, tmp_path):
    drive.faults["token_refused"] = 10**6
    with pytest.raises(StoreAuthError, match="refused to issue a token"):
        restore(pushed, root=tmp_path / "root2", progress=False)
    assert_nothing_installed(tmp_path / "root2")


def test_a_public_restore_that_meets_no_page_never_imports_gdown(drive, creds, tmp_path, monkeypatch):
    """gdown and BeautifulSoup load only when Drive sends a page to parse (the restore path stays light)."""
    src = make_tree(tmp_path / "small-src", files=4, size=20_000)
    folder = drive.add_folder("small")
    lock = tmp_path / "small.lock"
    push([make_pack(tmp_path, "small", src)], [f"gdrive://{folder.id}"], lock, public=True)
    manifest_id = lock.read_text().split("gdrive://")[1].split('"')[0]
    monkeypatch.delenv("PREBAKE_GDRIVE_CREDENTIALS")
    script = ("import sys, prebake\n"
              "prebake.restore(sys.argv[1], root=sys.argv[2], progress=False)\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gdown', 'bs4')))\n")
    link = f"https://drive.google.com/file/d/{manifest_id}/view?usp=sharing"
    done = subprocess.run([sys.executable, "-c", script, link, str(tmp_path / "root")],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert tree_digest(tmp_path / "root" / "opt" / "demo") == tree_digest(src)
