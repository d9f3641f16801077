"""Pack -> restore round trips over awkward trees, determinism and part boundaries."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
from prebake.locate import fetch_manifest
from prebake.manifest import loads
from prebake.restore import restore
from prebake.stores import open_store
from prebake.verify import verify_installed, verify_parts

from ..conftest import make_awkward_tree, pack


def tree_listing(root: Path) -> dict[str, tuple]:
    """Everything a round trip must keep: kind, mode, size, content, link target, mtime."""
    listing = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            relative = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                listing[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                listing[relative] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                listing[relative] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes(), int(st.st_mtime))
    return listing


@pytest.mark.parametrize("workers", ["processes", "threads"])
@pytest.mark.parametrize("part_size", [1024, 64 * 1024 * 1024], ids=["many-parts", "one-part"])
def test_round_trip_keeps_every_shape(tmp_path: Path, part_size: int, workers: str) -> None:
    src = make_awkward_tree(tmp_path / "src", big_file_size=300_000)
    manifest = pack(src, tmp_path / "pack", part_size=part_size)
    if part_size == 1024:
        assert len(manifest.parts) > 5, "a tiny part size must cut the tree into many parts"
    [result] = restore(tmp_path / "pack", root=tmp_path / "root", progress=False, workers=workers)
    assert not result.skipped
    restored = tmp_path / "root" / "opt" / "app"
    assert tree_listing(restored) == tree_listing(src)
    assert os.path.samefile(restored / "bin" / "hardlink-to-lib", restored / "lib" / "libthing.so.1.2")
    assert (restored / "bin" / "tool").stat().st_mode & stat.S_IXUSR
    source = fetch_manifest(open_store(tmp_path / "pack"))
    assert verify_parts(source) == []
    assert verify_installed(source, tmp_path / "root") == []


def test_a_file_larger_than_the_part_size_gets_a_part_of_its_own(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "small").write_bytes(b"a" * 10)
    (src / "huge").write_bytes(os.urandom(2_000_000))
    manifest = pack(src, tmp_path / "pack", part_size=100_000)
    assert any(p.size > 1_900_000 for p in manifest.parts)
    restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert (tmp_path / "root/opt/app/huge").read_bytes() == (src / "huge").read_bytes()


def test_packing_twice_gives_identical_bytes(tmp_path: Path) -> None:
    src = make_awkward_tree(tmp_path / "src")
    first = pack(src, tmp_path / "one", part_size=4096)
    second = pack(src, tmp_path / "two", part_size=4096)
    assert first.digest == second.digest
    assert (tmp_path / "one/manifest.json").read_bytes() == (tmp_path / "two/manifest.json").read_bytes()
    for part in first.parts:
        assert (tmp_path / "one" / part.name).read_bytes() == (tmp_path / "two" / part.name).read_bytes()


def test_manifest_round_trips_and_lists_the_symlinks(tmp_path: Path) -> None:
    src = make_awkward_tree(tmp_path / "src")
    manifest = pack(src, tmp_path / "pack")
    again = loads((tmp_path / "pack/manifest.json").read_bytes())
    assert again == manifest
    assert "/opt/app/lib/libthing.so" in manifest.symlinks
    assert manifest.stats["hardlinks"] == 1
    assert manifest.stats["files"] == sum(1 for _ in src.rglob("*") if _.is_file() and not _.is_symlink()) - 1


def test_hard_links_never_straddle_a_part_boundary(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"a{i:02d}").write_bytes(os.urandom(3000))
    os.link(src / "a00", src / "zz-late-link")
    pack(src, tmp_path / "pack", part_size=2000)
    restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert os.path.samefile(tmp_path / "root/opt/app/a00", tmp_path / "root/opt/app/zz-late-link")


def test_repacking_into_the_same_folder_replaces_it_whole(tmp_path: Path) -> None:
    src = make_awkward_tree(tmp_path / "src")
    pack(src, tmp_path / "pack", part_size=1024)
    [part] = pack(src, tmp_path / "pack").parts
    assert part.name == f"part-{part.sha256}.tar.zst"  # a part is named by its bytes (push shares it by that name)
    assert sorted(p.name for p in (tmp_path / "pack").iterdir()) == ["manifest.json", part.name]


def test_restore_leaves_no_threads_behind(tmp_path: Path) -> None:
    src = make_awkward_tree(tmp_path / "src")
    pack(src, tmp_path / "pack", part_size=2048)
    before = threading.active_count()
    restore(tmp_path / "pack", root=tmp_path / "root", progress=False, jobs=4)
    assert threading.active_count() == before


def test_modes_survive_a_strict_umask(tmp_path: Path) -> None:
    src = make_awkward_tree(tmp_path / "src")
    (src / "group-writable").write_text("shared\n")
    (src / "group-writable").chmod(0o664)
    pack(src, tmp_path / "pack")
    script = (
        "import os, sys; from pathlib import Path; os.umask(0o077)\n"
        "from prebake.restore import restore\n"
        "restore(sys.argv[1], root=Path(sys.argv[2]), progress=False)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "pack"), str(tmp_path / "root")], check=True)
    assert tree_listing(tmp_path / "root/opt/app") == tree_listing(src)


def _members(sizes: list[int]) -> list:
    from prebake.pack import Member

    return [Member(f"opt/app/f{i:05d}", tarfile.REGTYPE, 0o644, 0, size=size) for i, size in enumerate(sizes)]


def _spread(runs: list, workers: int) -> float:
    """How long the busiest of `workers` takes, over an even share, when they take parts largest
    first as a restore does (restore work: tar bytes plus 32 KiB per entry)."""
    from prebake.pack import _weight

    loads = [0] * workers
    for weight in sorted((sum(map(_weight, run)) for run in runs), reverse=True):
        loads[loads.index(min(loads))] += weight
    return max(loads) / (sum(loads) / workers)


def test_a_pack_of_a_few_mb_gets_a_part_for_every_worker_balanced_on_bytes_and_entries() -> None:
    """Small packs used to land in one part, restored by one worker while the other core idled.
    Parts end where the members say (so they survive small changes), so they are not of equal
    weight: there are twice to four times MIN_PARTS of them, which spread evenly over 2 or 4 workers."""
    from prebake.pack import MIN_PARTS, plan_parts

    many_small = _members([2_000] * 20_000)
    runs = plan_parts(many_small, 64 * 2**20)
    assert 2 * MIN_PARTS <= len(runs) <= 4 * MIN_PARTS
    assert _spread(runs, 2) < 1.05 and _spread(runs, 4) < 1.1
    mixed = _members([500_000_000] + [1_000] * 6_000 + [3_000_000] * 3)  # an entry weighs like 32 KiB of bytes
    runs = plan_parts(mixed, 64 * 2**20)
    assert len(runs) >= MIN_PARTS
    assert [m.name for run in runs for m in run] == [m.name for m in mixed], "order kept: the layout is deterministic"
    assert runs[0] == mixed[:1], "a file larger than a fair share gets a part of its own"
    tiny = _members([1_000] * 50)
    assert len(plan_parts(tiny, 64 * 2**20)) == 1, "a pack of a few KB stays in one part"


def test_parts_aim_at_the_part_size_in_tar_bytes_whatever_they_compress_to(tmp_path: Path) -> None:
    """The plan reads sizes only: noise and text of the same sizes get the same parts, and the
    text's parts pack smaller."""
    packs = {}
    for kind, content in (("noise", lambda: os.urandom(500_000)), ("text", lambda: b"the same line again\n" * 25_000)):
        src = tmp_path / kind
        src.mkdir()
        for i in range(10):
            (src / f"file-{i}").write_bytes(content())
        packs[kind] = pack(src, tmp_path / f"{kind}-pack", part_size=1_000_000, min_parts=1)
    noise, text = packs["noise"].parts, packs["text"].parts
    # 5 MB and a few tar headers in parts of about 1 MB, and the folder in a part of its own
    assert 3 <= len(noise) - 1 <= 10
    assert [(p.members, p.bytes) for p in noise] == [(p.members, p.bytes) for p in text]
    assert sum(p.size for p in text) < sum(p.size for p in noise) / 100
