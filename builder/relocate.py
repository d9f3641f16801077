"""A conda environment pack restored at a prefix: where its members land, and the placeholders
its files hold rewritten to that prefix, in-process (no conda, no conda-unpack).

A conda pack (manifest.CondaPrefix) names its members under the prefix it was packed for; restored
elsewhere, every path of the manifest moves with it. The files conda-pack marked as holding a
prefix are stored with the placeholder they hold in the package cache, so every restore, at the
packed prefix too, rewrites them once their part is verified (extract.PartWriter.finish): text
files get each placeholder replaced, binaries get NUL-padded C strings of the same length, which
is why a prefix longer than a binary's placeholder is refused before anything is written.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ConflictError, UnsafePackError, UsageError
from .gate import is_normal, rooted, under
from .manifest import SYSTEM_FOLDERS, CondaPrefix, Env, Manifest


def check_prefix(prefix: str, what: str = "--prefix") -> None:
    """Refuse a prefix a conda environment may not have: relative, not normalised, or a system folder."""
    if (prefix.rstrip("/") or "/") in SYSTEM_FOLDERS:
        msg = f"{what} {prefix} is a system folder; a conda environment gets a folder of its own, such as {prefix.rstrip('/')}/envs/NAME"
        raise UsageError(msg)
    if not is_normal(prefix) or ":" in prefix:
        msg = f"{what} {prefix!r} must be a normalised absolute path without ':', such as /opt/envs/NAME"
        raise UsageError(msg)


def moved(manifest: Manifest, prefix: str) -> Manifest:
    """The manifest of a conda pack as restored at `prefix`: every path below its prefix moved there.
    Refused in one line when the pack is not a conda environment, cannot move, or its binaries'
    placeholders are shorter than `prefix`."""
    conda = manifest.conda
    if conda is None:
        msg = f"pack {manifest.name} is not a conda environment; --prefix moves conda environment packs only"
        raise UsageError(msg)
    check_prefix(prefix)
    if prefix == conda.prefix:
        return manifest
    if conda.pinned:
        msg = f"pack {manifest.name} cannot move from {conda.prefix}: {conda.pinned}; restore it without --prefix"
        raise UsageError(msg)
    limit = conda.longest_prefix
    if limit is not None and len(prefix.encode()) > limit:
        msg = (f"--prefix {prefix} is {len(prefix.encode())} bytes; the binaries of pack {manifest.name} hold room for "
               f"{limit}: choose a shorter prefix")
        raise UsageError(msg)

    move = Relocation(conda.prefix, prefix).move
    env = Env({var: tuple(map(move, paths)) for var, paths in manifest.env.prepend.items()}, dict(manifest.env.set))
    return replace(manifest, target=move(manifest.target), prefixes=(prefix,), symlinks=tuple(map(move, manifest.symlinks)),
                   whiteouts=tuple(map(move, manifest.whiteouts)), env=env, conda=replace(conda, prefix=prefix))


def check_free(root: Path, manifest: Manifest, ours: bool) -> None:
    """Refuse to restore a conda environment into a system folder (also when a link leads there), into
    a file, or into a folder that holds something else: a new environment goes into a missing or empty
    folder, or over a conda environment (conda-meta/), or where this pack was restored before (`ours`)."""
    conda = manifest.conda
    if conda is None:
        return
    folder = Path(rooted(root, conda.prefix))
    real = os.path.realpath(folder)
    if str(root) == "/" and real in SYSTEM_FOLDERS:
        msg = f"{folder} leads to the system folder {real}; a conda environment gets a folder of its own: restore it with --prefix DIR"
        raise UsageError(msg)
    if ours or not os.path.lexists(folder):
        return
    if not os.path.isdir(folder):
        msg = f"{folder} exists and is not a folder; restore pack {manifest.name} into a new folder with --prefix DIR"
        raise ConflictError(msg)
    entries = os.listdir(folder)
    if entries and "conda-meta" not in entries:
        msg = (f"{folder} already holds files that are not a conda environment; restore pack {manifest.name} into a new "
               "folder with --prefix DIR")
        raise ConflictError(msg)


@dataclass(frozen=True)
class Relocation:
    """What one restore of a conda pack does beyond extracting: member names move from the prefix
    the pack was made for (`packed`) to `prefix`, and `files` (absolute paths at `prefix`) have their
    placeholder (binary or text) rewritten to `prefix`."""

    packed: str
    prefix: str
    files: dict[str, tuple[bool, bytes]] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, conda: CondaPrefix | None, prefix: str) -> Relocation | None:
        if conda is None:
            return None
        files = {}
        for binary, records in ((False, conda.text), (True, conda.binary)):
            for path, index in records.items():
                files[f"{prefix}/{path}"] = (binary, conda.placeholders[index].encode())
        return cls(conda.prefix, prefix, files)

    def move(self, path: str) -> str:
        return self.prefix + path[len(self.packed):] if under(path, self.packed) else path

    def rewrite(self, fd: int, path: str) -> None:
        """Rewrite the file open at `fd` (read-write), which is `path`, for this restore's prefix."""
        binary, placeholder = self.files[path]
        data = _read_all(fd)
        prefix = self.prefix.encode()
        new = _binary(data, placeholder, prefix) if binary else data.replace(placeholder, prefix)
        if len(new) > 2 * len(data) + _GROWTH:  # bytes stay bounded by the manifest (up to a factor)
            msg = f"{path} would grow from {len(data)} to {len(new)} bytes when its placeholder is rewritten; the pack is unsafe"
            raise UnsafePackError(msg)
        if new != data:
            os.pwrite(fd, new, 0)
            os.ftruncate(fd, len(new))


_GROWTH = 1 << 20
"""What a rewritten file may grow by beyond doubling (a script holding its prefix a few times grows by little)."""


def _read_all(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _binary(data: bytes, placeholder: bytes, prefix: bytes) -> bytes:
    """Each C string holding `placeholder` with `prefix` in its place, NUL-padded to its old length
    (a binary's offsets must not move)."""
    shorter = len(placeholder) - len(prefix)
    if shorter < 0:  # moved() and the manifest's validation refuse this first: a pack that gets here lies
        msg = f"prefix {prefix.decode(errors='replace')} is longer than the placeholder a binary holds; the pack is unsafe"
        raise UnsafePackError(msg)

    def padded(match: re.Match[bytes]) -> bytes:
        text = match.group()
        return text.replace(placeholder, prefix) + b"\0" * (shorter * text.count(placeholder))

    return re.sub(re.escape(placeholder) + rb"[^\0]*\0", padded, data)
