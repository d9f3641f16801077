"""The one place that decides where a pack may act on disk.

Every write, link, hard link, folder, whiteout and clean-up of a restore asks the gate for the
folder it acts in. The gate hands out a file descriptor of that folder, reached from the prefix
one component at a time with O_NOFOLLOW, and every call then acts relative to it (openat,
mkdirat, symlinkat, linkat, unlinkat). So no link below a prefix is ever followed, whoever made
it, and a folder swapped for a link between a check and a write is refused by the kernel rather
than followed: the guarantee is structural, not a list of cases.

Above its prefixes a pack does not act; a prefix itself is found as the machine lays it out
(`/lib` may be a link to `usr/lib`), but a restore under `--root DIR` never leaves DIR.

What the gate refuses:
- a path that is not normalised, not strictly below one of the prefixes (folders may equal one),
  or at or below one of the pack's own symlinks: UnsafePackError (the pack is at fault);
- a link or non-folder on this machine where the pack needs a folder: ConflictError (this
  machine is in the way; the message says what to move).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from .errors import ConflictError, UnsafePackError

_WALK = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FDS = 64
"""Folder descriptors kept open per gate: members come sorted, so a few cover a whole part."""


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def ancestors(path: str) -> Iterator[str]:
    """`path` and every folder above it, nearest first ("/a/b": "/a/b", "/a")."""
    cut = len(path)
    while cut > 0:
        yield path[:cut]
        cut = path.rfind("/", 0, cut)


def rooted(root: Path, path: str) -> str:
    """Where absolute pack path `path` lands under `root` on this machine."""
    return path if str(root) == "/" else str(root).rstrip("/") + path


def is_normal(path: str) -> bool:
    """An absolute path with no empty, '.' or '..' component and no trailing slash."""
    return path.startswith("/") and path != "/" and all(c not in ("", ".", "..") for c in path[1:].split("/"))


def _rmtree_at(dir_fd: int, name: str) -> None:
    """rmtree of `name` in `dir_fd`, following no link (shutil's fd-based walk; 3.10 has no dir_fd)."""
    if sys.version_info >= (3, 11):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:  # the magic link names the folder itself, so nothing above it is looked up again
        shutil.rmtree(f"/proc/self/fd/{dir_fd}/{name}")


class Gate:
    """Where one pack may act under `root`: its prefixes, never through a link below them."""

    def __init__(self, root: Path, prefixes: tuple[str, ...], symlinks: tuple[str, ...] = (),
                 state: Path | None = None) -> None:
        self.root = Path(root)
        self.prefixes = prefixes
        self.symlinks = frozenset(symlinks)
        self._prefix_set = frozenset(prefixes)
        self._real_root = os.path.realpath(self.root)
        self._confined = self._real_root != "/"
        self._state = os.path.realpath(state) if state is not None else None
        self._real_prefixes = {p: os.path.realpath(self.on_disk(p)) for p in prefixes}
        self.reserved = tuple(r for r in map(self._state_below, prefixes) if r)
        """Pack paths that are prebake's state folder (journals, markers, the lock) as each prefix
        resolves on disk today: no pack may write, link or delete there."""
        self._reserved_or_above = {r[:cut] for r in self.reserved for cut in range(1, len(r) + 1) if r[cut:cut + 1] in ("", "/")}
        self._vetted: dict[str, bool] = {}
        self._fds: OrderedDict[str, int] = OrderedDict()
        self.created: list[str] = []
        """Folders this gate made (mkdir), in the order made."""
        self.on_created = None
        """Called with each folder path before it is made (the restore journals it)."""

    def _state_below(self, prefix: str) -> str | None:
        """The state folder as a pack path below `prefix`, when the prefix resolves above it."""
        real = self._real_prefixes[prefix]
        if self._state is not None and under(self._state, real):
            return prefix + self._state[len(real):]
        return None

    # ------------------------------------------------------------ deciding

    def prefix_of(self, path: str) -> str | None:
        return next((a for a in ancestors(path) if a in self._prefix_set), None)

    def check(self, path: str, folder: bool = False) -> None:
        """Refuse `path` unless it is normalised and strictly below a prefix (a folder may be the
        prefix itself), not at or below one of the pack's symlinks (unless it is that link), and
        away from prebake's state folder. The folder part is vetted once per folder."""
        parent, _, leaf = path.rpartition("/")
        if leaf in ("", ".", "..") or not path.startswith("/"):
            raise UnsafePackError(f"{path!r} is not a normalised absolute path")
        inside = self._vetted.get(parent)
        if inside is None:
            inside = self._vetted[parent] = self._vet_folder(parent)
        if not inside:
            if path not in self.prefixes:
                raise UnsafePackError(f"{path} is outside the pack's prefixes ({', '.join(self.prefixes)})")
            if not folder:
                raise UnsafePackError(f"{path} is one of the pack's prefixes; only a folder may be there")
        if path in self._reserved_or_above and (not folder or path in self.reserved):
            raise UnsafePackError(f"{path} would touch prebake's own state folder {self.reserved[0]}")

    def _vet_folder(self, folder: str) -> bool:
        """Whether `folder` is at or below a prefix; refuses one that is not normalised, is or lies
        below one of the pack's symlinks, or lies in prebake's state folder."""
        if self.prefix_of(folder) is None:
            return False
        if not is_normal(folder):
            raise UnsafePackError(f"{folder!r} is not a normalised absolute path")
        link = next((a for a in ancestors(folder) if a in self.symlinks), None)
        if link:
            raise UnsafePackError(f"{folder} would be written through the symlink {link}")
        mine = next((r for r in self.reserved if under(folder, r)), None)
        if mine:
            raise UnsafePackError(f"{folder} would touch prebake's own state folder {mine}")
        return True

    def on_disk(self, path: str) -> str:
        """The path a pack path has on this machine (for messages and read-only checks)."""
        return rooted(self.root, path)

    # ------------------------------------------------------------ folders

    def folder(self, path: str, create: bool = True) -> int:
        """A descriptor of folder `path` (a prefix or below one), made if missing and `create`.
        Raises FileNotFoundError when it is missing and not `create`."""
        fd = self._fds.get(path)
        if fd is not None:
            self._fds.move_to_end(path)
            return fd
        prefix = self.prefix_of(path)
        if prefix is None:
            raise UnsafePackError(f"{path} is outside the pack's prefixes ({', '.join(self.prefixes)})")
        if path == prefix:
            fd = self._open_prefix(prefix, create)
        else:
            parent, name = path.rsplit("/", 1)
            parent_fd = self.folder(parent, create)
            fd = self._open_below(parent_fd, name, path, create)
        self._fds[path] = fd
        if len(self._fds) > _OPEN_FDS:
            os.close(self._fds.popitem(last=False)[1])
        return fd

    def parent(self, path: str, create: bool = True) -> tuple[int, str]:
        """(descriptor of the folder holding `path`, its last name), after `check`."""
        folder, name = path.rsplit("/", 1)
        return self.folder(folder, create), name

    def _open_below(self, parent_fd: int, name: str, path: str, create: bool) -> int:
        try:
            return os.open(name, _WALK, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise
        except OSError:  # ENOTDIR: a link or a file is where the folder should be
            raise self._not_a_folder(parent_fd, name, path) from None
        if self.on_created is not None:
            self.on_created(path)
        try:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
            self.created.append(path)
        except FileExistsError:
            pass  # another part made it meanwhile, or something else is there (refused below)
        try:
            return os.open(name, _WALK, dir_fd=parent_fd)
        except OSError:
            raise self._not_a_folder(parent_fd, name, path) from None

    def _not_a_folder(self, parent_fd: int, name: str, path: str) -> Exception:
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except OSError:
            return ConflictError(f"{self.on_disk(path)} cannot be opened as a folder; check it and restore again")
        if stat.S_ISLNK(st.st_mode):
            if path in self.symlinks:
                return UnsafePackError(f"a member would be written through the pack's own symlink {path}")
            target = os.readlink(name, dir_fd=parent_fd)
            return ConflictError(
                f"{self.on_disk(path)} on this machine is a symlink (to {target}), where the pack has a folder; "
                "prebake never writes through links it did not make: move the link away or restore elsewhere with --root DIR"
            )
        return ConflictError(f"{self.on_disk(path)} exists and is not a folder; remove it and restore again")

    def _open_prefix(self, prefix: str, create: bool) -> int:
        """The prefix as this machine lays it out (links above and at it are the machine's); it must
        resolve where it did when the gate was made, inside a confined root and outside prebake's
        state folder. Folders it makes are journaled like any other."""
        on_disk = self.on_disk(prefix)
        real = self._real_prefixes[prefix]
        if self._confined:
            self._inside_root(prefix, real)
        if self._state is not None and under(real, self._state):
            raise UnsafePackError(f"prefix {prefix} resolves to {real}, inside prebake's own state folder")
        if create:
            missing = []
            existing = on_disk
            top = len(on_disk) - len(prefix)  # where the root ends: nothing above it is made here
            while len(existing) > top and not os.path.lexists(existing):
                missing.append(existing)
                existing = os.path.dirname(existing)
            for folder in reversed(missing):
                pack_path = folder[top:]
                if self.on_created is not None:
                    self.on_created(pack_path)
                try:
                    os.mkdir(folder, 0o755)
                    self.created.append(pack_path)
                except FileExistsError:
                    pass
                except NotADirectoryError:
                    raise ConflictError(f"{existing} exists and is not a folder; remove it and restore again") from None
        fd = os.open(on_disk, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        now = os.readlink(f"/proc/self/fd/{fd}")
        if now != real:
            os.close(fd)
            raise ConflictError(f"{on_disk} changed while restoring (it resolves to {now}, not {real}); restore again")
        return fd

    def _inside_root(self, prefix: str, real: str) -> None:
        if not under(real, self._real_root):
            msg = f"{prefix} would be written through a link that leaves {self.root}: it resolves to {real}; restore elsewhere with --root DIR"
            raise ConflictError(msg)

    # ------------------------------------------------------------ acting

    def remove(self, path: str, tree: bool = True) -> bool:
        """Remove `path` (a whole folder if `tree`, or a file or link itself) without following
        any link; False when it was not there (or a folder above it is missing) or is a folder
        and not `tree`. A prefix itself may go only when it is a file or link (a build that
        deleted one file names it as its own prefix), never a prefix folder and all it holds."""
        if path in self.prefixes:
            return self._remove_prefix_file(path)
        self.check(path)
        try:
            fd, name = self.parent(path, create=False)
        except FileNotFoundError:
            return False
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if not tree:
                return False
            self.forget(path)
            _rmtree_at(fd, name)
        else:
            os.unlink(name, dir_fd=fd)
        return True

    def check_removal(self, path: str) -> None:
        """Refuse a whiteout before anything is written: what `remove` would refuse, including a
        link or file of this machine above it below the prefix."""
        if path not in self.prefixes:
            self.check(path)
            with contextlib.suppress(FileNotFoundError):
                self.parent(path, create=False)
            return
        try:
            fd, leaf = self._machine_parent(path)
        except FileNotFoundError:
            return
        try:
            self._prefix_file(fd, leaf, path)
        finally:
            os.close(fd)

    def _prefix_file(self, fd: int, leaf: str, path: str) -> bool:
        """Whether prefix `path` (its name `leaf` in folder `fd`) is there; refuses a folder."""
        try:
            st = os.stat(leaf, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise ConflictError(f"{self.on_disk(path)} cannot be looked at ({e.strerror}); check it and restore again") from None
        if stat.S_ISDIR(st.st_mode):
            raise UnsafePackError(f"whiteout {path} would remove one of the pack's prefixes and everything in it")
        return True

    def _machine_parent(self, path: str) -> tuple[int, str]:
        """(descriptor of the folder holding `path`, a prefix or a folder above one, as this
        machine lays it out; its last name). The folder must resolve inside a confined root and
        outside prebake's state folder: a link left there by an earlier pack is refused, not
        followed out. FileNotFoundError when the folder is missing; the caller closes the
        descriptor."""
        on_disk = self.on_disk(path)
        folder, leaf = os.path.split(on_disk)
        try:
            fd = os.open(folder, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise  # nothing there: nothing to remove
        except OSError as e:
            raise ConflictError(f"{folder} cannot be opened as a folder ({e.strerror}); check it and restore again") from None
        real = os.readlink(f"/proc/self/fd/{fd}")
        try:
            if self._confined:
                self._inside_root(path, real)
            if self._state is not None and under(real, self._state):
                raise UnsafePackError(f"{path} resolves to {real}, inside prebake's own state folder")
        except BaseException:
            os.close(fd)
            raise
        return fd, leaf

    def _remove_prefix_file(self, path: str) -> bool:
        try:
            fd, leaf = self._machine_parent(path)
        except FileNotFoundError:
            return False
        try:
            if not self._prefix_file(fd, leaf, path):
                return False
            os.unlink(leaf, dir_fd=fd)
        finally:
            os.close(fd)
        return True

    def remove_folder(self, path: str) -> None:
        """rmdir a folder this restore made: one below a prefix through the gate, a prefix or one
        above it (made on the way to it) where the machine lays it out. Raises OSError when it is
        not empty."""
        if any(under(p, path) for p in self.prefixes):
            fd, leaf = self._machine_parent(path)
            try:
                os.rmdir(leaf, dir_fd=fd)
            finally:
                os.close(fd)
            return
        self.check(path, folder=True)
        fd, name = self.parent(path, create=False)
        self.forget(path)
        os.rmdir(name, dir_fd=fd)

    def forget(self, path: str) -> None:
        """Close the descriptors of `path` and below (it is about to go)."""
        for cached in [p for p in self._fds if under(p, path)]:
            os.close(self._fds.pop(cached))

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
