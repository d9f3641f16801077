"""The pack manifest (prebake-pack/1): what a pack holds and how to check it.

The pack's identity is the sha256 of the manifest's bytes, so `dumps` is canonical: the same
manifest always serialises to the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from .errors import IntegrityError, UsageError

FORMAT = "prebake-pack/1"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Part:
    name: str
    size: int
    sha256: str
    members: int
    bytes: int
    store_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Platform:
    """The runtime a pack's compiled bits need; None fields are not checked."""

    os: str | None = None
    arch: str | None = None
    python: str | None = None
    abi: str | None = None
    glibc: str | None = None
    cuda: str | None = None


@dataclass(frozen=True)
class Env:
    prepend: dict[str, tuple[str, ...]] = field(default_factory=dict)
    set: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """`symlinks` lists every symlink the parts hold: parts extract in parallel, so each part must
    know up front which paths it may not write through."""

    name: str
    version: str
    target: str
    prefixes: tuple[str, ...]
    parts: tuple[Part, ...]
    platform: Platform | None = None
    env: Env = field(default_factory=Env)
    check: str | None = None
    whiteouts: tuple[str, ...] = ()
    symlinks: tuple[str, ...] = ()
    created_by: dict[str, str] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def dumps(self) -> bytes:
        data = {"format": FORMAT, **asdict(self)}
        return (json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()

    @property
    def digest(self) -> str:
        return digest_of(self.dumps())

    @property
    def packed_size(self) -> int:
        return sum(part.size for part in self.parts)

    def with_store_ids(self, store: str, ids: dict[str, str]) -> Manifest:
        """A copy recording where each part lives in `store` (for stores that address by id)."""
        parts = tuple(replace(p, store_ids={**p.store_ids, store: ids[p.name]}) for p in self.parts)
        return replace(self, parts=parts)


def digest_of(manifest_bytes: bytes) -> str:
    return "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()


def loads(data: bytes, source: str = "manifest.json") -> Manifest:
    try:
        raw: dict[str, Any] = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        msg = f"{source} is not a prebake manifest (not JSON: {e}); point prebake at a pack folder or its manifest.json"
        raise IntegrityError(msg) from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        msg = f"{source} has format {found!r}, this prebake reads {FORMAT!r}; upgrade prebake or rebuild the pack"
        raise UsageError(msg)
    try:
        platform = raw.get("platform")
        env = raw.get("env") or {}
        manifest = Manifest(
            name=raw["name"],
            version=raw["version"],
            target=raw["target"],
            prefixes=tuple(raw["prefixes"]),
            parts=tuple(Part(**p) for p in raw["parts"]),
            platform=Platform(**platform) if platform else None,
            env=Env(
                prepend={k: tuple(v) for k, v in env.get("prepend", {}).items()},
                set=dict(env.get("set", {})),
            ),
            check=raw.get("check"),
            whiteouts=tuple(raw.get("whiteouts", ())),
            symlinks=tuple(raw.get("symlinks", ())),
            created_by=dict(raw.get("created_by", {})),
            stats=dict(raw.get("stats", {})),
        )
    except (KeyError, TypeError) as e:
        msg = f"{source} is a damaged prebake manifest ({type(e).__name__}: {e}); fetch or rebuild the pack"
        raise IntegrityError(msg) from e
    validate(manifest, source)
    return manifest


def validate(manifest: Manifest, source: str) -> None:
    """Refuse manifests whose paths could escape the filesystem they are restored into."""
    for prefix in manifest.prefixes:
        path = PurePosixPath(prefix)
        if not path.is_absolute() or ".." in path.parts or path == PurePosixPath("/"):
            msg = f"{source}: prefix {prefix!r} must be an absolute path below / without '..'"
            raise UsageError(msg)
    for part in manifest.parts:
        if "/" in part.name or part.name.startswith("."):
            msg = f"{source}: part name {part.name!r} is not a plain file name"
            raise IntegrityError(msg)
    for path_text in manifest.whiteouts:
        path = PurePosixPath(path_text)
        if not path.is_absolute() or ".." in path.parts or not under_prefixes(path_text, manifest.prefixes):
            msg = f"{source}: whiteout {path_text!r} is outside the pack's prefixes"
            raise UsageError(msg)


def under_prefixes(path: str, prefixes: tuple[str, ...]) -> bool:
    """True when absolute `path` is one of `prefixes` or below one."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)
