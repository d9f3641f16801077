"""Every member kind the restore must refuse, and proof that nothing was written for it."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prebake.errors import ConflictError, IntegrityError, UnsafePackError
from prebake.restore import marker_path, restore

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
    state = root / "var/lib/prebake"
    written = [p for p in root.rglob("*") if (p.is_file() or p.is_symlink()) and state not in p.parents]
    assert written == [], f"a refused pack left files behind: {written}"
    assert not (state / "partial").exists() or not any((state / "partial").iterdir())
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
    # This machine's link is in the way, not the pack: the error says so (exit 8, not 5).
    with pytest.raises(ConflictError, match="leaves"):
        restore(tmp_path / "pack", root=root, progress=False)
    assert list(outside.iterdir()) == []


def _header_with_sum(target: int) -> bytes:
    """A GNU header whose bytes sum to `target`, with a checksum field that is right for it."""
    header = bytearray(512)
    header[257:265] = b"ustar  \0"
    stored = next(x for x in range(target - 600, target) if x - 256 + sum(b"%06o\0 " % x) == target)
    header[148:156] = b" " * 8
    missing = stored - sum(header)
    for i in [i for i in range(512) if not (148 <= i < 156 or 257 <= i < 265)]:
        header[i] = min(missing, 255)
        missing -= header[i]
    header[148:156] = b"%06o\0 " % stored
    assert sum(header) == target
    return bytes(header)


@pytest.mark.parametrize("target", [2001, 65520, 65521, 70000, 100_001])
def test_header_checksum_matches_the_byte_sum_exactly(target: int) -> None:
    """The fast checksum (adler32's byte sum modulo 65521) agrees with summing the bytes,
    including the sums where the modulus wraps, and any damaged byte fails it."""
    from prebake.extract import _checksum_ok

    header = _header_with_sum(target)
    assert _checksum_ok(header)
    for position in (0, 99, 200, 300, 511):
        for delta in (1, 17, 255):
            damaged = bytearray(header)
            damaged[position] = (damaged[position] + delta) % 256
            assert not _checksum_ok(bytes(damaged)), (position, delta)


def test_header_checksums_of_real_archives_pass() -> None:
    from prebake.extract import _checksum_ok

    data = tar_bytes([member(f"opt/app/{'x' * n}", data=b"y" * n) for n in range(1, 90, 7)])
    headers = [data[i : i + 512] for i in range(0, len(data), 512) if data[i + 257 : i + 265] == b"ustar  \0"]
    assert len(headers) == 13
    assert all(_checksum_ok(header) for header in headers)


def _respell(header: bytes, spell) -> bytes:
    """`header` with its mode, size, mtime and checksum fields written by `spell(value, width)`."""
    changed = bytearray(header)
    for start, end in ((100, 108), (124, 136), (136, 148)):
        changed[start:end] = spell(int(header[start:end].rstrip(b"\0 "), 8), end - start)
    changed[148:156] = b" " * 8
    changed[148:156] = spell(sum(changed), 8)
    return bytes(changed)


SPELLINGS = {
    "canonical": lambda value, width: b"%0*o\0" % (width - 1, value),
    "space-padded": lambda value, width: b"%*o\0" % (width - 1, value),
    "unpadded": lambda value, width: (b"%o\0" % value).ljust(width, b"\0"),
    "base-256": lambda value, width: bytes([0x80]) + value.to_bytes(width - 1, "big"),
}


@given(mode=st.integers(0, 0o777), mtime=st.integers(0, 2**33 - 1), data=st.binary(max_size=700),
       spelling=st.sampled_from(sorted(SPELLINGS)))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_spelling_of_a_headers_numbers_restores_the_same_file(tmp_path_factory, mode: int, mtime: int, data: bytes,
                                                                     spelling: str) -> None:
    """The fast read of the numbers prebake writes, and the general one for any other spelling a
    tar writer uses (space padding, no padding, base-256), give the same mode, mtime and bytes."""
    info, _ = member("opt/app/file", data=data, mode=mode)
    info.mtime = mtime
    raw = bytearray(tar_bytes([(info, data)]))
    raw[:512] = _respell(bytes(raw[:512]), lambda value, width: SPELLINGS[
        "canonical" if spelling == "base-256" and width == 8 else spelling](value, width))  # a checksum is always octal
    tmp_path = tmp_path_factory.mktemp("spelling")
    craft_pack(tmp_path / "pack", [], raw_tar=bytes(raw))
    restore(tmp_path / "pack", root=tmp_path / "root", progress=False, workers="threads")
    restored = tmp_path / "root/opt/app/file"
    assert restored.read_bytes() == data
    assert stat.S_IMODE(restored.stat().st_mode) == mode
    assert restored.stat().st_mtime == mtime
