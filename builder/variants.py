"""A lock's variants of a pack (one entry per platform): which one the running runtime restores,
and what to build when none fits. Choosing reads the platforms the lock records: no download.

Of the variants that fit (runtime.mismatches finds nothing), the one recording the most facts
wins, then the one built for the newest glibc and CUDA (nearest this runtime), then the first in
the lock. An entry without a platform fits every runtime and so comes last.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import PlatformMismatch, UsageError
from .lock import Lock, LockedPack
from .manifest import Platform
from .runtime import current_platform, mismatches, short, specificity


def by_name(packs: Iterable[LockedPack]) -> dict[str, list[LockedPack]]:
    """The lock's entries grouped by pack name, in the lock's order."""
    groups: dict[str, list[LockedPack]] = {}
    for pack in packs:
        groups.setdefault(pack.name, []).append(pack)
    return groups


def platform_here(packs: Iterable[LockedPack]) -> Platform:
    """This runtime's facts, asking the NVIDIA driver only when some variant records CUDA."""
    return current_platform(with_cuda=any(p.platform is not None and p.platform.cuda for p in packs))


def fitting(variants: Iterable[LockedPack], here: Platform) -> LockedPack | None:
    """The variant this runtime restores, or None when none fits."""
    fits = [v for v in variants if v.platform is None or not mismatches(v.platform, here)]
    return max(fits, key=lambda v: specificity(v.platform), default=None)  # max keeps the first of equals


def choose(variants: list[LockedPack], here: Platform) -> LockedPack:
    """The variant this runtime restores, or PlatformMismatch as one line: the variants there are
    and the command that builds the one missing."""
    chosen = fitting(variants, here)
    if chosen is None:
        raise PlatformMismatch(no_fit(variants, here))
    return chosen


def no_fit(variants: list[LockedPack], here: Platform) -> str:
    name = variants[0].name
    there = ", ".join(f"{short(v.platform)} ({v.version})" for v in variants)
    return (f"no variant of {name} fits this runtime ({short(here)}); the lock has {there}: "
            f"build one with `{build_command(name, here)}` and push it to the same lock")


def build_command(name: str, here: Platform) -> str:
    """The build that makes pack `name` for this runtime: with the mirror of a runtime of images/
    whose OS and Python are this one's, else with the scan backend, in this runtime."""
    runtime = mirror_of(here)
    if runtime is None:
        return f"prebake build {name} --backend scan -o packs"
    return f"prebake build {name} --runtime {runtime} -o packs"


def mirror_of(here: Platform) -> str | None:
    """The runtime of images/ (or $PREBAKE_IMAGES_DIR) that mirrors this one: same OS and Python."""
    from .mirror import known_runtimes, load_runtime  # builds only: not on a restore's way

    for name in known_runtimes():
        try:
            facts = load_runtime(name).facts
        except UsageError:  # a broken facts file is the build's to report
            continue
        if str(facts.get("os")) == here.os and str(facts.get("python")) == here.python:
            return name
    return None


def matrix(lock: Lock, here: Platform, source: str) -> list[str]:
    """The lock as a matrix for `prebake inspect LOCK`: each name, its variants (platform, version,
    digest), the one this runtime restores (marked ->), or the build that would make one."""
    lines = [f"{source}: {len(lock.packs)} variant(s) of {len(by_name(lock.packs))} pack(s); this runtime is {short(here)}"]
    width = max(len(short(v.platform)) for v in lock.packs)
    for name, variants in by_name(lock.packs).items():
        chosen = fitting(variants, here)
        lines.append(name)
        for v in variants:
            mark = "->" if v is chosen else "  "
            lines.append(f"  {mark} {short(v.platform):<{width}}  {v.version:<10} {v.digest[:19]}")
        if chosen is None:
            lines.append(f"     none fits this runtime: build one with `{build_command(name, here)}`")
    return lines
