"""Releases that move only what changed: part boundaries chosen by the members, parts named by
their sha256 in one shared folder per destination, and every lock ever written still restoring."""

from __future__ import annotations

import hashlib
import os
import random
import tarfile
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from prebake.errors import IntegrityError, StoreNotFound
from prebake.lock import LockedPack, load, write_lock
from prebake.manifest import MANIFEST_NAME, loads
from prebake.pack import Member, PackOptions, inventory, pack_tree, plan_parts, run_weight
from prebake.push import push
from prebake.restore import restore
from prebake.stores import open_destination
from prebake.stores.local import LocalStore

from ..servers import FolderServer

EPOCH = 1_700_000_000


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for path in [root, *root.rglob("*")]:  # tar keeps mtimes: the same bytes written again are the same member
        os.utime(path, (EPOCH, EPOCH))
    return root


def payload(seed: int = 7, packages: int = 12) -> dict[str, bytes]:
    """A site-packages-like tree: packages of modules, partly compressible."""
    rng = random.Random(seed)
    files = {}
    for p in range(packages):
        for m in range(rng.randint(5, 30)):
            size = rng.randint(200, 40_000)
            files[f"site-packages/pkg{p:02d}/mod{m:03d}.py"] = rng.randbytes(size // 3) + b"x = 1\n" * (size // 9)
        files[f"site-packages/pkg{p:02d}-1.0.dist-info/METADATA"] = f"Name: pkg{p:02d}\nVersion: 1.0\n".encode()
    return files


def make(tmp_path: Path, label: str, files: dict[str, bytes], name: str = "demo", **options) -> Path:
    """Pack `files` as pack `name`, version `label`, restoring to /opt/demo (whatever the name: two
    packs of the same files at the same place have the same parts)."""
    src = write_tree(tmp_path / f"src-{label}", files)
    out = tmp_path / f"pack-{label}"
    pack_tree(src, out, PackOptions(name=name, version=label, target="/opt/demo", **{"part_size": 60_000, **options}))
    return out


def parts_of(pack: Path) -> dict[str, bytes]:
    return {p.name: (pack / p.name).read_bytes() for p in loads((pack / MANIFEST_NAME).read_bytes()).parts}


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- part boundaries


def test_the_same_tree_packs_to_the_same_parts_and_names(tmp_path: Path) -> None:
    one, two = make(tmp_path, "one", payload()), make(tmp_path, "two", payload())
    first, second = loads((one / MANIFEST_NAME).read_bytes()), loads((two / MANIFEST_NAME).read_bytes())
    assert len(first.parts) >= 4
    assert [p.name for p in first.parts] == [p.name for p in second.parts]
    assert parts_of(one) == parts_of(two)
    assert all(p.name == f"part-{p.sha256}.tar.zst" for p in first.parts)


def test_changing_one_file_changes_its_own_part_and_no_other(tmp_path: Path) -> None:
    files = payload()
    before = parts_of(make(tmp_path, "before", files))
    victim = sorted(files)[len(files) // 2]
    after = parts_of(make(tmp_path, "after", {**files, victim: files[victim] + b"# one more line\n"}))
    assert 1 <= len(set(before) - set(after)) <= 2 and 1 <= len(set(after) - set(before)) <= 2
    assert len(set(before) & set(after)) >= len(before) - 2


def _members(sizes: list[int]) -> list[Member]:
    """Files of the given sizes, a folder before every seventh."""
    return [Member(f"opt/app/d{i // 7:03d}", tarfile.DIRTYPE, 0o755, EPOCH) if i % 7 == 0 else
            Member(f"opt/app/d{i // 7:03d}/f{i:05d}", tarfile.REGTYPE, 0o644, EPOCH, size=size)
            for i, size in enumerate(sizes)]


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(0, 3_000_000), min_size=2, max_size=400), data=st.data())
def test_one_member_changed_added_or_removed_moves_at_most_the_two_parts_around_it(sizes: list[int], data) -> None:
    """Plans over random trees: a single member's edit (its size and bytes, its mtime, or the
    member added or removed) changes at most its own part and the one after it; every other part
    is made of the same members, so of the same bytes. Holds whenever the edit keeps the weight
    runs aim at (a power of two: it moves only when the tree's size crosses one, and then every
    boundary moves)."""
    members = _members(sizes)
    i = data.draw(st.integers(0, len(members) - 1))
    how = data.draw(st.sampled_from(["resize", "touch", "remove", "add"]))
    folder = members[i].kind == tarfile.DIRTYPE
    if how == "touch" or (how == "resize" and folder):
        edited = [*members[:i], replace(members[i], mtime=EPOCH + 1), *members[i + 1 :]]
    elif how == "resize":
        edited = [*members[:i], replace(members[i], size=data.draw(st.integers(0, 3_000_000))), *members[i + 1 :]]
    elif how == "remove":
        edited = members[:i] + members[i + 1 :]
    else:
        added = replace(members[i], name=members[i].name + "-new", size=0 if folder else data.draw(st.integers(0, 3_000_000)))
        edited = [*members[: i + 1], added, *members[i + 1 :]]
    part_size = 2_000_000
    assume(run_weight(members, part_size) == run_weight(edited, part_size))
    old = [tuple(run) for run in plan_parts(members, part_size)]
    new = [tuple(run) for run in plan_parts(edited, part_size)]
    assert old == plan_parts_again(members, part_size)  # deterministic
    assert sorted(m.name for run in new for m in run) == sorted(m.name for m in edited)  # every member once
    gone, came = [run for run in old if run not in new], [run for run in new if run not in old]
    assert len(gone) <= 2 and len(came) <= 2
    own = next(j for j, run in enumerate(old) if members[i] in run)
    assert set(gone) <= set(old[own : own + 2])


def plan_parts_again(members: list[Member], part_size: int) -> list[tuple[Member, ...]]:
    return [tuple(run) for run in plan_parts(list(members), part_size)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), pick=st.integers(0, 10**6), grow=st.integers(-3_000, 30_000))
def test_packed_bytes_of_every_other_part_stay_the_same(tmp_path_factory, seed: int, pick: int, grow: int) -> None:
    """The same on real packs: random trees, one file rewritten with another size."""
    tmp_path = tmp_path_factory.mktemp("edit")
    files = payload(seed, packages=6)
    victim = sorted(files)[pick % len(files)]
    changed = {**files, victim: (files[victim] + os.urandom(max(0, grow)))[: max(1, len(files[victim]) + grow)]}
    assume(changed[victim] != files[victim])
    src_before, src_after = write_tree(tmp_path / "a", files), write_tree(tmp_path / "b", changed)
    weights = []
    for src in (src_before, src_after):
        members = inventory(src, "/opt/demo")
        weights.append(run_weight(members, 60_000))
    assume(weights[0] == weights[1])
    before, after = parts_of(make(tmp_path, "before", files)), parts_of(make(tmp_path, "after", changed))
    assert 1 <= len(set(before) - set(after)) <= 2
    assert len(set(after) - set(before)) <= 2


# ---------------------------------------------------------------- the shared folder


def test_two_releases_pushed_to_one_folder_both_restore_from_their_own_locks(tmp_path: Path) -> None:
    files = payload()
    mirror = tmp_path / "mirror"
    v1 = make(tmp_path, "1", files)
    [first] = push([v1], [str(mirror)], tmp_path / "v1.lock")
    upgraded = {k: v for k, v in files.items() if not k.startswith("site-packages/pkg03")}
    upgraded |= {f"site-packages/pkg03/mod{m:03d}.py": os.urandom(9_000) for m in range(6)}
    upgraded["site-packages/pkg03-2.0.dist-info/METADATA"] = b"Name: pkg03\nVersion: 2.0\n"
    v2 = make(tmp_path, "2", upgraded)
    [second] = push([v2], [str(mirror)], tmp_path / "v2.lock")
    parts1, parts2 = set(parts_of(v1)), set(parts_of(v2))
    assert second.uploaded_parts == len(parts2 - parts1) and second.reused_parts == len(parts2 & parts1) > 0
    assert len(parts2 - parts1) <= len(parts2) // 2
    assert load(tmp_path / "v1.lock").packs[0].locations == load(tmp_path / "v2.lock").packs[0].locations == ("mirror/parts",)
    assert sorted(p.name for p in (mirror / "parts").iterdir()) == sorted(
        parts1 | parts2 | {f"manifest-{first.digest[7:]}.json", f"manifest-{second.digest[7:]}.json"})
    for label, src in (("1", "src-1"), ("2", "src-2")):
        restore(tmp_path / f"v{label}.lock", root=tmp_path / f"root{label}", progress=False)
        assert tree(tmp_path / f"root{label}" / "opt" / "demo") == tree(tmp_path / src)


def test_a_push_uploads_only_the_parts_the_folder_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uploads: list[str] = []
    put_part = LocalStore.put_part

    def counting(self, part, source, on_bytes=None):
        uploads.append(part.name)
        return put_part(self, part, source, on_bytes)

    monkeypatch.setattr(LocalStore, "put_part", counting)
    files = payload()
    mirror = str(tmp_path / "mirror")
    demo = make(tmp_path, "demo", files)
    push([demo], [mirror], None)
    assert sorted(uploads) == sorted([*parts_of(demo), f"manifest-{loads((demo / MANIFEST_NAME).read_bytes()).digest[7:]}.json"])
    uploads.clear()
    push([demo], [mirror], None)
    assert uploads == []  # the same release again: nothing
    other = make(tmp_path, "other", files, name="other")  # another pack of the same files: its parts are demo's
    [result] = push([other], [mirror], None)
    assert [u for u in uploads if u.startswith("part-")] == [] and result.reused_parts == len(parts_of(other))
    uploads.clear()
    victim = max(files)
    changed = make(tmp_path, "changed", {**files, victim: b"new bytes\n"})
    [result] = push([changed], [mirror], None)
    missing = set(parts_of(changed)) - set(parts_of(demo))
    assert [u for u in uploads if u.startswith("part-")] == sorted(missing, key=list(parts_of(changed)).index)
    assert result.uploaded_parts == len(missing) <= 2


def test_fsspec_folders_share_parts_too(tmp_path: Path) -> None:
    url = f"memory://prebake-{uuid.uuid4().hex}"
    files = payload()
    v1, other = make(tmp_path, "1", files), make(tmp_path, "other", files, name="other")
    push([v1], [url], tmp_path / "v1.lock")
    [again] = push([other], [url], None)
    assert again.uploaded_parts == 0 and again.reused_parts == len(parts_of(other))
    victim = min(files)
    v2 = make(tmp_path, "2", {**files, victim: b"changed\n"})
    [second] = push([v2], [url], tmp_path / "v2.lock")
    assert second.uploaded_parts == len(set(parts_of(v2)) - set(parts_of(v1))) <= 2
    restore(tmp_path / "v1.lock", root=tmp_path / "root1", progress=False, workers="threads")
    restore(tmp_path / "v2.lock", root=tmp_path / "root2", progress=False, workers="threads")
    assert tree(tmp_path / "root1" / "opt" / "demo") == tree(tmp_path / "src-1")
    assert tree(tmp_path / "root2" / "opt" / "demo") == tree(tmp_path / "src-2")


def test_a_release_restores_over_http_reading_its_manifest_and_parts_and_nothing_else(tmp_path: Path) -> None:
    www = tmp_path / "www"
    pack = make(tmp_path, "1", payload())
    [result] = push([pack], [str(www)], www / "prebake.lock")
    push([make(tmp_path, "2", {**payload(), "site-packages/extra.py": b"y = 2\n"})], [str(www)], None)
    with FolderServer(www) as server:
        restore(f"{server.url}/prebake.lock", root=tmp_path / "root", progress=False)
        manifest = f"manifest-{result.digest[7:]}.json"
        assert dict(server.requests) == {"prebake.lock": 1, manifest: 1, **{name: 1 for name in parts_of(pack)}}
        server.requests.clear()
        restore(f"{server.url}/parts/{manifest}", root=tmp_path / "again", progress=False)  # a manifest's URL pins it
        assert server.requests[manifest] == 1 and MANIFEST_NAME not in server.requests
        with pytest.raises(StoreNotFound, match=r"manifest.json: not found .*one manifest-HEX.json per release: restore through the lock"):
            restore(f"{server.url}/parts", root=tmp_path / "nope", progress=False)
    assert tree(tmp_path / "root" / "opt" / "demo") == tree(tmp_path / "again" / "opt" / "demo") == tree(tmp_path / "src-1")


# ---------------------------------------------------------------- packs and stores of the old layout


def legacy(pack: Path) -> Path:
    """The pack as prebake wrote packs before parts were named by their sha256: part-NNN.tar.zst."""
    manifest = loads((pack / MANIFEST_NAME).read_bytes())
    parts = []
    for i, part in enumerate(manifest.parts):
        (pack / part.name).rename(pack / f"part-{i:03d}.tar.zst")
        parts.append(replace(part, name=f"part-{i:03d}.tar.zst"))
    (pack / MANIFEST_NAME).write_bytes(replace(manifest, parts=tuple(parts)).dumps())
    return pack


def test_an_old_layout_still_restores_from_its_lock_after_new_pushes(tmp_path: Path) -> None:
    """DEST/NAME/manifest.json beside part-NNN.tar.zst, as push wrote it before, pinned by a lock;
    pushes since then go to DEST/parts and never touch it."""
    files = payload()
    old = legacy(make(tmp_path, "1", files))
    mirror = tmp_path / "mirror"
    [before] = push([old], [str(mirror)], tmp_path / "old.lock")  # a pack of the old names goes where it always went
    assert before.locations == [str(mirror / "demo")] and (mirror / "demo" / "part-000.tar.zst").exists()
    push([make(tmp_path, "2", {**files, "site-packages/new.py": b"z = 3\n"})], [str(mirror)], tmp_path / "new.lock")
    restore(tmp_path / "old.lock", root=tmp_path / "root-old", progress=False)
    restore(tmp_path / "new.lock", root=tmp_path / "root-new", progress=False)
    assert tree(tmp_path / "root-old" / "opt" / "demo") == tree(tmp_path / "src-1")
    assert tree(tmp_path / "root-new" / "opt" / "demo") == tree(tmp_path / "src-2")
    # A lock written by hand (or by `prebake lock`) that names the old folder restores too.
    write_lock(tmp_path / "hand.lock", [LockedPack("demo", "1", before.digest, (str(mirror / "demo" / MANIFEST_NAME),))])
    restore(tmp_path / "hand.lock", root=tmp_path / "root-hand", progress=False)
    assert tree(tmp_path / "root-hand" / "opt" / "demo") == tree(tmp_path / "src-1")


def test_an_old_layout_overwritten_under_its_lock_is_still_refused(tmp_path: Path) -> None:
    files = payload()
    mirror = str(tmp_path / "mirror")
    push([legacy(make(tmp_path, "1", files))], [mirror], tmp_path / "v1.lock")
    push([legacy(make(tmp_path, "2", {**files, "site-packages/new.py": b"z = 3\n"}))], [mirror], None)
    with pytest.raises(IntegrityError, match="the pack there changed"):
        restore(tmp_path / "v1.lock", root=tmp_path / "root", progress=False)


@pytest.mark.parametrize("dest", ["folder", "memory"])
def test_has_part_in_a_pack_folder_needs_the_same_bytes_not_just_the_name_and_size(tmp_path: Path, dest: str) -> None:
    """A pack folder of the old layout: a part of the same name and size from another build is
    uploaded again (on fsspec the manifest already there tells its sha256; a local folder is hashed)."""
    pack = legacy(make(tmp_path, "1", payload()))
    target = str(tmp_path / "mirror") if dest == "folder" else f"memory://prebake-{uuid.uuid4().hex}"
    push([pack], [target], None)
    part = loads((pack / MANIFEST_NAME).read_bytes()).parts[0]
    with open_destination(target, "demo") as store:
        assert store.has_part(part)
        assert not store.has_part(replace(part, sha256="0" * 64))
        assert not store.has_part(replace(part, size=part.size + 1))
    with open_destination(target, "demo") as store:
        store.put_manifest(b"{}")  # on fsspec, a manifest that lists nothing vouches for nothing
        assert store.has_part(part) == (dest == "folder")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), pick=st.integers(0, 10**6))
def test_a_file_rewritten_with_as_many_bytes_changes_its_own_part_only(tmp_path_factory, seed: int, pick: int) -> None:
    """The plan reads names and sizes, not contents (a sampled compression ratio once moved every
    boundary on such an edit): new bytes of the same length change one part and keep the rest."""
    tmp_path = tmp_path_factory.mktemp("same-size")
    files = payload(seed, packages=6)
    victim = sorted(files)[pick % len(files)]
    changed = {**files, victim: os.urandom(len(files[victim]))}
    assume(changed[victim] != files[victim])
    before, after = parts_of(make(tmp_path, "before", files)), parts_of(make(tmp_path, "after", changed))
    assert len(before) == len(after) and len(before) > 2
    assert len(set(before) - set(after)) == 1
