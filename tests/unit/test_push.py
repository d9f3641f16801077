"""push to name-addressed stores (a local folder, an fsspec URL) and the push command line."""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from prebake.cli import main
from prebake.errors import IntegrityError, StoreNotFound, UsageError
from prebake.lock import LockedPack, load, write_lock
from prebake.manifest import Part, loads
from prebake.pack import PackOptions, pack_tree
from prebake.push import in_shared_folder, push
from prebake.restore import restore
from prebake.stores import open_destination, open_store


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in [v for v in os.environ if v.startswith("PREBAKE_")]:
        monkeypatch.delenv(var)


def make_pack(tmp_path: Path, change: str = "", name: str = "demo") -> Path:
    rng = random.Random(3)
    src = tmp_path / f"src{'' if name == 'demo' else '-' + name}"
    for i in range(8):
        path = src / "share" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(60_000))
    (src / "zz-last.txt").write_text("last " + change)
    for path in src.rglob("*"):  # tar keeps mtimes: rewriting the same bytes a second later must not change a part
        os.utime(path, (1_700_000_000, 1_700_000_000))
    out = tmp_path / f"pack{change}{'' if name == 'demo' else '-' + name}"
    pack_tree(src, out, PackOptions(name=name, version="1", target=f"/opt/{name}", part_size=100_000))
    return out


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_push_to_a_folder_then_restore_from_the_lock(tmp_path):
    pack = make_pack(tmp_path)
    lock = tmp_path / "prebake.lock"
    [result] = push([pack], [str(tmp_path / "mirror")], lock)
    assert result.locations == [str(tmp_path / "mirror" / "parts")]  # the folder every pack pushed there shares
    assert load(lock).packs[0].locations == ("mirror/parts",)  # relative to the lock: the project can move
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
    assert load(lock).packs[0].locations == (f"{url}/parts",)
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


# ---------------------------------------------------------------- the lock: one writer that merges


def test_a_second_push_of_another_pack_keeps_the_first_and_a_repush_replaces_its_entry(tmp_path):
    lock = tmp_path / "prebake.lock"
    mirror = str(tmp_path / "mirror")
    [demo] = push([make_pack(tmp_path)], [mirror], lock)
    [other] = push([make_pack(tmp_path, name="other")], [mirror], lock)
    assert [(p.name, p.digest) for p in load(lock).packs] == [("demo", demo.digest), ("other", other.digest)]
    [changed] = push([make_pack(tmp_path, "changed")], [f"memory://prebake-{uuid.uuid4().hex}"], lock)
    assert changed.digest != demo.digest
    packs = load(lock).packs
    assert [(p.name, p.digest) for p in packs] == [("demo", changed.digest), ("other", other.digest)]
    assert packs[0].locations == tuple(changed.locations)  # the old folder holds other bytes: dropped
    restore(lock, root=tmp_path / "root", progress=False)
    assert tree(tmp_path / "root" / "opt" / "demo") == tree(tmp_path / "src")


def test_the_same_pack_pushed_to_one_more_mirror_adds_the_location_first(tmp_path):
    lock = tmp_path / "prebake.lock"
    pack = make_pack(tmp_path)
    push([pack], [str(tmp_path / "mirror")], lock)
    url = f"memory://prebake-{uuid.uuid4().hex}"
    push([pack], [url], lock)
    [entry] = load(lock).packs
    assert entry.locations == (f"{url}/parts", "mirror/parts")


def test_locations_follow_the_order_of_the_destinations(tmp_path):
    lock = tmp_path / "prebake.lock"
    url = f"memory://prebake-{uuid.uuid4().hex}"
    [result] = push([make_pack(tmp_path)], [url, str(tmp_path / "mirror")], lock)
    assert load(lock).packs[0].locations == (f"{url}/parts", "mirror/parts")
    assert result.uploaded_parts == 2 * len(loads((tmp_path / "pack" / "manifest.json").read_bytes()).parts)


def test_write_lock_keeps_what_it_is_not_told_about(tmp_path):
    lock = tmp_path / "project" / "prebake.lock"
    digest = "sha256:" + "a" * 64
    outside = tmp_path / "elsewhere" / "demo"
    write_lock(lock, [LockedPack("demo", "1", digest, (str(tmp_path / "project" / "packs" / "demo"), str(outside),
                                                        "packs/also", "s3://bucket/demo"), ("LD_PRELOAD",))])
    [entry] = load(lock).packs
    assert entry.locations == ("packs/demo", str(outside), "packs/also", "s3://bucket/demo")
    write_lock(lock, [LockedPack("demo", "2", "sha256:" + "b" * 64, ("s3://bucket/demo2",))])
    [entry] = load(lock).packs
    assert (entry.version, entry.locations) == ("2", ("s3://bucket/demo2",))
    assert entry.allow_env == ("LD_PRELOAD",)  # the maintainer's choice outlives a new build
    assert not list(lock.parent.glob(".prebake.lock.*"))  # written atomically, no temporary left


def test_the_lock_command_merges_with_a_pushed_lock(tmp_path, capsys):
    lock = tmp_path / "prebake.lock"
    [demo] = push([make_pack(tmp_path)], [str(tmp_path / "mirror")], lock)
    other = make_pack(tmp_path, name="other")
    with pytest.raises(SystemExit) as exit_info:
        main(["lock", str(other), "-o", str(lock)])
    assert exit_info.value.code == 0
    assert "wrote" in capsys.readouterr().out
    packs = load(lock).packs
    assert [(p.name, p.locations) for p in packs] == [("demo", ("mirror/parts",)), ("other", ("pack-other",))]
    assert packs[0].digest == demo.digest


# ---------------------------------------------------------------- the write side of stores


def test_a_read_only_destination_is_refused_before_anything_is_uploaded(tmp_path):
    pack = make_pack(tmp_path)
    with pytest.raises(UsageError, match=r"^https://\*\*\*@example.invalid/packs/parts is read-only for prebake: push to") as info:
        push([pack], [str(tmp_path / "mirror"), "https://user:secret@example.invalid/packs"], tmp_path / "prebake.lock")
    assert "\n" not in str(info.value) and "secret" not in str(info.value) and "gdrive://FOLDER_ID" in str(info.value)
    assert not (tmp_path / "mirror").exists() and not (tmp_path / "prebake.lock").exists()


def test_read_only_store_methods_say_so():
    store = open_store("https://example.invalid/packs/demo")
    part = Part("part-000.tar.zst", 1, "0" * 64, 1, 1)
    for call in (lambda: store.has_part(part), lambda: store.put_part(part, Path("p")), lambda: store.put_manifest(b"{}")):
        with pytest.raises(UsageError, match="read-only for prebake"):
            call()


@pytest.mark.parametrize("dest", ["folder", "memory"])
def test_a_shared_folder_has_a_part_when_a_file_of_its_name_is_there_whole(tmp_path, dest):
    """In the shared folder a part's name is its sha256: a file of that name and size is the part
    (a local folder hashes it too); one cut short, or damaged on a local disk, is uploaded again."""
    pack = make_pack(tmp_path)
    target = str(tmp_path / "mirror") if dest == "folder" else f"memory://prebake-{uuid.uuid4().hex}"
    push([pack], [target], None)
    part = loads((pack / "manifest.json").read_bytes()).parts[0]
    with open_destination(target, "parts") as store:
        assert in_shared_folder(store, part)
        assert not in_shared_folder(store, replace(part, size=part.size + 1))
        assert not in_shared_folder(store, replace(part, size=part.size - 1))
        assert not in_shared_folder(store, replace(part, name="part-" + "0" * 64 + ".tar.zst"))
        if dest == "folder":
            path = tmp_path / "mirror" / "parts" / part.name
            path.write_bytes(b"x" + path.read_bytes()[1:])
        else:
            store.fs.pipe_file(f"{store.root}/{part.name}", b"cut short")
        assert not in_shared_folder(store, part)
    [again] = push([pack], [target], None)
    assert again.uploaded_parts == 1


def test_a_destination_given_as_a_file_url_is_a_folder(tmp_path):
    lock = tmp_path / "prebake.lock"
    [result] = push([make_pack(tmp_path)], [f"file://{tmp_path / 'mirror'}"], lock)
    assert result.locations == [str(tmp_path / "mirror" / "parts")] and load(lock).packs[0].locations == ("mirror/parts",)
