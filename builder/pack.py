"""Files -> parts + manifest.

A tree is inventoried into sorted member records, the records are cut into parts at member
boundaries (hard links stay in the part of the file they link to), and each part is written as
one GNU tar stream inside one zstd frame with its checksum on. Owners, names of owners and pax
records are left out and mtimes are kept, so the same tree gives the same bytes.

Where a part ends is chosen from the members themselves (plan_parts): a member whose name hashes
below its share of the weight runs aim at may end one, unless another did just before. A changed
file changes its own part, and at most the next; every other part keeps its bytes. A part is
named by its sha256 (part-SHA256.tar.zst), so parts that two packs or two releases have in common
are one file in a store (push.py).
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import zstandard

from . import __version__
from ._fs import atomic_write, staged_dir
from .errors import UsageError
from .gate import under
from .manifest import ENTRY_WEIGHT, MANIFEST_NAME, CondaPrefix, Env, Manifest, Part, Platform, validate

# Level 9 with zstd's own window: 8% smaller than level 3 on a scientific virtualenv, packs at
# ~100 MB/s on 2 cores, and decompresses as fast. Long-distance matching with a 128 MiB window
# saved nothing more inside a part and made decompression 35% slower (measured on these machines).
DEFAULT_LEVEL = 9
DEFAULT_PART_SIZE = 64 * 1024 * 1024
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_COPY_CHUNK = 1024 * 1024
_SPLIT_ABOVE = 4 * 1024 * 1024
MIN_PARTS = 4
"""Parts a pack of more than a few MB gets at least: one per worker of a restore (2 to 4)."""
_GAP = 1 / math.e
"""Boundaries sit at least _GAP x A apart (A: the weight runs aim at), and members are candidates
with a chance of their weight over _GAP x A: runs then weigh A on average (_GAP x e^(1/_GAP) x A)."""


@dataclass(frozen=True)
class PackOptions:
    name: str
    version: str
    target: str
    prefixes: tuple[str, ...] = ()
    level: int = DEFAULT_LEVEL
    part_size: int = DEFAULT_PART_SIZE
    min_parts: int = MIN_PARTS
    threads: int = -1
    platform: Platform | None = None
    env: Env = field(default_factory=Env)
    check: str | None = None
    whiteouts: tuple[str, ...] = ()
    created_by: dict[str, str] = field(default_factory=dict)
    conda: CondaPrefix | None = None


@dataclass(frozen=True)
class Member:
    """One tar member: `name` is its path below / without the leading slash."""

    name: str
    kind: bytes
    mode: int
    mtime: int
    size: int = 0
    linkname: str = ""
    source: Path | None = None

    def header(self) -> bytes:
        info = tarfile.TarInfo(self.name)
        info.type = self.kind
        info.mode = self.mode
        info.mtime = self.mtime
        info.size = self.size
        info.linkname = self.linkname
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def inventory(src: Path, target: str) -> list[Member]:
    """Members for the tree at `src` as it will sit at absolute `target`, parents first."""
    base = target.strip("/")
    members: list[Member] = []
    first_of_inode: dict[tuple[int, int], str] = {}
    links: dict[str, list[Member]] = {}

    def visit(path: Path, name: str) -> None:
        st = path.lstat()
        mode = stat.S_IMODE(st.st_mode)
        mtime = int(st.st_mtime)
        if stat.S_ISDIR(st.st_mode):
            if name:
                members.append(Member(name, tarfile.DIRTYPE, mode, mtime))
            for child in sorted(os.listdir(path)):
                visit(path / child, f"{name}/{child}" if name else child)
        elif stat.S_ISLNK(st.st_mode):
            members.append(Member(name, tarfile.SYMTYPE, mode, mtime, linkname=os.readlink(path)))
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in first_of_inode:
                first = first_of_inode[key]
                links.setdefault(first, []).append(Member(name, tarfile.LNKTYPE, mode, mtime, linkname=first))
                return
            first_of_inode.setdefault(key, name)
            members.append(Member(name, tarfile.REGTYPE, mode, mtime, size=st.st_size, source=path))
        else:
            msg = f"cannot pack {path}: it is a special file (device, fifo or socket); remove or exclude it"
            raise UsageError(msg)

    if not src.is_dir():
        msg = f"{src} is not a directory; pass the folder to pack"
        raise UsageError(msg)
    visit(src, base)
    # Each hard link follows the file it links to, so a part boundary never separates them.
    ordered: list[Member] = []
    for member in members:
        ordered.append(member)
        ordered.extend(links.get(member.name, ()))
    return ordered


class _HashingWriter:
    """A file wrapper that counts and hashes what the compressor writes."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


def _tar_stream(members: Iterable[Member]) -> Iterator[bytes]:
    """The bytes of a GNU tar archive of `members`, ending with the end-of-archive record."""
    written = 0
    for member in members:
        header = member.header()
        yield header
        written += len(header)
        if member.kind == tarfile.REGTYPE and member.size:
            assert member.source is not None
            remaining = member.size
            with open(member.source, "rb") as f:
                while remaining:
                    chunk = f.read(min(_COPY_CHUNK, remaining))
                    if not chunk:
                        msg = f"{member.source} shrank while it was being packed; pack a tree that is not changing"
                        raise UsageError(msg)
                    remaining -= len(chunk)
                    yield chunk
            padding = -member.size % BLOCK
            yield b"\0" * padding
            written += member.size + padding
    end = 2 * BLOCK
    end += -(written + end) % RECORD
    yield b"\0" * end


def _weight(member: Member) -> int:
    """What a member costs a restore: its tar bytes, plus `ENTRY_WEIGHT` for creating it."""
    return BLOCK + member.size + ENTRY_WEIGHT


def run_weight(members: list[Member], part_size: int, min_parts: int = MIN_PARTS) -> int | None:
    """The weight A the runs aim at, or None for one run. Enough runs for parts of about `part_size`
    tar bytes on average (a compressible tree's parts pack smaller) and, once the
    pack holds more than `_SPLIT_ABOVE` bytes, at least 2 x `min_parts` when that is over 1 (then
    2 x min_parts to 4 x min_parts runs of unequal weight still spread evenly over a restore's 2 to
    4 workers, largest first).

    A is a power of two of the members' sizes alone, so that a small change to the tree rarely
    changes it (which would move every boundary): only a change that takes the total across a
    power of two does. (It followed a compression ratio sampled from the tree once, but any edit
    moves the samples, and a ratio near a power of two then flipped A.)"""
    raw = sum(BLOCK + m.size for m in members)
    wanted = raw / part_size
    if raw > _SPLIT_ABOVE and min_parts > 1:  # (one worker needs no spreading)
        wanted = max(wanted, 2 * min_parts)
    if wanted <= 1 or len(members) < 2:
        return None
    return 1 << (max(1, int(sum(map(_weight, members)) / wanted)).bit_length() - 1)


def _draw(member: Member) -> float:
    """A number in [0, 1) drawn from the member's name alone (deterministic, and independent of
    every other member, so that it stays the same whatever else changes in the tree)."""
    digest = hashlib.blake2b(member.name.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def plan_parts(members: list[Member], part_size: int, min_parts: int = MIN_PARTS) -> list[list[Member]]:
    """Cut members into runs, each boundary chosen from the members next to it (content-defined
    chunking, with members for bytes): files, links and the like in their order, then the folders
    in runs of their own. A member is a candidate to end a run with a chance of its weight over
    `_GAP` x A (run_weight), drawn from its name; a candidate ends the run unless another candidate
    ended within `_GAP` x A before it. Each member weighs its tar bytes plus `ENTRY_WEIGHT` for creating
    it, since on a fresh disk file creation, not bytes, is what many small files cost. A hard link
    stays in its file's run.

    Whether a member ends a run depends only on the members within `_GAP` x A before it, so a
    changed, added or removed member can move only the boundaries between it and `_GAP` x A after
    it, where there is room for one: at most two parts change (the member's own and one next to it),
    and every other part keeps its members and so its bytes. Folders sit apart because installing
    anything changes the mtime of the folder it lands in (site-packages, bin): that changes a part
    of folder headers, a few KB, rather than a part of files. A restore makes a file's folders as it
    needs them and gives every folder its mode and mtime after the last part, so it does not matter
    which part brings a folder."""
    aim = run_weight(members, part_size, min_parts)
    if aim is None:
        return [list(members)]
    folders = [m for m in members if m.kind == tarfile.DIRTYPE]
    return _cut([m for m in members if m.kind != tarfile.DIRTYPE], aim) + _cut(folders, aim)


def _cut(members: list[Member], aim: int) -> list[list[Member]]:
    """plan_parts' cut of one stream of members into runs that aim at weight `aim`."""
    if not members:
        return []
    gap = _GAP * aim
    runs: list[list[Member]] = [[]]
    position = candidate = 0  # the weight so far, and where the last candidate ended (the start counts as one)
    for i, member in enumerate(members):
        runs[-1].append(member)
        weight = _weight(member)
        position += weight
        last = i + 1 == len(members)
        if last or members[i + 1].kind == tarfile.LNKTYPE or _draw(member) * gap >= weight:
            continue
        if position - candidate >= gap:
            runs.append([])
        candidate = position
    return runs


def part_name(sha256: str) -> str:
    """A part's file name: its content's sha256, so that a store holds each part once, whatever
    packs and releases name it."""
    return f"part-{sha256}.tar.zst"


def write_parts(members: list[Member], out: Path, options: PackOptions) -> list[Part]:
    params = zstandard.ZstdCompressionParameters.from_level(
        options.level, threads=options.threads, write_checksum=True
    )
    compressor = zstandard.ZstdCompressor(compression_params=params)
    parts: list[Part] = []
    for run in plan_parts(members, options.part_size, options.min_parts):
        writing = out / f".part-{len(parts):06d}.writing"
        with open(writing, "wb") as f:
            sink = _HashingWriter(f)
            raw = 0
            with compressor.stream_writer(sink, closefd=False) as writer:
                for chunk in _tar_stream(run):
                    writer.write(chunk)
                    raw += len(chunk)
        sha256 = sink.sha256.hexdigest()
        writing.rename(out / part_name(sha256))  # two runs never share bytes: their members' names differ
        parts.append(Part(name=part_name(sha256), size=sink.size, sha256=sha256, members=len(run), bytes=raw))
    return parts


def within_prefixes(members: list[Member], prefixes: tuple[str, ...]) -> list[Member]:
    """Drop the directories above the prefixes (a tree mirroring / holds usr/ to reach
    /usr/local); anything else outside them is refused here rather than at restore."""
    kept = []
    for member in members:
        path = "/" + member.name
        if any(under(path, p) for p in prefixes):
            kept.append(member)
        elif member.kind == tarfile.DIRTYPE and any(p.startswith(path.rstrip("/") + "/") for p in prefixes):
            continue
        else:
            msg = f"{path} is outside the pack's prefixes ({', '.join(prefixes)}); widen the prefixes or leave it out"
            raise UsageError(msg)
    return kept


def pack_tree(src: Path, out: Path, options: PackOptions) -> Manifest:
    """Pack the tree at `src` so that it restores to `options.target`; returns the manifest."""
    target = str(PurePosixPath("/", options.target))
    if not PurePosixPath(options.target).is_absolute():
        msg = f"--to {options.target!r} must be an absolute path (where the files go when restored)"
        raise UsageError(msg)
    prefixes = options.prefixes or (target,)
    members = within_prefixes(inventory(src, target), prefixes)
    with staged_dir(out) as staging:
        parts = write_parts(members, staging, options)
        kinds = [m.kind for m in members]
        manifest = Manifest(
            name=options.name,
            version=options.version,
            target=target,
            prefixes=prefixes,
            parts=tuple(parts),
            platform=options.platform,
            env=options.env,
            check=options.check,
            whiteouts=options.whiteouts,
            symlinks=tuple("/" + m.name for m in members if m.kind == tarfile.SYMTYPE),
            created_by={"prebake": __version__, **options.created_by},
            conda=options.conda,
            stats={
                "members": len(members),
                "files": kinds.count(tarfile.REGTYPE),
                "dirs": kinds.count(tarfile.DIRTYPE),
                "symlinks": kinds.count(tarfile.SYMTYPE),
                "hardlinks": kinds.count(tarfile.LNKTYPE),
                "bytes": sum(m.size for m in members),
                "packed_bytes": sum(p.size for p in parts),
            },
        )
        validate(manifest, str(out / MANIFEST_NAME))
        atomic_write(staging / MANIFEST_NAME, manifest.dumps())
    return manifest
