"""Real conda environments for tests, built offline: small packages from tests/conda/recipes.

The recipes cover the ways a conda package holds its install prefix (a text file, a compiled-in C
string, several occurrences in one binary string, a noarch python entry point), so code that moves
or packs an environment meets real conda-meta records and a real package cache, not hand-made JSON.

A test module gets the fixtures with (importing them by name would trip ruff's F811):

    pytest_plugins = ["tests.conda_env"]

    def test_something(make_conda_env, tmp_path):
        prefix = make_conda_env(tmp_path / "env")
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from rattler_build import RenderConfig, Stage0Recipe, ToolConfiguration

RECIPES = Path(__file__).parent / "conda" / "recipes"
INSTALLER = Path(__file__).parent / "conda" / "install.py"
# `python` resolves to the wrapper over the running interpreter; ask for "python 3.8.*" to get the fake.
DEFAULT_SPECS = ("python", "pb-config", "pb-greet", "pb-pyhello", "pb-longbin")


def build_channel(channel: Path) -> Path:
    """Build every recipe into the local channel `channel`, with no network: nothing there has build deps.

    The `python` recipe wraps the running interpreter, so it is templated with its version here.
    """
    version = sys.version_info
    context = {
        "py_version": f"{version.major}.{version.minor}.{version.micro}",
        "py_short": f"{version.major}.{version.minor}",
        "py_exe": str(Path(sys.executable).resolve()),
    }
    channel.mkdir(parents=True, exist_ok=True)
    for recipe in sorted(RECIPES.glob("*/recipe.yaml")):
        Stage0Recipe.from_file(recipe).run_build(
            output_dir=channel,
            channels=[channel.as_uri()],
            tool_config=ToolConfiguration(test_strategy="skip"),
            render_config=RenderConfig(extra_context=context),
        )
    return channel


def install_env(channel: Path, prefix: Path, specs: Sequence[str], cache: Path) -> Path:
    """Solve `specs` from `channel` and install them into `prefix`, extracting packages into `cache`.

    conda-pack reads file modes from the extracted packages, so the cache must outlive the env.
    py-rattler can crash the interpreter at exit, hence a child process (tests/conda/install.py).
    """
    result = subprocess.run(
        [sys.executable, str(INSTALLER), str(channel), str(prefix), str(cache), *specs],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"installing {list(specs)} into {prefix} failed ({result.returncode}):\n{result.stderr}")
    return prefix


@pytest.fixture(scope="session")
def conda_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test channel, built once per session (about half a second)."""
    return build_channel(tmp_path_factory.mktemp("conda-channel"))


@pytest.fixture(scope="session")
def conda_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One package cache for the session's envs. Files without a prefix are hard links into it:
    a test that edits an env file in place must replace the file, not write through it."""
    return tmp_path_factory.mktemp("conda-pkgs")


@pytest.fixture
def make_conda_env(conda_channel: Path, conda_cache: Path) -> Callable[..., Path]:
    """A factory: make_conda_env(prefix, specs=DEFAULT_SPECS) installs an env and returns its prefix."""

    def make(prefix: Path, specs: Sequence[str] = DEFAULT_SPECS) -> Path:
        return install_env(conda_channel, prefix, specs, conda_cache)

    return make
