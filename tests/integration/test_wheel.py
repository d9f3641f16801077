"""From `pip install prebake` to a restored pack, as a new user goes: the wheel is built and installed
into a fresh virtualenv outside the checkout (no source tree on sys.path), and from a folder of
its own the user lists the shipped recipes, builds one by name, pushes it, restores from the lock
and runs what it installed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.docker]


def _run(argv: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding prebake[build] from the wheel of this checkout; returns its bin/ folder."""
    work = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work), str(REPO)], work)
    [wheel] = work.glob("prebake-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "prebake/_images/2026.07/runtime.toml" in names and "prebake/_dockerfile/Dockerfile.colab-ubuntu" in names
    assert "prebake/_recipes/hello.toml" in names and "prebake/_recipes/opensmile/pack.toml" in names
    assert not [n for n in names if n.startswith("builder/")], "the package installs as prebake only"
    _run([sys.executable, "-m", "venv", str(work / "venv")], work)
    _run([str(work / "venv/bin/python"), "-m", "pip", "install", "-q", f"{wheel}[build]"], work)
    return work / "venv/bin"


def test_a_shipped_recipe_builds_by_name_pushes_and_restores_from_the_wheel(installed: Path, build_args: list[str],
                                                                            tmp_path: Path) -> None:
    where = _run([str(installed / "python"), "-c", "import prebake, sys; print(prebake.__file__); print(sys.path)"], tmp_path)
    assert str(installed.parent) in where.stdout.splitlines()[0]
    assert str(REPO) not in where.stdout

    listed = _run([str(installed / "prebake"), "recipes"], tmp_path).stdout
    assert len(listed.splitlines()) >= 5 and any(line.startswith("hello ") for line in listed.splitlines())

    built = _run([str(installed / "prebake"), "build", "hello", "-o", "packs", *build_args, "-q"], tmp_path)
    assert "built hello 2.10" in built.stdout
    _run([str(installed / "prebake"), "push", "packs/hello", "--to", str(tmp_path / "store"), "-o", "prebake.lock"], tmp_path)
    restored = _run([str(installed / "prebake"), "restore", "--root", str(tmp_path / "root")], tmp_path)
    assert restored.stdout.startswith("restored hello 2.10: ")
    hello = subprocess.run([str(tmp_path / "root/opt/hello/bin/hello")], capture_output=True, text=True, check=True)
    assert hello.stdout.strip() == "Hello, world!"
