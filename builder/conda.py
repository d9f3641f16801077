"""A conda environment -> a pack that restores at any prefix, with no conda and no kernel restart.

conda-pack decides which files carry the prefix and how (text or binary, with which placeholder):
it reads each package's records from the package cache. prebake then writes its own parts. Files
conda recorded as holding a prefix are packed as the package cache has them, holding conda's
placeholder, so that a restore can write any prefix up to the placeholder's length into binaries
(builder/relocate.py); text files that hold the environment's own folder but were not installed by
conda (entry points, pip-installed scripts) are recorded with that folder as their placeholder.
Absolute symlinks into the environment become relative, so they move with it.

conda-pack is imported only here, and only when a pack is made: the restore path never needs it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from dataclasses import replace
from pathlib import Path

from .errors import UsageError
from .gate import under
from .manifest import CondaPrefix, Env, Manifest, Platform
from .pack import PackOptions, pack_tree
from .relocate import check_prefix

_GLIBC_FLOOR = re.compile(r"__glibc\s*>=\s*([0-9][0-9.]*)")


def _conda_pack():
    try:
        import conda_pack
    except ImportError:
        msg = "packing a conda environment needs conda-pack: pip install 'prebake[conda]'"
        raise UsageError(msg) from None
    return conda_pack


def _records(prefix: Path) -> list[dict]:
    """conda-meta's package records, or a one-line refusal when `prefix` is not a conda environment."""
    meta = prefix / "conda-meta"
    if not meta.is_dir():
        msg = f"{prefix} is not a conda environment (it has no conda-meta folder); pass the environment's prefix"
        raise UsageError(msg)
    records = []
    for path in sorted(meta.glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError) as e:
            msg = f"{path} is not a readable package record ({e}); repair the environment before packing it"
            raise UsageError(msg) from e
    return records


def _check_cache(prefix: Path, records: list[dict]) -> None:
    """conda-pack learns which files hold the prefix from the package cache; without it every file
    is 'unknown' and binaries would keep the old prefix, so a missing cache is refused here."""
    missing = [f"{r.get('name')} {r.get('version')}" for r in records
               if not (r.get("link") or {}).get("source") or not Path(r["link"]["source"]).is_dir()]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        msg = (f"{prefix}: the package cache no longer holds {shown} (conda-pack reads which files hold the prefix from "
               "there); pack the environment where it was installed, before the cache is cleaned, or install them again")
        raise UsageError(msg)


def _platform(records: list[dict]) -> Platform:
    """What the environment needs of a machine: its architecture and the newest glibc its packages
    ask for (conda packages carry their own libraries, so the distribution and Python do not matter)."""
    floors = [m.group(1) for r in records for dep in r.get("depends", ()) if (m := _GLIBC_FLOOR.search(dep))]
    glibc = max(floors, key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()), default=None)
    return Platform(arch=platform.machine(), glibc=glibc)


def _python_of(site_packages: str) -> str:
    """'3.12' from 'lib/python3.12/site-packages' ("" for an environment without Python)."""
    found = re.search(r"python(\d+\.\d+)", site_packages)
    return found.group(1) if found else ""


def _is_text(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


class _Stager:
    """Lays the environment out in a staging folder as it will restore, recording the prefix records."""

    def __init__(self, env: Path, staging: Path, installed_at: str) -> None:
        self.env, self.staging, self.installed_at = env, staging, installed_at
        self.own = installed_at.encode()
        self.placeholders: dict[str, int] = {}
        self.text: dict[str, int] = {}
        self.binary: dict[str, int] = {}
        self.pinned = ""

    def _placeholder(self, text: str) -> int:
        return self.placeholders.setdefault(text, len(self.placeholders))

    def add(self, file, rewrite_meta) -> None:
        source, target = self.env / file.target, self.staging / file.target
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            link = os.readlink(source)
            if os.path.isabs(link) and under(link, self.installed_at):
                link = os.path.relpath(link, os.path.dirname(f"{self.installed_at}/{file.target}"))
            os.symlink(link, target)
            os.utime(target, ns=(source.lstat().st_mtime_ns,) * 2, follow_symlinks=False)
        elif source.is_dir():
            target.mkdir(exist_ok=True)
        elif file.file_mode in ("text", "binary") and file.prefix_placeholder:
            # As the package cache has it: holding conda's placeholder, which a restore replaces.
            shutil.copyfile(file.source, target)
            self._metadata(source, target)
            records = self.binary if file.file_mode == "binary" else self.text
            records[file.target] = self._placeholder(file.prefix_placeholder)
        elif file.target.startswith("conda-meta/") and file.target.endswith(".json"):
            target.write_bytes(rewrite_meta(str(source))[0])  # without the paths of this machine's cache
            self._metadata(source, target)
        else:
            data = source.read_bytes() if file.file_mode == "unknown" else b""
            if self.own in data:
                if _is_text(data):
                    self.text[file.target] = self._placeholder(self.installed_at)
                elif not self.pinned:
                    self.pinned = f"{file.target} holds {self.installed_at} in binary form and conda recorded no placeholder for it"
            try:
                os.link(source, target)
            except OSError:  # another file system, or links not allowed: a copy has the same bytes
                shutil.copy2(source, target)

    @staticmethod
    def _metadata(source: Path, target: Path) -> None:
        st = source.stat()
        os.chmod(target, st.st_mode & 0o7777)
        os.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns))

    def finish_folders(self) -> None:
        """The staged folders get the environment's modes and mtimes (deepest first)."""
        for folder in sorted((p for p in self.staging.rglob("*") if p.is_dir() and not p.is_symlink()), reverse=True):
            self._metadata(self.env / folder.relative_to(self.staging), folder)


def pack_conda(env: Path, out: Path, options: PackOptions, installed_at: str | None = None) -> Manifest:
    """Pack the conda environment at `env` so that it restores at `options.target` (or, later, any
    prefix its binaries have room for). `installed_at` is the prefix it was installed at, when it
    was copied since (a build exports it from a container)."""
    env = Path(os.path.abspath(env))
    installed_at = installed_at or str(env)
    to = options.target
    check_prefix(to, "--to")
    records = _records(env)
    _check_cache(env, records)
    conda_pack = _conda_pack()
    try:
        files = conda_pack.CondaEnv.from_prefix(str(env)).files
    except conda_pack.CondaPackException as e:
        msg = f"conda-pack cannot read the environment at {env}: {' '.join(str(e).split())}"
        raise UsageError(msg) from e
    site_packages = conda_pack.core.find_site_packages(str(env)) or ""
    staging_root = Path(os.path.abspath(out)).parent
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(os.path.join(staging_root, f".{out.name}.conda-staging"))
    shutil.rmtree(staging, ignore_errors=True)
    try:
        stager = _Stager(env, staging, installed_at)
        staging.mkdir()
        for file in files:
            stager.add(file, conda_pack.core.rewrite_conda_meta)
        stager.finish_folders()
        if stager.pinned and to != installed_at:
            msg = f"{stager.pinned}, so the environment can only restore where it is: pack it with --to {installed_at}"
            raise UsageError(msg)
        conda = CondaPrefix(prefix=to, placeholders=tuple(stager.placeholders), text=stager.text, binary=stager.binary,
                            python=_python_of(site_packages),
                            site_packages=site_packages, pinned=stager.pinned)
        limit = conda.longest_prefix
        if limit is not None and len(to.encode()) > limit:
            msg = f"--to {to} is longer than the {limit} bytes the environment's binaries hold for a prefix; choose a shorter one"
            raise UsageError(msg)
        prepend = {**options.env.prepend, "PATH": (f"{to}/bin", *options.env.prepend.get("PATH", ()))}
        options = replace(options, prefixes=(to,), platform=_platform(records),
                          env=Env(prepend, dict(options.env.set)), conda=conda,
                          created_by={"conda-pack": conda_pack.__version__, **options.created_by})
        return pack_tree(staging, out, options)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
