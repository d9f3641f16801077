"""push to name-addressed stores (a local folder, an fsspec URL) and the push command line."""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from pathlib import Path

import pytest

from prebake.cli import main
from prebake.errors import IntegrityError, StoreNotFound, UsageError
from prebake.lock import load
from prebake.manifest import loads
from prebake.pack import PackOptions, pack_tree
from prebake.push import push
from prebake.restore import restore
from prebake.stores import open_store


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in [v for v in os.environ if v.startswith("PREBAKE_")]:
        monkeypatch.delenv(var)


def make_pack(tmp_path: Path, change: str = "") -> Path:
    rng = random.Random(3)
    src = tmp_path / "src"
    for i in range(8):
        path = src / "share" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(60_000))
    (src / "zz-last.txt").write_text("last " + change)
    for path in src.rglob("*"):  # tar keeps mtimes: rewriting the same bytes a second later must not change a part
        os.utime(path, (1_700_000_000, 1_700_000_000))
    out = tmp_path / f"pack{change}"
    pack_tree(src, out, PackOptions(name="demo", version="1", target="/opt/demo", part_size=100_000))
    return out


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_push_to_a_folder_then_restore_from_the_lock(tmp_path):
    pack = make_pack(tmp_path)
    lock = tmp_path / "prebake.lock"
    [result] = push([pack], [str(tmp_path / "mirror")], lock)
    assert result.locations == ["mirror/demo"] and load(lock).packs[0].locations == ("mirror/demo",)
    restore(lock, root=tmp_path / "root", progress=False)
    assert tree(tmp_path / "root" / "opt" / "demo") == tree(tmp_path / "src")
    [again] = push([pack], [str(tmp_path / "mirror")], lock)
    assert again.uploaded_parts == 0 and again.reused_parts == result.uploaded_parts


def test_fsspec_push_twice_and_after_a_change(tmp_path):
    url = f"memory://prebake-{uuid.uuid4().hex}"
    lock = tmp_path / "prebake.lock"
    pack = make_pack(tmp_path)
    [first] = push([pack], [url], lock)
    assert first.uploaded_parts == len(loads((pack / "manifest.json").read_bytes()).parts) >= 3
    [second] = push([pack], [url], lock)
    assert second.uploaded_parts == 0 and second.uploaded_bytes == 0
    changed = make_pack(tmp_path, "changed")
    [third] = push([changed], [url], lock)
    assert third.uploaded_parts == 1
    assert load(lock).packs[0].locations == (f"{url}/demo",)
    restore(lock, root=tmp_path / "root", progress=False)
    assert tree(tmp_path / "root" / "opt" / "demo") == tree(tmp_path / "src")


def test_fsspec_store_maps_missing_files(tmp_path):
    store = open_store(f"memory://nothing-{uuid.uuid4().hex}")
    with pytest.raises(StoreNotFound, match="does not exist"):
        store.read_bytes("manifest.json")


def test_an_unknown_scheme_names_the_missing_backend():
    with pytest.raises(UsageError, match="no fsspec backend for nosuchscheme://"):
        open_store("nosuchscheme://bucket/packs")


def test_a_damaged_local_pack_is_not_pushed(tmp_path):
    pack = make_pack(tmp_path)
    part = next(pack.glob("part-*.tar.zst"))
    part.write_bytes(b"x" + part.read_bytes()[1:])
    with pytest.raises(IntegrityError, match="does not match its manifest"):
        push([pack], [str(tmp_path / "mirror")], None)
    assert not (tmp_path / "mirror").exists()


def test_push_command(tmp_path, capsys):
    pack = make_pack(tmp_path)
    lock = tmp_path / "prebake.lock"
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(pack), "--to", str(tmp_path / "mirror"), "-o", str(lock)])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "pushed demo 1" in out and f"wrote {lock}" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(tmp_path / "nope"), "--to", str(tmp_path / "mirror"), "--no-lock"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("prebake: error: cannot read")
