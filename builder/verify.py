"""Check a pack's parts against its manifest, or a restored tree against the pack's members."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from .locate import PackSource
from .restore import installed, read_part


@dataclass(frozen=True)
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks, for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def verify_parts(source: PackSource, retries: int = 2) -> list[Problem]:
    """Size and sha256 of every part, read from wherever the pack lives."""
    problems = []
    for part in source.manifest.parts:
        hasher, size = hashlib.sha256(), 0
        for chunk in read_part(source.store, part, retries):
            hasher.update(chunk)
            size += len(chunk)
        if size != part.size:
            problems.append(Problem(part.name, f"{size} bytes, the manifest says {part.size}"))
        elif hasher.hexdigest() != part.sha256:
            problems.append(Problem(part.name, f"sha256 {hasher.hexdigest()}, the manifest says {part.sha256}"))
    return problems


def verify_installed(source: PackSource, root: Path, retries: int = 2) -> list[Problem]:
    """Every member of the pack as it sits under `root`: kind, mode, size, content, link target;
    folders the restore made (its marker lists them) also by mode and mtime."""
    problems = []
    marker = installed(root, source.manifest.name)
    if marker.get("digest") != source.digest:
        problems.append(Problem(source.manifest.name, f"not installed under {root} (no install marker for {source.digest})"))
    made = set(marker.get("folders", ()))
    for part in source.manifest.parts:
        raw = _ChunkReader(read_part(source.store, part, retries))
        reader = zstandard.ZstdDecompressor().stream_reader(io.BufferedReader(raw))
        with tarfile.open(fileobj=reader, mode="r|") as archive:
            for member in archive:
                problem = _compare(member, archive, root, made)
                if problem:
                    problems.append(Problem("/" + member.name.rstrip("/"), problem))
    whiteouts = source.manifest.whiteouts
    problems += [Problem(w, "should have been removed") for w in whiteouts if os.path.lexists(str(root) + w)]
    return problems


def _mode_differs(st: os.stat_result, member: tarfile.TarInfo) -> bool:
    """Whether the mode on disk is neither the pack's nor the pack's without setuid/setgid (which
    the restore drops unless asked)."""
    return stat.S_IMODE(st.st_mode) not in (member.mode, member.mode & ~0o6000)


def _compare(member: tarfile.TarInfo, archive: tarfile.TarFile, root: Path, made: set[str]) -> str | None:
    path = root / member.name
    try:
        st = path.lstat()
    except FileNotFoundError:
        return "missing"
    if member.issym():
        if not stat.S_ISLNK(st.st_mode):
            return "should be a symlink"
        target = os.readlink(path)
        return None if target == member.linkname else f"links to {target!r}, the pack says {member.linkname!r}"
    if member.isdir():
        if not stat.S_ISDIR(st.st_mode):
            return "should be a directory"
        if "/" + member.name.rstrip("/") not in made:
            return None  # a folder that was there before keeps its own mode and mtime
        if _mode_differs(st, member):
            return f"folder mode {stat.S_IMODE(st.st_mode):o}, the pack says {member.mode:o}"
        return None if int(st.st_mtime) == member.mtime else f"folder mtime {int(st.st_mtime)}, the pack says {member.mtime}"
    if member.islnk():
        first = root / member.linkname
        same = first.exists() and os.path.samefile(first, path)
        return None if same else f"should be a hard link to /{member.linkname}"
    if not stat.S_ISREG(st.st_mode):
        return "should be a regular file"
    if _mode_differs(st, member):
        return f"mode {stat.S_IMODE(st.st_mode):o}, the pack says {member.mode:o}"
    if st.st_size != member.size:
        return f"{st.st_size} bytes, the pack says {member.size}"
    expected = hashlib.sha256()
    data = archive.extractfile(member)
    assert data is not None
    while block := data.read(1024 * 1024):
        expected.update(block)
    actual = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            actual.update(block)
    return None if actual.digest() == expected.digest() else "content differs from the pack"
