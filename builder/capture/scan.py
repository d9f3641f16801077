"""The scan backend: no container; this machine is the build `Site` (`Host`). Snapshot file
metadata under the capture roots, let the steps run, snapshot again, and compare; the changed paths
are copied into a staging tree mirroring /.

For building inside the runtime the user is in (a real Colab session). A file counts as changed
when its type, mode, size, mtime (ns), inode or link target changed; a build that rewrites a
file with the same bytes and restores its mtime and inode is not seen (the docker backend sees it).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from .. import _proc
from ..errors import UsageError
from ..manifest import Platform
from ..runtime import current_platform
from . import ADDED, CHANGED, DEFAULT_EXCLUDES, DELETED, Change, _matches

Snapshot = dict[str, tuple[int, int, int, int, int, str]]


def snapshot(roots: tuple[str, ...], skip: Callable[[str], bool] = lambda path: False) -> Snapshot:
    """(mode, size, mtime_ns, inode, device, link target) for every path under `roots`."""
    seen: Snapshot = {}

    def record(path: str) -> bool:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
        seen[path] = (st.st_mode, st.st_size if not stat.S_ISDIR(st.st_mode) else 0, st.st_mtime_ns, st.st_ino, st.st_dev, link)
        return stat.S_ISDIR(st.st_mode)

    for root in roots:
        if not record(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            kept = []
            for name in dirnames:
                path = os.path.join(dirpath, name)
                if skip(path):
                    continue
                if record(path) and not os.path.islink(path):
                    kept.append(name)
            dirnames[:] = kept
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not skip(path):
                    record(path)
    return seen


def compare(before: Snapshot, after: Snapshot) -> list[Change]:
    changes = [Change(DELETED, p) for p in before.keys() - after.keys()]
    for path, facts in after.items():
        old = before.get(path)
        if old is None:
            changes.append(Change(ADDED, path))
        elif old != facts:
            changes.append(Change(CHANGED, path))
    return sorted(changes, key=lambda c: c.path)


def stage(paths: list[str], staging: Path) -> None:
    """Copy `paths` (not recursing into folders) into `staging` as it mirrors /, keeping modes,
    mtimes, symlinks and hard links between copied files."""
    linked: dict[tuple[int, int], Path] = {}
    folders: list[tuple[str, Path]] = []
    for path in sorted(paths):
        target = staging / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # removed again after the snapshot
        if stat.S_ISDIR(st.st_mode):
            target.mkdir(exist_ok=True)
            folders.append((path, target))
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(path), target)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in linked:
                os.link(linked[key], target)
                continue
            shutil.copy2(path, target, follow_symlinks=False)
            linked[key] = target
        else:
            msg = f"{path} is a device, fifo or socket; a pack cannot hold it: exclude it in [capture] exclude"
            raise UsageError(msg)
    for path, target in reversed(folders):  # after their contents, so the mtimes stick
        shutil.copystat(path, target, follow_symlinks=False)


class Host:
    """This machine as a build site: steps run here, files are copied into place, and the changes
    are what the roots' metadata differs by since `watch()`."""

    where = "in this runtime"
    workdir = None

    def __init__(self, roots: tuple[str, ...], excludes: Iterable[str] = ()) -> None:
        self.roots = roots
        # An exclude that covers a root the recipe names (a root under /tmp, say) does not apply.
        self.skip = [p for p in (*DEFAULT_EXCLUDES, *excludes) if not any(_matches(r, [p]) for r in roots)]
        self.before: Snapshot = {}

    def watch(self) -> None:
        """Snapshot the roots: what changes after this is what the build changed."""
        self.before = self._snapshot()

    def _snapshot(self) -> Snapshot:
        return snapshot(self.roots, lambda path: _matches(path, self.skip))

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def exec(self, argv: list[str], *, env: dict[str, str] | None = None, workdir: str | None = None,
             on_line: Callable[[str], None] | None = None, mask: Iterable[str] = ()) -> _proc.Ran:
        return _proc.stream(argv, env=env, cwd=workdir, on_line=on_line, mask=mask)

    def put_file(self, dest: str, src: Path, mode: int = 0o644) -> None:
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        os.chmod(dest, mode)

    def put_tree(self, src: Path, dest: str) -> None:
        shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)

    def changes(self) -> list[Change]:
        return compare(self.before, self._snapshot())

    def export(self, paths: list[str], staging: Path) -> None:
        stage(paths, staging)

    def platform(self) -> Platform:
        return current_platform()


def in_colab() -> bool:
    """True in a Colab runtime (it sets COLAB_RELEASE_TAG for the kernel and every `!command`, and
    ships google.colab), where no Docker engine runs and the scan backend is the way to build."""
    if os.environ.get("COLAB_RELEASE_TAG"):
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:  # no `google` package at all
        return False
