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


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(piece) for piece in text.split(".") if piece.isdigit())


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
