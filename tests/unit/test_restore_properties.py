"""The restore's guarantee, stated as a property and checked on generated hostile packs.

For any sequence of members (files, folders, symlinks listed in the manifest or not, hard links,
devices, duplicates, odd and long names) cut into parts, with any whiteouts and prefixes, restored
into a root that holds a sentinel tree outside the prefixes and a link of this machine inside:
- nothing outside the prefixes is created, changed or deleted, and nothing outside the root;
- the restore either succeeds and the prefix holds exactly the pack, or fails with one line,
  writes no install marker and leaves none of the pack's files.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from prebake.errors import PrebakeError
from prebake.manifest import Manifest, Part
from prebake.restore import marker_path, restore

from ..conftest import tar_bytes

PREFIX = "opt/app"
_GOOD = ["a", "b", "c", "é ☕", "n" * 120, "pre"]
_NAMES = _GOOD * 6 + ["..", ".", ""]  # mostly good names, so that most packs get far enough to matter


@dataclass
class Spec:
    """A generated pack: members (name, kind, data or link target) per part, and the manifest's lists."""

    parts: list[list[tuple[str, bytes, str]]]
    symlinks: tuple[str, ...] = ()
    whiteouts: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ("/" + PREFIX,)


def _name(components: list[str], inside: bool) -> str:
    return "/".join(([PREFIX] if inside else ["opt"]) + components)


names = st.builds(_name, st.lists(st.sampled_from(_NAMES), min_size=1, max_size=3), st.sampled_from([True, True, True, False]))
kinds = st.sampled_from([tarfile.REGTYPE] * 4 + [tarfile.DIRTYPE] * 2 + [tarfile.SYMTYPE] * 2 + [tarfile.LNKTYPE, tarfile.CHRTYPE])
targets = st.sampled_from(["/outside", "../../../outside", "a", "/etc", "../../..", PREFIX + "/a", PREFIX + "/b"])
members = st.tuples(names, kinds, targets)
odd_paths = st.sampled_from(["/", "//", "/" + PREFIX, "/" + PREFIX + "/", "/opt", "/outside", f"/{PREFIX}/pre/keep.txt"])
paths = st.one_of(*[names.map(lambda n: "/" + n)] * 4, odd_paths)


@st.composite
def specs(draw) -> Spec:
    flat = draw(st.lists(members, min_size=1, max_size=12))
    cuts = sorted(draw(st.lists(st.integers(1, len(flat)), max_size=2)))
    parts, start = [], 0
    for cut in [*cuts, len(flat)]:
        if cut > start:
            parts.append(flat[start:cut])
            start = cut
    symlink_names = ["/" + n for n, kind, _ in flat if kind == tarfile.SYMTYPE]
    listed = tuple(n for n in symlink_names if draw(st.booleans()))
    whiteouts = tuple(draw(st.lists(paths, max_size=2))) if draw(st.booleans()) else ()
    prefixes = draw(st.sampled_from([("/" + PREFIX,)] * 8 + [("//",), ("/opt", "/" + PREFIX), ("/" + PREFIX + "/",), ("/opt",)]))
    return Spec(parts, listed, whiteouts, prefixes)


def _tar(members: list[tuple[str, bytes, str]]) -> bytes:
    entries = []
    for name, kind, target in members:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o6644
        info.mtime = 1_700_000_000
        data = b""
        if kind == tarfile.REGTYPE:
            data = f"content of {name}\n".encode()
            info.size = len(data)
        elif kind == tarfile.SYMTYPE:
            info.linkname = target
        elif kind == tarfile.LNKTYPE:
            info.linkname = target.lstrip("/").replace("../", "")
        entries.append((info, data))
    return tar_bytes(entries)


def write_pack(spec: Spec, out: Path) -> None:
    out.mkdir(parents=True)
    parts = []
    for i, members_of_part in enumerate(spec.parts):
        raw = _tar(members_of_part)
        packed = zstandard.ZstdCompressor(write_checksum=True).compress(raw)
        name = f"part-{i:03d}.tar.zst"
        (out / name).write_bytes(packed)
        parts.append(Part(name, len(packed), hashlib.sha256(packed).hexdigest(), len(members_of_part), len(raw)))
    manifest = Manifest(name="hostile", version="1", target=spec.prefixes[0], prefixes=spec.prefixes,
                        parts=tuple(parts), symlinks=spec.symlinks, whiteouts=spec.whiteouts)
    (out / "manifest.json").write_bytes(manifest.dumps())


def snapshot(top: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple]:
    """Every entry under `top` (not following links) with its kind, mode, size, content or target."""
    seen: dict[str, tuple] = {}
    if not top.exists():
        return seen
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for entry in [*dirnames, *filenames]:
            path = here / entry
            if path in skip:
                continue
            st_ = path.lstat()
            if stat.S_ISLNK(st_.st_mode):
                facts: tuple = ("link", os.readlink(path))
            elif stat.S_ISDIR(st_.st_mode):
                facts = ("dir", stat.S_IMODE(st_.st_mode))
            else:
                facts = ("file", stat.S_IMODE(st_.st_mode), path.read_bytes(), st_.st_ino)
            seen[str(path.relative_to(top))] = facts
    return seen


def sentinel_root(base: Path) -> tuple[Path, Path]:
    """A root with a sentinel tree outside the prefix and a link of this machine inside it, plus a
    sentinel folder outside the root that the links in the packs point at."""
    outside = base / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "keep.txt").write_text("must survive\n")
    (outside / "deep" / "a").write_text("must survive too\n")
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0\n")
    (root / "outside").mkdir()
    (root / "outside" / "a").write_text("inside the root, outside the prefix\n")
    (root / PREFIX).mkdir(parents=True)
    (root / PREFIX / "pre").symlink_to(outside)
    (root / "opt" / "other.txt").write_text("a neighbour of the prefix\n")
    return root, outside


def check_restore(spec: Spec, base: Path, workers: str = "threads") -> None:
    write_pack(spec, base / "pack")
    root, outside = sentinel_root(base)
    # Where the pack may act: its prefixes, when they are well formed (otherwise nowhere).
    inside = tuple(root / p.strip("/") for p in spec.prefixes if p.strip("/") and "//" not in p and not p.endswith("/"))
    skip = (*inside, root / "var")
    before_outside = snapshot(outside)
    before_root = snapshot(root, skip=skip)
    before_inside = {p for top in inside for p, facts in snapshot(top).items() if facts[0] != "dir"}
    try:
        restore(base / "pack", root=root, progress=False, workers=workers)
        error = None
    except PrebakeError as e:
        error = e
    event(f"restore failed with {type(error).__name__}" if error else "restore succeeded")
    assert snapshot(outside) == before_outside, "something outside the root changed"
    assert snapshot(root, skip=skip) == before_root, "something outside the prefixes changed"
    if error is not None:
        assert "\n" not in str(error), f"a failure must be one line: {error!r}"
        assert not marker_path(root, "hostile").exists(), "a failed restore wrote the install marker"
        after_inside = {p for top in inside for p, facts in snapshot(top).items() if facts[0] != "dir"}
        assert after_inside - before_inside == set(), f"a failed restore left the pack's files: {sorted(after_inside - before_inside)}"
        return
    assert marker_path(root, "hostile").exists()
    for members_of_part in spec.parts:
        for name, kind, target in members_of_part:
            path = root / name
            if any(w == "/" + name or ("/" + name).startswith(w + "/") for w in spec.whiteouts):
                continue
            if kind == tarfile.REGTYPE:
                assert path.read_bytes() == f"content of {name}\n".encode()
                assert stat.S_IMODE(path.lstat().st_mode) == 0o644, "setuid bits must be dropped"
            elif kind == tarfile.SYMTYPE:
                assert os.readlink(path) == target
            elif kind == tarfile.DIRTYPE:
                assert path.is_dir() and not path.is_symlink()
            elif kind == tarfile.LNKTYPE:
                source = root / target.lstrip("/").replace("../", "")
                assert path.lstat().st_ino == source.lstat().st_ino
    for whiteout in spec.whiteouts:
        assert not os.path.lexists(str(root) + whiteout)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=specs())
# The combinations an adversarial review found writing or deleting outside:
# a hard link to a file that a listed symlink replaced, then a write below the hard link;
@example(spec=Spec([[(f"{PREFIX}/a", tarfile.REGTYPE, ""), (f"{PREFIX}/a", tarfile.SYMTYPE, "/outside"),
                (f"{PREFIX}/b", tarfile.LNKTYPE, f"{PREFIX}/a"), (f"{PREFIX}/b/x", tarfile.REGTYPE, "")]],
             symlinks=(f"/{PREFIX}/a",)))
# a whiteout below the pack's own symlink, one equal to the prefix, and prefix and whiteout `//`;
@example(spec=Spec([[(f"{PREFIX}/l", tarfile.SYMTYPE, "/outside")]], symlinks=(f"/{PREFIX}/l",), whiteouts=(f"/{PREFIX}/l/keep.txt",)))
@example(spec=Spec([[(f"{PREFIX}/x", tarfile.REGTYPE, "")]], whiteouts=(f"/{PREFIX}",)))
@example(spec=Spec([[(f"{PREFIX}/x", tarfile.REGTYPE, "")]], whiteouts=("//",), prefixes=("//",)))
# a whiteout and a write below this machine's own link inside the prefix;
@example(spec=Spec([[(f"{PREFIX}/x", tarfile.REGTYPE, "")]], whiteouts=(f"/{PREFIX}/pre/keep.txt",)))
@example(spec=Spec([[(f"{PREFIX}/pre/deep/a", tarfile.REGTYPE, "")]]))
# the same name in two parts.
@example(spec=Spec([[(f"{PREFIX}/a", tarfile.REGTYPE, "")], [(f"{PREFIX}/a", tarfile.SYMTYPE, "/outside")]], symlinks=(f"/{PREFIX}/a",)))
def test_no_pack_acts_outside_its_prefixes(spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> None:
    check_restore(spec, tmp_path_factory.mktemp("hostile"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=specs().filter(lambda s: len(s.parts) > 1))
def test_no_pack_acts_outside_its_prefixes_with_worker_processes(spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> None:
    check_restore(spec, tmp_path_factory.mktemp("hostile"), workers="processes")
