"""Shared fixtures: a clean environment, trees of awkward files, packs made from them."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard
from prebake.manifest import CondaPrefix, Manifest, Part
from prebake.pack import PackOptions, pack_tree


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's PREBAKE_* settings (the test images they name stay)."""
    for name in list(os.environ):
        if name.startswith("PREBAKE_") and not name.startswith("PREBAKE_TEST_"):
            monkeypatch.delenv(name)


def unavailable(reason: str) -> None:
    """Skip a test whose machinery is missing on a developer machine; under CI (CI=true), where
    .ci/run installs all of it, fail instead: nothing is skipped there."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must run this test: use .ci/run)")
    pytest.skip(reason)


def make_awkward_tree(root: Path, big_file_size: int = 0) -> Path:
    """A tree with the shapes packs must survive: unicode and long names, links, empty bits."""
    root.mkdir(parents=True)
    (root / "bin").mkdir()
    tool = root / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    (root / "empty-dir" / "nested-empty").mkdir(parents=True)
    (root / "zero-bytes").write_bytes(b"")
    (root / "données café ☕.txt").write_text("unicode name\n")
    deep = root / "/".join(f"segment-{i:02d}-with-a-rather-long-name" for i in range(6))
    deep.mkdir(parents=True)
    (deep / ("f" * 200)).write_text("long path\n")
    (root / "lib").mkdir()
    real = root / "lib" / "libthing.so.1.2"
    real.write_bytes(os.urandom(4096))
    (root / "lib" / "libthing.so.1").symlink_to("libthing.so.1.2")
    (root / "lib" / "libthing.so").symlink_to("libthing.so.1")
    (root / "lib-link").symlink_to("lib")
    (root / "absolute-link").symlink_to("/etc/hostname")
    (root / "dangling-link").symlink_to("does/not/exist")
    os.link(real, root / "bin" / "hardlink-to-lib")
    readonly = root / "readonly.txt"
    readonly.write_text("read only\n")
    readonly.chmod(0o444)
    if big_file_size:
        (root / "big.bin").write_bytes(os.urandom(big_file_size))
    text = root / "many"
    text.mkdir()
    for i in range(300):
        (text / f"file-{i:04d}.txt").write_text(f"line {i}\n" * (i % 17))
    return root


def pack(src: Path, out: Path, target: str = "/opt/app", **options) -> Manifest:
    defaults = {"name": "app", "version": "1.0", "target": target}
    return pack_tree(src, out, PackOptions(**{**defaults, **options}))


def run_cli(*args: str) -> int:
    """`prebake ARGS` in this process, as main() runs it; its exit status."""
    from prebake.cli import main

    try:
        main(list(args))
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def craft_pack(
    out: Path,
    members: list[tuple[tarfile.TarInfo, bytes]],
    prefixes: tuple[str, ...] = ("/opt/app",),
    symlinks: tuple[str, ...] = (),
    raw_tar: bytes | None = None,
    whiteouts: tuple[str, ...] = (),
    conda: CondaPrefix | None = None,
) -> Manifest:
    """A pack whose single part holds exactly `members` (or `raw_tar`), with a correct manifest.

    For testing what the restore refuses: the pack writer would never produce these.
    """
    if raw_tar is None:
        raw_tar = tar_bytes(members)
    count = len(members) if members else _count_members(raw_tar)
    compressed = zstandard.ZstdCompressor(write_checksum=True).compress(raw_tar)
    out.mkdir(parents=True)
    (out / "part-000.tar.zst").write_bytes(compressed)
    part = Part("part-000.tar.zst", len(compressed), hashlib.sha256(compressed).hexdigest(), count, len(raw_tar))
    manifest = Manifest(name="crafted", version="1", target=prefixes[0], prefixes=prefixes, parts=(part,), symlinks=symlinks,
                        whiteouts=tuple(whiteouts), conda=conda)
    (out / "manifest.json").write_bytes(manifest.dumps())
    return manifest


def _count_members(raw_tar: bytes) -> int:
    """How many members a tar reader sees before the first end-of-archive marker."""
    try:
        with tarfile.open(fileobj=io.BytesIO(raw_tar), mode="r:") as archive:
            return len(archive.getmembers())
    except tarfile.TarError:
        return 1


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", mode: int = 0o644, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else b""
