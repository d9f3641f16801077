"""Recipes with [conda]: the environment is solved with py-rattler at the build site from a local
channel (built offline by tests/conda_env.py), packed with conda-pack's records and restored
elsewhere. The build's prepare step installs py-rattler from PyPI, as it would on Colab."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from prebake.bake import BuildOptions, build
from prebake.manifest import loads
from prebake.recipe import parse
from prebake.restore import restore

from .conftest import leftover_containers, prebake

pytest_plugins = ["tests.conda_env"]


def conda_recipe(channel: Path, prefix: str, backend: str, packages: str) -> str:
    return f"""
name = "condaenv"
version = "1"
runtime = "2026.07"
backend = "{backend}"
install = ["echo installed-after-the-environment > {prefix}/etc/extra.txt"]
check = "pb-config && pb-greet && test -s {prefix}/etc/extra.txt"

[conda]
prefix = "{prefix}"
channels = ["{channel.as_uri()}"]
packages = [{packages}]
"""


def run(path: Path) -> str:
    return subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_a_scan_build_packs_the_environment_that_restores_at_another_prefix(conda_channel, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREBAKE_STATE_DIR", str(tmp_path / "state"))
    prefix = str(tmp_path / "envs" / "built")
    recipe = parse(conda_recipe(conda_channel, prefix, "scan", '"pb-config", "pb-greet", "pb-pyhello"'), "conda.toml")
    [result] = build([recipe], BuildOptions(out=tmp_path / "out", cache_dir=tmp_path / "cache"))
    manifest = loads((result.pack / "manifest.json").read_bytes())
    assert manifest.conda is not None and manifest.prefixes == (prefix,)
    assert set(manifest.conda.text) >= {"etc/pb-config.conf", "bin/pb-pyhello"} and "bin/pb-greet" in manifest.conda.binary
    moved = tmp_path / "moved"
    restore(result.pack, prefix=str(moved), progress=False, apply_env=False)
    assert run(moved / "bin/pb-config") == f"datadir={moved}/share/pb-config\n"
    assert run(moved / "bin/pb-pyhello") == "hello from pb_pyhello\n"
    assert (moved / "etc/extra.txt").read_text() == "installed-after-the-environment\n"


@pytest.mark.slow
def test_a_docker_build_creates_checks_and_packs_the_environment(conda_channel, tmp_path: Path, build_args,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = tmp_path / "conda.toml"
    recipe.write_text(conda_recipe(conda_channel, "/opt/envs/condaenv", "docker", '"pb-config", "pb-greet", "pb-longbin"'))
    prebake("build", str(recipe), "-o", str(tmp_path / "out"), *build_args)  # the check ran in a fresh container
    assert leftover_containers() == []
    manifest = loads((tmp_path / "out/condaenv/manifest.json").read_bytes())
    assert manifest.conda is not None and manifest.conda.binary.keys() == {"bin/pb-greet", "bin/pb-longbin"}
    assert manifest.prefixes == ("/opt/envs/condaenv",)  # every member lies there: not the package cache, not the tools
    monkeypatch.setenv("PREBAKE_STATE_DIR", str(tmp_path / "state"))
    moved = tmp_path / "here"
    restore(tmp_path / "out/condaenv", prefix=str(moved), progress=False, apply_env=False)
    assert run(moved / "bin/pb-greet") == "hello from pb-greet\n"
    assert run(moved / "bin/pb-longbin").splitlines()[0] == str(moved)
