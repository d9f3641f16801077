"""The Colab-mirror image: per-runtime facts (images/<runtime>/runtime.toml), the build arguments
Dockerfile.colab-ubuntu takes from them, the cache tag, and capturing the facts of a live runtime.

The image tag is prebake-colab:<runtime>-<hash>, the hash covering the Dockerfile, the facts file,
the base image's id and every build argument; an existing tag is reused, so building again is free.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ContainerEngineError, UsageError
from .recipe import _load_toml
from .shipped import DOCKERFILE_NAME as DOCKERFILE
from .shipped import dockerfile, images_dir

IMAGE_REPOSITORY = "prebake-colab"
# Wheels whose ABI compiled code depends on; `image capture` records these when installed.
PIN_NAMES = ("numpy", "scipy", "pandas", "protobuf", "Cython", "h5py", "pyarrow", "opencv-python",
             "opencv-python-headless", "tensorflow", "jax", "jaxlib", "pip", "setuptools", "wheel")
GPU_PIN_NAMES = ("torch", "torchvision", "torchaudio")


def known_runtimes() -> list[str]:
    folder = images_dir()
    return sorted(p.parent.name for p in folder.glob("*/runtime.toml")) if folder.is_dir() else []


@dataclass(frozen=True)
class Runtime:
    name: str
    facts: dict[str, Any]
    path: Path

    @property
    def python(self) -> str:
        return str(self.facts["python"])

    def pins(self, gpu: bool = False) -> dict[str, str]:
        pins = dict(self.facts.get("pins", {}))
        if gpu:
            pins.update(self.facts.get("gpu", {}).get("pins", {}))
        return pins


def load_runtime(name: str) -> Runtime:
    path = images_dir() / name / "runtime.toml"
    if not path.is_file():
        known = ", ".join(known_runtimes()) or "none"
        msg = f"runtime {name!r} has no facts file ({path}); known runtimes: {known}"
        raise UsageError(msg)
    facts = _load_toml(path.read_text(), str(path))
    for key in ("runtime", "python", "base_image"):
        if key not in facts:
            msg = f"{path}: {key}: missing"
            raise UsageError(msg)
    return Runtime(name, facts, path)


@dataclass(frozen=True)
class ImagePlan:
    """What `docker build` gets: pure data, so it can be tested without an engine."""

    runtime: str
    base_image: str
    buildargs: dict[str, str]

    def tag(self, base_id: str, context: bytes) -> str:
        text = json.dumps([self.runtime, self.base_image, base_id, sorted(self.buildargs.items())]).encode()
        return f"{IMAGE_REPOSITORY}:{self.runtime}-{hashlib.sha256(text + context).hexdigest()[:12]}"


def plan_image(runtime: Runtime, *, base_image: str | None = None, python: str | None = None,
               install_pins: bool = True, gpu: bool = False) -> ImagePlan:
    pins = runtime.pins(gpu)
    install = [f"{name}=={pins[name]}" for name in runtime.facts.get("install", []) if name in pins]
    base = base_image or str(runtime.facts["base_image"])
    args = {
        "BASE_IMAGE": base,
        "PYTHON": python or runtime.python,
        "PIP_PINS": " ".join(f"{k}=={v}" for k, v in sorted(pins.items())),
        "INSTALL": " ".join(install) if install_pins else "",
    }
    return ImagePlan(runtime.name, base, args)


def _context_bytes(runtime: Runtime) -> bytes:
    return dockerfile().read_bytes() + b"\0" + runtime.path.read_bytes()


def ensure_image(engine, runtime: Runtime, plan: ImagePlan, *, rebuild: bool = False,
                 on_line: Callable[[str], None] | None = None) -> tuple[str, str, bool]:
    """(tag, image id, whether it was built now) of the mirror image; an existing tag is reused."""
    from .capture import docker as backend

    base_id = backend.image_id(engine, plan.base_image)
    if base_id is None:
        msg = f"base image {plan.base_image!r} is not in the Docker engine; pull or load it (docker pull {plan.base_image})"
        raise ContainerEngineError(msg)
    tag = plan.tag(base_id, _context_bytes(runtime))
    found = backend.image_id(engine, tag)
    if found and not rebuild:
        return tag, found, False
    with tempfile.TemporaryDirectory(prefix="prebake-image-") as context:
        shutil.copy(dockerfile(), Path(context) / DOCKERFILE)
        shutil.copy(runtime.path, Path(context) / "runtime.toml")
        labels = {"prebake.runtime": runtime.name, "prebake.base-image": plan.base_image, "prebake.base-id": base_id}
        image = backend.build_image(engine, Path(context), DOCKERFILE, tag, plan.buildargs, labels, on_line)
    return tag, image, True


# ---------------------------------------------------------------- facts of the runtime we run in


def capture_facts(name: str) -> str:
    """runtime.toml text describing the runtime this process runs in (for a live Colab session)."""
    from importlib import metadata

    from .runtime import cuda_version, current_platform

    here = current_platform()
    installed: dict[str, str] = {}
    for dist in (*PIN_NAMES, *GPU_PIN_NAMES):
        try:
            installed[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    lines = [
        "# Captured by `prebake image capture` in a live runtime.",
        f"runtime = {json.dumps(name)}",
        f"source = {json.dumps('prebake image capture')}",
        f"base_image = {json.dumps(_ubuntu_image(here.os))}",
        f"os = {json.dumps(here.os or 'unknown')}",
        f"python = {json.dumps(here.python)}",
        f"python_full = {json.dumps('.'.join(map(str, sys.version_info[:3])))}",
        f"glibc = {json.dumps(here.glibc or '')}",
        f"install = {json.dumps([n for n in ('numpy', 'protobuf', 'Cython') if n in installed])}",
        "",
    ]
    cuda = cuda_version()
    if cuda:
        lines += ["[gpu]", f"cuda = {json.dumps(cuda)}", ""]
    lines.append("[pins]")
    lines += [f"{json.dumps(k) if '-' in k else k} = {json.dumps(v)}" for k, v in installed.items() if k in PIN_NAMES]
    gpu = {k: v for k, v in installed.items() if k in GPU_PIN_NAMES}
    if gpu:
        lines += ["", "[gpu.pins]"] + [f"{k} = {json.dumps(v)}" for k, v in gpu.items()]
    return "\n".join(lines) + "\n"


def _ubuntu_image(os_name: str | None) -> str:
    if os_name and " " in os_name:
        ident, version = os_name.split(" ", 1)
        return f"{ident}:{version}"
    return "ubuntu:22.04"
