"""Safe, fast extraction: a header-by-header gate in front of GNU tar.

Python's tarfile is too slow to extract a large pack in time (DESIGN.md), so GNU tar writes the
files. Every byte reaches tar through `TarGate`, which parses each header first and passes it on
only once it is proven safe: a normalised relative name under the pack's prefixes, a plain file,
directory, symlink or hard link, never below one of the pack's symlinks, the setuid and setgid
bits dropped. Anything tar could read differently from this parser (pax records, other formats,
bad checksums, sizes on members without data, trailing bytes) is refused, not interpreted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import IntegrityError, UnsafePackError
from .manifest import under_prefixes

BLOCK = 512
_GNU_MAGIC = b"ustar  \0"
_REGULAR, _HARDLINK, _SYMLINK, _DIRECTORY = b"0", b"1", b"2", b"5"
_LONGNAME, _LONGLINK = b"L", b"K"
_BAD_NAME_PARTS = frozenset(("", ".", ".."))
_DEVICE_KINDS = {b"3": "character device", b"4": "block device", b"6": "fifo"}
_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1024 * 1024
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024
_TAR_FLAGS = (
    "--extract",
    "--file=-",
    "--blocking-factor=2048",
    "--read-full-records",
    "--preserve-permissions",
    "--numeric-owner",
    "--no-overwrite-dir",
    "--keep-directory-symlink",
)


def _number(field: bytes, what: str) -> int:
    if field[:1] and field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text or text.strip(b"01234567"):
        msg = f"tar header has a malformed {what} field {field!r}"
        raise IntegrityError(msg)
    return int(text, 8)


def _checksum_ok(header: bytes) -> bool:
    return _number(header[148:156], "checksum") == sum(header) - sum(header[148:156]) + 8 * 32


def _name(raw: bytes) -> str:
    return os.fsdecode(raw)


class Destination:
    """Where and how members land: shared by every part of one pack."""

    def __init__(
        self,
        root: Path,
        prefixes: tuple[str, ...],
        symlinks: tuple[str, ...],
        allow_setuid: bool = False,
    ) -> None:
        self.root = root
        self.prefixes = prefixes
        self.symlinks = frozenset(symlinks)
        self.allow_setuid = allow_setuid
        self.confined = root.resolve() != Path("/")
        self._real_root = os.path.realpath(root)
        self._ready_dirs: set[str] = set()

    def prepare_parent(self, path: str, refuse: Callable[[str], Exception]) -> None:
        """Refuse a parent that is (or is below) one of the pack's symlinks, keep a confined
        restore from following an existing link out of its root, and create the parent so
        parallel tars never race to make it. Done once per folder."""
        parent = path.rsplit("/", 1)[0] or "/"
        if parent in self._ready_dirs:
            return
        link = self._symlink_at_or_above(parent)
        if link:
            raise refuse(f"{path} would be written through the symlink {link}")
        on_disk = os.path.join(self.root, parent.lstrip("/"))
        if self.confined:
            # Below a folder already proven to resolve inside the root, only a link can leave it.
            proven = (parent.rsplit("/", 1)[0] or "/") in self._ready_dirs
            if not proven or os.path.islink(on_disk):
                real = os.path.realpath(on_disk)
                if real != self._real_root and not real.startswith(self._real_root + "/"):
                    raise refuse(f"{path} would be written through a link that leaves {self.root}")
        os.makedirs(on_disk, exist_ok=True)
        self._ready_dirs.add(parent)

    def _symlink_at_or_above(self, folder: str) -> str | None:
        if not self.symlinks:
            return None
        cut = len(folder)
        while cut > 0:
            if folder[:cut] in self.symlinks:
                return folder[:cut]
            cut = folder.rfind("/", 0, cut)
        return None


class TarGate:
    """Streams one part's tar bytes into `tar -x`, checking every header before it passes."""

    def __init__(self, destination: Destination, part: str) -> None:
        self.destination = destination
        self.part = part
        self.written: list[str] = []
        self._regular: set[str] = set()
        self._header = bytearray()
        self._data_left = 0
        self._meta: dict[bytes, bytearray] = {}
        self._meta_kind: bytes | None = None
        self._held = bytearray()
        self._ended = False
        self._zero_blocks = 0
        self._stderr = tempfile.TemporaryFile()
        self._tar = subprocess.Popen(
            ["tar", *_TAR_FLAGS, f"--directory={destination.root}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        assert self._tar.stdin is not None
        self._fd = self._tar.stdin.fileno()
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._fd, _F_SETPIPE_SZ, _PIPE_SIZE)

    def _refuse(self, reason: str) -> UnsafePackError:
        return UnsafePackError(f"{self.part}: refused: {reason}; the pack is unsafe, do not restore it")

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        out: list[memoryview | bytes] = []
        pos, end = 0, len(view)
        while pos < end:
            if self._data_left:
                n = min(self._data_left, end - pos)
                if self._meta_kind is not None:
                    self._meta[self._meta_kind] += view[pos : pos + n]
                    self._held += view[pos : pos + n]
                else:
                    out.append(view[pos : pos + n])
                self._data_left -= n
                pos += n
                if not self._data_left:
                    self._meta_kind = None
                continue
            take = min(BLOCK - len(self._header), end - pos)
            self._header += view[pos : pos + take]
            pos += take
            if len(self._header) == BLOCK:
                header = bytes(self._header)
                self._header.clear()
                out.extend(self._on_header(header))
        self._write(out)

    def _write(self, pieces: list[memoryview | bytes]) -> None:
        """Gathered writes: one system call for a whole batch, without copying it first."""
        first = 0
        while first < len(pieces):
            try:
                written = os.writev(self._fd, pieces[first : first + _IOV_MAX])
            except BrokenPipeError as e:
                raise IntegrityError(self._tar_failure()) from e
            while first < len(pieces) and written >= len(pieces[first]):
                written -= len(pieces[first])
                first += 1
            if written:
                pieces[first] = memoryview(pieces[first])[written:]

    def _on_header(self, header: bytes) -> list[bytes]:
        if self._ended:
            if header.count(0) != BLOCK:
                raise IntegrityError(f"{self.part}: data after the end of the tar archive")
            return []
        if header.count(0) == BLOCK:
            self._zero_blocks += 1
            if self._zero_blocks == 2:
                self._ended = True
            return [header]
        if self._zero_blocks:
            raise IntegrityError(f"{self.part}: a lone zero block in the middle of the tar archive")
        if header[257:265] != _GNU_MAGIC or not _checksum_ok(header):
            raise IntegrityError(f"{self.part}: damaged or non-GNU tar header")
        kind = header[156:157]
        size = _number(header[124:136], "size")
        if kind in (_LONGNAME, _LONGLINK):
            if kind in self._meta or size > 64 * 1024:
                raise self._refuse("malformed GNU long name record")
            self._held += header
            self._meta[kind] = bytearray()
            self._meta_kind = kind
            self._data_left = size + (-size % BLOCK)
            return []
        name_raw = self._long(_LONGNAME, header[0:100])
        link_raw = self._long(_LONGLINK, header[157:257])
        held = bytes(self._held)
        self._held.clear()
        header = self._check(header, kind, size, _name(name_raw), _name(link_raw))
        self._data_left = size + (-size % BLOCK)
        return [held, header]

    def _long(self, kind: bytes, field: bytes) -> bytes:
        record = self._meta.pop(kind, None)
        if record is None:
            return field.split(b"\0", 1)[0]
        text = bytes(record).rstrip(b"\0")
        if b"\0" in text:
            raise self._refuse("a GNU long name with an embedded NUL")
        return text

    def _check(self, header: bytes, kind: bytes, size: int, name: str, linkname: str) -> bytes:
        if kind in _DEVICE_KINDS:
            raise self._refuse(f"{name!r} is a {_DEVICE_KINDS[kind]}")
        if kind not in (_REGULAR, _HARDLINK, _SYMLINK, _DIRECTORY):
            raise self._refuse(f"{name!r} has unsupported tar type {kind!r}")
        if kind != _REGULAR and size:
            raise self._refuse(f"{name!r} is not a regular file but carries data")
        relative = name[:-1] if kind == _DIRECTORY and name.endswith("/") else name
        if name.startswith("/") or not _BAD_NAME_PARTS.isdisjoint(relative.split("/")):
            raise self._refuse(f"member name {name!r} is absolute, empty or contains '.' or '..'")
        path = "/" + relative
        destination = self.destination
        if not under_prefixes(path, destination.prefixes):
            allowed = ", ".join(destination.prefixes)
            raise self._refuse(f"{path} is outside the pack's prefixes ({allowed})")
        if kind == _SYMLINK and path not in destination.symlinks:
            raise self._refuse(f"symlink {path} is not listed in the manifest")
        if kind == _HARDLINK:
            if linkname not in self._regular:
                raise self._refuse(f"hard link {path} points to {linkname!r}, not a file earlier in this part")
        elif kind == _REGULAR:
            self._regular.add(relative)
        destination.prepare_parent(path, self._refuse)
        self.written.append(relative)
        mode = _number(header[100:108], "mode")
        if mode & 0o6000 and not destination.allow_setuid:
            return _with_mode(header, mode & ~0o6000)
        return header

    def finish(self) -> None:
        """Close tar's input and wait for it; raise if the archive was incomplete or tar failed."""
        complete = self._ended and not self._data_left and not self._header and not self._held
        with contextlib.suppress(BrokenPipeError):
            assert self._tar.stdin is not None
            self._tar.stdin.close()
        code = self._tar.wait()
        if code != 0:
            raise IntegrityError(self._tar_failure())
        if not complete:
            raise IntegrityError(f"{self.part}: the tar archive ends before its end-of-archive marker")
        self._stderr.close()

    def abort(self) -> None:
        """Stop tar and remove what this part wrote, so a failed part leaves nothing behind."""
        with contextlib.suppress(OSError):
            self._tar.kill()
        with contextlib.suppress(BrokenPipeError, OSError):
            assert self._tar.stdin is not None
            self._tar.stdin.close()
        self._tar.wait()
        self._stderr.close()
        root = self.destination.root
        for relative in reversed(self.written):
            path = root / relative
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                if path.is_dir() and not path.is_symlink():
                    with contextlib.suppress(OSError):
                        path.rmdir()
                else:
                    path.unlink()

    def _tar_failure(self) -> str:
        self._tar.wait()
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit status {self._tar.returncode}"
        return f"{self.part}: tar could not extract it: {detail}"


def _with_mode(header: bytes, mode: int) -> bytes:
    """The header with a new mode field and a recomputed checksum."""
    block = bytearray(header)
    block[100:108] = b"%07o\0" % mode
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)
