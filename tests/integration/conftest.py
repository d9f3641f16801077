"""Fixtures for the builder's integration tests: the Docker base image, the mirror image, recipes.

PREBAKE_TEST_BASE_IMAGE names the base image (.ci/run builds it with debootstrap), a Debian
bookworm; PREBAKE_TEST_TRIXIE_IMAGE a Debian trixie made the same way (Python 3.13), for the tests of
runtime variants. In CI (CI=true) a missing engine or image fails the tests; on a developer machine
they are skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from ..conftest import unavailable

REPO = Path(__file__).resolve().parents[2]


def _image(variable: str) -> str:
    """The test image $variable names, present in a running engine (else skipped, or failed under CI)."""
    image = os.environ.get(variable)
    if not image:
        unavailable(f"{variable} is not set")
    try:
        import docker

        with closing(docker.from_env()) as engine:
            engine.images.get(image)
    except Exception as e:  # docker raises many unrelated types for a missing engine
        unavailable(f"no Docker engine or no image {image}: {e}")
    return image


@pytest.fixture(scope="session")
def base_image() -> str:
    return _image("PREBAKE_TEST_BASE_IMAGE")


@pytest.fixture(scope="session")
def trixie_image() -> str:
    """A second runtime: Debian trixie with Python 3.13 (`bash .ci/base-image.sh prebake-test-base:trixie trixie`)."""
    return _image("PREBAKE_TEST_TRIXIE_IMAGE")


@pytest.fixture(scope="session")
def base_python(base_image: str) -> str:
    """The base image's Python (the test image is Debian's 3.11, not the runtime's)."""
    out = subprocess.run(["docker", "run", "--rm", "--network", "host", base_image, "python3", "-c",
                          "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture(scope="session")
def build_args(base_image: str, base_python: str) -> list[str]:
    """What every `prebake build` in these tests passes: the test base image, its Python, no pinned
    wheel installs (pins still constrain pip)."""
    return ["--base-image", base_image, "--python", base_python, "--no-pins"]


def prebake(*args: str, env: dict[str, str] | None = None, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m prebake ARGS` as a user would, capturing its output."""
    proc = subprocess.run([sys.executable, "-m", "prebake", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"prebake {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return proc


def leftover_containers() -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--filter", "label=prebake", "--format", "{{.Names}}"],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()
