"""Facts about the runtime we run in, and whether a pack's recorded platform fits it."""

from __future__ import annotations

import os
import platform as _platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from .manifest import Platform


def os_release(root: Path = Path("/")) -> str | None:
    """'ubuntu 22.04' from /etc/os-release, or None where the file is missing."""
    for candidate in (root / "etc/os-release", root / "usr/lib/os-release"):
        try:
            text = candidate.read_text()
        except OSError:
            continue
        fields = dict(
            line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
        )
        ident = fields.get("ID", "").strip('"')
        version = fields.get("VERSION_ID", "").strip('"')
        return f"{ident} {version}".strip() or None
    return None


def cuda_version() -> str | None:
    """The CUDA runtime the NVIDIA driver reports, if there is one."""
    if os.environ.get("CUDA_VERSION"):
        return os.environ["CUDA_VERSION"]
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    marker = "CUDA Version:"
    if marker not in out:
        return None
    return out.split(marker, 1)[1].split()[0]


def current_platform(*, with_cuda: bool = True) -> Platform:
    """The facts of this runtime; `with_cuda=False` skips the nvidia-smi call when nobody asks."""
    libc, libc_version = _platform.libc_ver()
    return Platform(
        os=os_release(),
        arch=_platform.machine(),
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
        abi=sysconfig.get_config_var("SOABI"),
        glibc=libc_version if libc == "glibc" else None,
        cuda=cuda_version() if with_cuda else None,
    )


def _version_tuple(text: str | None) -> tuple[int, ...]:
    return tuple(int(piece) for piece in (text or "").split(".") if piece.isdigit())


def mismatches(needed: Platform, here: Platform) -> list[str]:
    """Human phrases for each recorded fact the runtime does not meet (glibc, CUDA: newer is fine)."""
    problems = []
    for fact in ("os", "arch", "python", "abi"):
        want, have = getattr(needed, fact), getattr(here, fact)
        if want is not None and want != have:
            problems.append(f"{fact} {want} (this runtime has {have or 'none'})")
    for fact in ("glibc", "cuda"):
        want, have = getattr(needed, fact), getattr(here, fact)
        if want and (not have or _version_tuple(have) < _version_tuple(want)):
            problems.append(f"{fact} >= {want} (this runtime has {have or 'none'})")
    return problems


def drift(needed: Platform, here: Platform) -> str | None:
    """One line when the runtime meets `needed` but has moved past it where newer is accepted
    (glibc, CUDA): the pack restores, and a rebuild for this runtime is the fix if it misbehaves.
    None when nothing moved or when the pack does not fit at all (mismatches says why)."""
    if mismatches(needed, here):
        return None
    moved = [f"{fact} {getattr(here, fact)} (built for {getattr(needed, fact)})" for fact in ("glibc", "cuda")
             if getattr(needed, fact) and _version_tuple(getattr(here, fact)) > _version_tuple(getattr(needed, fact))]
    if not moved:
        return None
    return f"this runtime has a newer {' and a newer '.join(moved)}; accepted, but if the pack misbehaves rebuild it for this runtime"


def short(platform: Platform | None) -> str:
    """A platform as words without spaces, for messages, the lock matrix and push folders:
    'ubuntu22.04 x86_64 py3.12 glibc2.35 cuda12.8'; 'any' when nothing is recorded. The ABI is
    shown only where the Python version does not imply it (a free-threaded build, say)."""
    if platform is None:
        return "any"
    implied_abi = f"cpython-{(platform.python or '').replace('.', '')}-"
    words = [
        (platform.os or "").replace(" ", ""),
        platform.arch,
        platform.python and f"py{platform.python}",
        platform.abi if platform.abi and not platform.abi.startswith(implied_abi) else None,
        platform.glibc and f"glibc{platform.glibc}",
        platform.cuda and f"cuda{platform.cuda}",
    ]
    return " ".join(word for word in words if word) or "any"


def specificity(platform: Platform | None) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """How closely a platform pins a runtime, for choosing among variants that all fit: more facts
    recorded first, then the newer glibc and CUDA (the build nearest to this runtime)."""
    platform = platform or Platform()
    recorded = sum(value is not None for value in vars(platform).values())
    return recorded, _version_tuple(platform.glibc), _version_tuple(platform.cuda)
