"""Safe, fast extraction of one part's tar stream, member by member, as the bytes arrive.

Every header is parsed and checked before anything of its member is written: a normalised
relative name under the pack's prefixes, a plain file, directory, symlink or hard link, never
below one of the pack's symlinks, setuid and setgid bits dropped. Anything a tar reader could
interpret in more than one way (pax records, other formats, bad checksums, sizes on members
without data, bytes after the end) is refused, not interpreted.

Members are written with plain system calls: open(O_EXCL|O_NOFOLLOW), write, fchmod, futimens.
That is one copy of each byte where piping into GNU tar costs three (into the pipe, out of it,
into the file) plus tar's own process; measured on a 577 MB, 17,807-entry tree in tmpfs, tar
alone spent 0.76 s writing what this writes in 0.60 s. Python's tarfile stays out of the hot
path: its per-member overhead is what makes it slow, not the system calls.

Directories are created as needed and get their mode and mtime from the pack only after every
part is done (`Destination.finish`), so a read-only folder never blocks a later file and a
folder that was already there keeps its own metadata.
"""

from __future__ import annotations

import contextlib
import os
import threading
import zlib
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
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _read_umask() -> int:
    """The process umask, read without setting it (os.umask can only swap it, for every thread)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o777


# Files are created with their final mode; only bits the umask removes need an fchmod.
_UMASK = _read_umask()


def _number(field: bytes, what: str) -> int:
    if field[:1] and field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text or text.strip(b"01234567"):
        msg = f"tar header has a malformed {what} field {field!r}"
        raise IntegrityError(msg)
    return int(text, 8)


def _checksum_ok(header: bytes) -> bool:
    """The header's byte sum, with its checksum field counted as spaces, equals that field.

    zlib.adler32 gives the byte sum modulo 65521 ten times faster than sum() (0.2 against 2.2 us,
    on every header). A 512-byte header sums to less than 2 * 65521, so the comparison is
    ambiguous only for a header whose true sum differs from its field by exactly 65521, which
    damage does not produce (each byte moves the sum by at most 255).
    """
    field = header[148:156]
    header_sum = _number(field, "checksum") - 8 * 32 + sum(field)
    return (1 + header_sum - (zlib.adler32(header) & 0xFFFF)) % 65521 == 0  # adler32's low half: 1 + sum


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
        self._prefix = "" if str(root) == "/" else str(root).rstrip("/")
        self._ready_dirs: set[str] = set()
        self.created: set[str] = set()
        self.dir_members: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()

    def on_disk(self, path: str) -> str:
        """Where absolute pack path `path` lands under the root."""
        return self._prefix + path

    def prepare_parent(self, path: str, refuse: Callable[[str], Exception]) -> None:
        """Refuse a parent that is (or is below) one of the pack's symlinks, keep a confined
        restore from following an existing link out of its root, and create the parent.
        Done once per folder."""
        parent = path.rsplit("/", 1)[0] or "/"
        if parent in self._ready_dirs:
            return
        link = self._symlink_at_or_above(parent)
        if link:
            raise refuse(f"{path} would be written through the symlink {link}")
        on_disk = self.on_disk(parent)
        if self.confined:
            # Below a folder already proven to resolve inside the root, only a link can leave it.
            proven = (parent.rsplit("/", 1)[0] or "/") in self._ready_dirs
            if not proven or os.path.islink(on_disk):
                real = os.path.realpath(on_disk)
                if real != self._real_root and not real.startswith(self._real_root + "/"):
                    raise refuse(f"{path} would be written through a link that leaves {self.root}")
        self._make_dirs(parent)
        self._ready_dirs.add(parent)

    def _make_dirs(self, folder: str) -> None:
        """mkdir -p that remembers which folders this restore created."""
        try:
            os.mkdir(self.on_disk(folder))
        except FileNotFoundError:
            self._make_dirs(folder.rsplit("/", 1)[0] or "/")
            self._make_dirs(folder)
            return
        except FileExistsError:
            if not os.path.isdir(self.on_disk(folder)):
                msg = f"{self.on_disk(folder)} exists and is not a folder; remove it and restore again"
                raise IntegrityError(msg) from None
            return
        with self._lock:
            self.created.add(folder)

    def directory(self, path: str, mode: int, mtime: int) -> None:
        """A directory member: created now, its metadata applied by `finish`."""
        self._make_dirs(path)
        with self._lock:
            self.dir_members.append((path, mode, mtime))

    def absorb(self, created: set[str], dir_members: list[tuple[str, int, int]]) -> None:
        """Take in what another Destination (in a worker process) created and saw."""
        self.created |= created
        self.dir_members += dir_members

    def finish(self) -> None:
        """Apply the pack's mode and mtime to the folders this restore created (not to folders
        that were there before), deepest first."""
        ours = [item for item in self.dir_members if item[0] in self.created]
        for path, mode, mtime in sorted(ours, key=lambda item: item[0].count("/"), reverse=True):
            on_disk = self.on_disk(path)
            os.chmod(on_disk, mode)
            os.utime(on_disk, ns=(mtime * 10**9, mtime * 10**9), follow_symlinks=False)

    def _symlink_at_or_above(self, folder: str) -> str | None:
        if not self.symlinks:
            return None
        cut = len(folder)
        while cut > 0:
            if folder[:cut] in self.symlinks:
                return folder[:cut]
            cut = folder.rfind("/", 0, cut)
        return None


def _replace(create: Callable[[], object], path: str) -> object:
    """Run `create`; if something is in the way, remove it (never a folder) and try once more."""
    try:
        return create()
    except FileExistsError:
        if os.path.isdir(path) and not os.path.islink(path):
            msg = f"{path} is a folder where the pack has a file or link; remove it and restore again"
            raise IntegrityError(msg) from None
        os.unlink(path)
        return create()


class PartWriter:
    """Extracts one part's tar stream as it is fed, checking every header before it acts."""

    def __init__(self, destination: Destination, part: str) -> None:
        self.destination = destination
        self.part = part
        self.written: list[str] = []
        self._regular: set[str] = set()
        self._header = bytearray()
        self._data_left = 0
        self._padding_left = 0
        self._fd: int | None = None
        self._file: tuple[str, int, int] | None = None
        self._meta: dict[bytes, bytearray] = {}
        self._meta_kind: bytes | None = None
        self._ended = False
        self._zero_blocks = 0

    def _refuse(self, reason: str) -> UnsafePackError:
        return UnsafePackError(f"{self.part}: refused: {reason}; the pack is unsafe, do not restore it")

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end:
            if self._data_left:
                n = min(self._data_left, end - pos)
                if self._meta_kind is not None:
                    self._meta[self._meta_kind] += view[pos : pos + n]
                else:
                    self._write(view[pos : pos + n])
                self._data_left -= n
                pos += n
                if not self._data_left:
                    self._member_done()
                continue
            if self._padding_left:
                n = min(self._padding_left, end - pos)
                self._padding_left -= n
                pos += n
                continue
            take = min(BLOCK - len(self._header), end - pos)
            self._header += view[pos : pos + take]
            pos += take
            if len(self._header) == BLOCK:
                header = bytes(self._header)
                self._header.clear()
                self._on_header(header)

    def _write(self, piece: memoryview) -> None:
        assert self._fd is not None
        while piece:
            piece = piece[os.write(self._fd, piece) :]

    def _on_header(self, header: bytes) -> None:
        if self._ended:
            if header.count(0) != BLOCK:
                raise IntegrityError(f"{self.part}: data after the end of the tar archive")
            return
        if header.count(0) == BLOCK:
            self._zero_blocks += 1
            self._ended = self._zero_blocks == 2
            return
        if self._zero_blocks:
            raise IntegrityError(f"{self.part}: a lone zero block in the middle of the tar archive")
        if header[257:265] != _GNU_MAGIC or not _checksum_ok(header):
            raise IntegrityError(f"{self.part}: damaged or non-GNU tar header")
        kind = header[156:157]
        size = _number(header[124:136], "size")
        self._padding_left = -size % BLOCK
        if kind in (_LONGNAME, _LONGLINK):
            if kind in self._meta or size > 64 * 1024:
                raise self._refuse("malformed GNU long name record")
            self._meta[kind] = bytearray()
            self._meta_kind = kind
            self._data_left = size
            return
        name = os.fsdecode(self._long(_LONGNAME, header[0:100]))
        linkname = os.fsdecode(self._long(_LONGLINK, header[157:257]))
        self._start(header, kind, size, name, linkname)

    def _long(self, kind: bytes, field: bytes) -> bytes:
        record = self._meta.pop(kind, None)
        if record is None:
            return field.split(b"\0", 1)[0]
        text = bytes(record).rstrip(b"\0")
        if b"\0" in text:
            raise self._refuse("a GNU long name with an embedded NUL")
        return text

    def _start(self, header: bytes, kind: bytes, size: int, name: str, linkname: str) -> None:
        """Check one member, then create it (a regular file's data follows in later feeds)."""
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
        if kind == _HARDLINK and linkname not in self._regular:
            raise self._refuse(f"hard link {path} points to {linkname!r}, not a file earlier in this part")
        destination.prepare_parent(path, self._refuse)
        mode = _number(header[100:108], "mode") & 0o7777
        if not destination.allow_setuid:
            mode &= ~0o6000
        mtime = _number(header[136:148], "mtime")
        on_disk = destination.on_disk(path)
        self.written.append(relative)
        if kind == _DIRECTORY:
            destination.directory(path, mode, mtime)
        elif kind == _SYMLINK:
            _replace(lambda: os.symlink(linkname, on_disk), on_disk)
        elif kind == _HARDLINK:
            source = destination.on_disk("/" + linkname)
            _replace(lambda: os.link(source, on_disk, follow_symlinks=False), on_disk)
        else:
            self._regular.add(relative)
            self._fd = _replace(lambda: os.open(on_disk, _CREATE, mode & 0o777), on_disk)  # type: ignore[assignment]
            self._file = (on_disk, mode, mtime)
            self._data_left = size
            if not size:
                self._member_done()

    def _member_done(self) -> None:
        if self._meta_kind is not None:
            self._meta_kind = None
            return
        fd, self._fd = self._fd, None
        assert fd is not None and self._file is not None
        try:
            _, mode, mtime = self._file
            if mode & (_UMASK | 0o7000):
                os.fchmod(fd, mode)
            os.utime(fd, ns=(mtime * 10**9, mtime * 10**9))
        finally:
            os.close(fd)
        self._file = None

    def finish(self) -> None:
        """Raise if the archive stopped before its end-of-archive marker."""
        if not (self._ended and not self._data_left and not self._header and self._fd is None):
            raise IntegrityError(f"{self.part}: the tar archive ends before its end-of-archive marker")

    def abort(self) -> None:
        """Remove what this part wrote, so a failed part leaves nothing behind."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        for relative in reversed(self.written):
            path = self.destination.on_disk("/" + relative)
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                if os.path.isdir(path) and not os.path.islink(path):
                    with contextlib.suppress(OSError):
                        os.rmdir(path)
                else:
                    os.unlink(path)
