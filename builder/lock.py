"""The lock file (prebake.lock, TOML): the packs a project pins, by digest, with their locations.

    version = 1
    [[pack]]
    name = "opensmile"
    version = "3.0.2"
    digest = "sha256:..."            # sha256 of the pack's manifest.json
    locations = ["gdrive://...", "https://mirror/opensmile"]   # tried in order
    allow_env = ["LD_PRELOAD"]       # optional: variables the pack may set despite the deny list
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ._fs import atomic_write
from .errors import UsageError

LOCK_VERSION = 1
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
LOCK_NAME = "prebake.lock"


@dataclass(frozen=True)
class LockedPack:
    name: str
    version: str
    digest: str
    locations: tuple[str, ...]
    allow_env: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lock:
    packs: tuple[LockedPack, ...]

    def dumps(self) -> str:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("prebake lock: restore with `prebake restore prebake.lock`"))
        doc["version"] = LOCK_VERSION
        table = tomlkit.aot()
        for pack in self.packs:
            table.append(
                tomlkit.item(
                    {
                        "name": pack.name,
                        "version": pack.version,
                        "digest": pack.digest,
                        "locations": list(pack.locations),
                        **({"allow_env": list(pack.allow_env)} if pack.allow_env else {}),
                    }
                )
            )
        doc["pack"] = table
        return tomlkit.dumps(doc)

    def merged(self, other: Lock) -> Lock:
        """This lock with `other`'s packs replacing same-named ones in place; other packs kept.
        With an unchanged digest the old locations stay after the new ones (they hold the same
        bytes: a push to one more mirror adds to the list). allow_env is the maintainer's choice,
        not the pack's: a new entry without one keeps the old."""
        by_name = {p.name: p for p in self.packs}
        for pack in other.packs:
            old = by_name.get(pack.name)
            if old:
                same = old.digest == pack.digest
                locations = tuple(dict.fromkeys(pack.locations + old.locations)) if same else pack.locations
                pack = LockedPack(pack.name, pack.version, pack.digest, locations, pack.allow_env or old.allow_env)
            by_name[pack.name] = pack
        return Lock(tuple(by_name.values()))


def loads(text: str, source: str = LOCK_NAME) -> Lock:
    try:
        raw = tomlkit.parse(text).unwrap()
    except TOMLKitError as e:
        msg = f"{source} is not valid TOML ({e}); regenerate it with `prebake lock`"
        raise UsageError(msg) from e
    if raw.get("version") != LOCK_VERSION:
        msg = f"{source} has lock version {raw.get('version')!r}; this prebake reads version {LOCK_VERSION}"
        raise UsageError(msg)
    packs = []
    entries = raw.get("pack", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        msg = f"{source}: `pack` must be an array of tables ([[pack]]); regenerate it with `prebake lock`"
        raise UsageError(msg)
    for i, entry in enumerate(entries):
        missing = [key for key in ("name", "version", "digest", "locations") if key not in entry]
        if missing or not entry["locations"]:
            what = ", ".join(missing) or "locations (empty)"
            msg = f"{source}: pack #{i + 1} lacks {what}; regenerate it with `prebake lock`"
            raise UsageError(msg)
        if not isinstance(entry["digest"], str) or not _DIGEST.fullmatch(entry["digest"]):
            msg = f"{source}: pack #{i + 1} has digest {entry['digest']!r}, expected 'sha256:' and 64 hex digits"
            raise UsageError(msg)
        for key in ("locations", "allow_env"):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                msg = f"{source}: pack #{i + 1} has {key} {value!r}; it must be a list of strings"
                raise UsageError(msg)
        if not isinstance(entry["name"], str):
            msg = f"{source}: pack #{i + 1} has name {entry['name']!r}; it must be a string"
            raise UsageError(msg)
        packs.append(LockedPack(entry["name"], str(entry["version"]), entry["digest"], tuple(entry["locations"]),
                                tuple(entry.get("allow_env", ()))))
    if not packs:
        msg = f"{source} lists no packs; add some with `prebake lock PACK... -o {source}`"
        raise UsageError(msg)
    return Lock(tuple(packs))


def load(path: Path) -> Lock:
    try:
        text = path.read_text()
    except OSError as e:
        msg = f"cannot read lock file {path}: {e.strerror}"
        raise UsageError(msg) from e
    return loads(text, str(path))


def dump(lock: Lock, path: Path) -> None:
    atomic_write(path, lock.dumps().encode())


def write_lock(path: Path, packs: Iterable[LockedPack]) -> Lock:
    """Pin `packs` in the lock at `path`, merged into what is there (see Lock.merged), written
    atomically; the one writer, so push, `prebake lock` and `prebake notebook --build` agree.
    An absolute folder inside the lock's own folder is written relative to it, so the project can
    move; relative locations are relative to the lock already."""
    base = path.resolve().parent
    new = Lock(tuple(LockedPack(p.name, p.version, p.digest, tuple(_relative(base, loc) for loc in p.locations), p.allow_env)
                     for p in packs))
    if path.exists():
        new = load(path).merged(new)
    dump(new, path)
    return new


def _relative(base: Path, location: str) -> str:
    if "://" in location or not os.path.isabs(location):
        return location
    folder = Path(location).resolve()
    return os.path.relpath(folder, base) if folder.is_relative_to(base) else str(folder)
