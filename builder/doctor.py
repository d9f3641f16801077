"""`prebake doctor`: this runtime's facts against every pack of a lock. Which packs restore here
(and which variant), which need a rebuild (and the command), which are restored here already, and
where this runtime has moved past a pack's facts in a way that is accepted (newer glibc or CUDA).

    from prebake.doctor import doctor
    diagnosis = doctor("prebake.lock")
    print("\\n".join(diagnosis.lines()))      # diagnosis.ok: every pack has a variant for this runtime

Choosing reads the platforms the lock records, as the restore does. An entry without one (a
version 1 lock) has its manifest read, so that an old lock is diagnosed too.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import PrebakeError, api
from .locate import fetch_manifest, lock_location, read_lock
from .lock import LockedPack, recorded
from .manifest import Platform
from .restore import installed_digest
from .runtime import drift, short
from .stores import open_store
from .variants import build_command, by_name, fitting, platform_here


@dataclass(frozen=True)
class PackHealth:
    """One pack name of the lock, as this runtime sees it."""

    name: str
    variants: tuple[LockedPack, ...]
    chosen: LockedPack | None
    """The variant a restore here takes; None: none fits."""
    rebuild: str | None
    """The command that builds a variant for this runtime, when none fits."""
    drift: str | None
    """runtime.drift of the chosen variant: restores, but the runtime moved past its facts."""
    installed: str | None
    """The digest restored here (the install marker under the root), if any."""
    unknown: str = ""
    """Why the platform of an entry that records none could not be learned (its manifest unreadable)."""

    def line(self) -> str:
        if self.chosen is None:
            there = ", ".join(short(v.platform) for v in self.variants)
            return f"  rebuild   {self.name}: no variant for this runtime (the lock has {there}); build one with `{self.rebuild}`"
        pack = self.chosen
        if self.installed == pack.digest:
            state = "restored"
        elif self.installed:
            state = f"restores (replacing the build restored here, {self.installed[:19]})"
        else:
            state = "restores"
        notes = [note for note in (self.drift, self.unknown) if note]
        return (f"  {state:<9} {pack.name} {pack.version} for {short(pack.platform)} ({pack.digest[:19]})"
                + "".join(f"; {note}" for note in notes))


@dataclass(frozen=True)
class Diagnosis:
    source: str
    here: Platform
    packs: tuple[PackHealth, ...]

    @property
    def ok(self) -> bool:
        """Whether every pack has a variant that restores here."""
        return all(pack.chosen is not None for pack in self.packs)

    @property
    def missing(self) -> list[str]:
        return [pack.name for pack in self.packs if pack.chosen is None]

    def lines(self) -> list[str]:
        lines = [f"this runtime: {short(self.here)}; {self.source}:"]
        lines += [pack.line() for pack in self.packs]
        if self.missing:
            lines.append(f"{len(self.missing)} of {len(self.packs)} pack(s) need a build for this runtime: {', '.join(self.missing)}")
        else:
            lines.append(f"all {len(self.packs)} pack(s) restore here")
        return lines


@api
def doctor(source: str | os.PathLike = "prebake.lock", root: str | os.PathLike = "/") -> Diagnosis:
    """This runtime against every pack of the lock at `source` (a path or URL), with the install
    markers under `root`; see Diagnosis.ok and Diagnosis.lines()."""
    lock, base = read_lock(source)
    groups = {name: [_learned(v, base) for v in variants] for name, variants in by_name(lock.packs).items()}
    here = platform_here(v for learned in groups.values() for v, _ in learned)
    health = []
    for name, learned in groups.items():
        variants = tuple(v for v, _ in learned)
        chosen = fitting(variants, here)
        health.append(PackHealth(
            name=name, variants=variants, chosen=chosen,
            rebuild=build_command(name, here) if chosen is None else None,
            drift=drift(chosen.platform, here) if chosen is not None and chosen.platform is not None else None,
            installed=installed_digest(Path(os.fspath(root)), name),
            unknown="; ".join(why for _, why in learned if why),
        ))
    return Diagnosis(os.fspath(source), here, tuple(health))


def _learned(pack: LockedPack, base: str) -> tuple[LockedPack, str]:
    """`pack` with its platform: the lock's, or for an entry that records none, its manifest's
    (from the first location that answers); with why it could not be learned, if so."""
    if pack.platform is not None:
        return pack, ""
    failures = []
    for location in pack.locations:
        try:
            with open_store(lock_location(base, location)) as store:
                manifest = fetch_manifest(store, pack.digest).manifest
            return dataclasses.replace(pack, platform=recorded(manifest.platform)), ""
        except PrebakeError as e:
            failures.append(str(e))
    return pack, f"its platform is not in the lock and its manifest could not be read ({' | '.join(failures)})"
