"""Every member kind the restore must refuse, and proof that nothing was written for it."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from builder.errors import IntegrityError, UnsafePackError
from builder.restore import marker_path, restore

from ..conftest import craft_pack, member, tar_bytes

CASES = {
    "dot-dot": ([member("opt/app/../../etc/evil")], (), "'..'"),
    "absolute-name": ([member("/opt/app/abs")], (), "absolute"),
    "outside-prefixes": ([member("etc/passwd")], (), "outside the pack's prefixes"),
    "character-device": ([member("opt/app/null", tarfile.CHRTYPE)], (), "character device"),
    "block-device": ([member("opt/app/sda", tarfile.BLKTYPE)], (), "block device"),
    "fifo": ([member("opt/app/pipe", tarfile.FIFOTYPE)], (), "fifo"),
    "write-through-listed-symlink": (
        [member("opt/app/escape", tarfile.SYMTYPE, linkname="/etc"), member("opt/app/escape/passwd")],
        ("/opt/app/escape",),
        "through the symlink /opt/app/escape",
    ),
    "symlink-not-in-manifest": (
        [member("opt/app/escape", tarfile.SYMTYPE, linkname="/etc")],
        (),
        "not listed in the manifest",
    ),
    "hard-link-to-outside": (
        [member("opt/app/shadow", tarfile.LNKTYPE, linkname="etc/shadow")],
        (),
        "not a file earlier in this part",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_unsafe_member_is_refused_before_anything_lands(tmp_path: Path, case: str) -> None:
    members, symlinks, reason = CASES[case]
    safe_first = [member("opt/app/harmless.txt", data=b"fine")]
    craft_pack(tmp_path / "pack", safe_first + members, symlinks=symlinks)
    root = tmp_path / "root"
    with pytest.raises(UnsafePackError, match="refused") as caught:
        restore(tmp_path / "pack", root=root, progress=False)
    assert reason in str(caught.value)
    assert "part-000.tar.zst" in str(caught.value)
    assert not marker_path(root, "crafted").exists()
    written = [p for p in root.rglob("*") if p.is_file() or p.is_symlink()]
    assert written == [], f"a refused pack left files behind: {written}"
    assert not (tmp_path / "etc").exists()


def test_setuid_and_setgid_bits_are_dropped_unless_asked(tmp_path: Path) -> None:
    craft_pack(tmp_path / "pack", [member("opt/app/su", data=b"#!/bin/sh\n", mode=0o6755)])
    restore(tmp_path / "pack", root=tmp_path / "plain", progress=False)
    assert stat.S_IMODE((tmp_path / "plain/opt/app/su").stat().st_mode) == 0o755
    restore(tmp_path / "pack", root=tmp_path / "kept", progress=False, allow_setuid=True)
    assert stat.S_IMODE((tmp_path / "kept/opt/app/su").stat().st_mode) == 0o6755


def test_pax_headers_are_refused_not_interpreted(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("opt/app/x")
        info.pax_headers = {"path": "etc/passwd"}
        archive.addfile(info, io.BytesIO(b""))
    craft_pack(tmp_path / "pack", [], raw_tar=buffer.getvalue())
    with pytest.raises(IntegrityError, match="non-GNU tar header|unsupported tar type"):
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert not (tmp_path / "root/etc").exists()


def test_bytes_after_the_end_of_the_archive_are_refused(tmp_path: Path) -> None:
    smuggled = tar_bytes([member("opt/app/ok")]) + tar_bytes([member("etc/smuggled")])
    craft_pack(tmp_path / "pack", [], raw_tar=smuggled)
    with pytest.raises(IntegrityError, match="after the end of the tar archive"):
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert not (tmp_path / "root/etc").exists()
    assert not (tmp_path / "root/opt/app/ok").exists()


def test_a_confined_restore_does_not_follow_an_existing_link_out_of_its_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "opt").mkdir(parents=True)
    (root / "opt" / "app").symlink_to(outside)
    craft_pack(tmp_path / "pack", [member("opt/app/planted")])
    with pytest.raises(UnsafePackError, match="leaves"):
        restore(tmp_path / "pack", root=root, progress=False)
    assert list(outside.iterdir()) == []
