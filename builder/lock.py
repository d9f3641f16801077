"""The lock file (prebake.lock, TOML): the packs a project pins, by digest, with their locations.

    version = 2
    [[pack]]
    name = "opensmile"
    version = "3.0.2"
    digest = "sha256:..."            # sha256 of the pack's manifest.json
    locations = ["gdrive://...", "https://mirror/opensmile"]   # tried in order
    allow_env = ["LD_PRELOAD"]       # optional: variables the pack may set despite the deny list
    platform = { os = "ubuntu 22.04", arch = "x86_64", python = "3.12", glibc = "2.35" }

A name has one entry per platform (its variants: the restore picks the one that fits the runtime,
see variants.py), or one entry without a platform: a pack for any runtime, as every entry of a
version 1 lock reads. `platform` repeats the manifest's, so that choosing needs no download; the
digest still pins the manifest, and a manifest whose platform differs from its entry is refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ._fs import atomic_write
from .errors import UsageError
from .manifest import Manifest, Platform
from .runtime import short

LOCK_VERSION = 2
_READABLE = (1, LOCK_VERSION)
_FACTS = tuple(f.name for f in fields(Platform))
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
LOCK_NAME = "prebake.lock"


@dataclass(frozen=True)
class LockedPack:
    name: str
    version: str
    digest: str
    locations: tuple[str, ...]
    allow_env: tuple[str, ...] = ()
    platform: Platform | None = None
    """The runtime this variant needs (the manifest's platform); None: any runtime, or not recorded."""

    @classmethod
    def pinning(cls, manifest: Manifest, digest: str, locations: tuple[str, ...]) -> LockedPack:
        """The entry that pins a pack: its name, version, digest and platform, at `locations`."""
        return cls(manifest.name, manifest.version, digest, locations, platform=recorded(manifest.platform))

    def replaces(self, other: LockedPack) -> bool:
        """Whether writing this entry drops `other`: the same name, and the same platform or no
        platform on either side (a pack for any runtime is the name's only entry)."""
        return self.name == other.name and (self.platform == other.platform or None in (self.platform, other.platform))


def recorded(platform: Platform | None) -> Platform | None:
    """`platform`, or None when it records no fact (both mean: any runtime)."""
    return platform if platform is not None and any(vars(platform).values()) else None


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
                        **({"platform": _inline(pack.platform)} if pack.platform else {}),
                    }
                )
            )
        doc["pack"] = table
        return tomlkit.dumps(doc)

    def merged(self, other: Lock) -> Lock:
        """This lock with `other`'s packs written in: each takes the place of the entries it replaces
        (LockedPack.replaces: the same name and platform, or no platform on either side), or else
        goes after its name's other variants; other packs are kept. With an unchanged digest the old locations stay
        after the new ones (they hold the same bytes: a push to one more mirror adds to the list).
        allow_env is the maintainer's choice, not the pack's: a new entry without one keeps the old
        (or, for a new variant, its name's)."""
        packs = list(self.packs)
        for pack in other.packs:
            replaced = [i for i, old in enumerate(packs) if pack.replaces(old)]
            named = [i for i, old in enumerate(packs) if old.name == pack.name]
            old = packs[replaced[0]] if replaced else packs[named[0]] if named else None
            if old is not None:
                same = old.digest == pack.digest
                pack = replace(pack, locations=tuple(dict.fromkeys(pack.locations + old.locations)) if same else pack.locations,
                               allow_env=pack.allow_env or old.allow_env,
                               platform=(pack.platform or old.platform) if same else pack.platform)  # same digest, same manifest
            at = replaced[0] if replaced else named[-1] + 1 if named else len(packs)
            packs = [p for i, p in enumerate(packs) if i not in replaced]  # all at or after `at`
            packs.insert(at, pack)
        return Lock(tuple(packs))


def _inline(platform: Platform) -> tomlkit.items.InlineTable:
    table = tomlkit.inline_table()
    table.update({fact: value for fact, value in vars(platform).items() if value is not None})
    return table


def loads(text: str, source: str = LOCK_NAME) -> Lock:
    try:
        raw = tomlkit.parse(text).unwrap()
    except TOMLKitError as e:
        msg = f"{source} is not valid TOML ({e}); regenerate it with `prebake lock`"
        raise UsageError(msg) from e
    if raw.get("version") not in _READABLE:
        msg = (f"{source} has lock version {raw.get('version')!r}; this prebake reads versions "
               f"{' and '.join(map(str, _READABLE))}: upgrade prebake (pip install -U prebake)")
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
        pack = LockedPack(entry["name"], str(entry["version"]), entry["digest"], tuple(entry["locations"]),
                          tuple(entry.get("allow_env", ())), _platform(entry.get("platform"), f"{source}: pack #{i + 1}"))
        twin = next((j for j, other in enumerate(packs) if (other.name, other.platform) == (pack.name, pack.platform)), None)
        if twin is not None:
            msg = f"{source}: packs #{twin + 1} and #{i + 1} are both {pack.name} for platform {short(pack.platform)}; keep one"
            raise UsageError(msg)
        packs.append(pack)
    if not packs:
        msg = f"{source} lists no packs; add some with `prebake lock PACK... -o {source}`"
        raise UsageError(msg)
    return Lock(tuple(packs))


def _platform(value: object, where: str) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) and v and v.isprintable() and len(v) < 64 for v in value.values()):
        msg = f"{where} has platform {str(value)[:80]!r}; it must be a table of short one-line strings, like {{ python = \"3.12\" }}"
        raise UsageError(msg)
    unknown = sorted(set(value) - set(_FACTS))
    if unknown:
        msg = f"{where} has platform facts {unknown} this prebake does not know (it knows {', '.join(_FACTS)}); upgrade prebake"
        raise UsageError(msg)
    return recorded(Platform(**value))


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
    new = Lock(tuple(replace(p, locations=tuple(_relative(base, loc) for loc in p.locations)) for p in packs))
    new = (load(path) if path.exists() else Lock(())).merged(new)  # merged even into nothing: one entry per name and platform
    dump(new, path)
    return new


def _relative(base: Path, location: str) -> str:
    if "://" in location or not os.path.isabs(location):
        return location
    folder = Path(location).resolve()
    return os.path.relpath(folder, base) if folder.is_relative_to(base) else str(folder)
