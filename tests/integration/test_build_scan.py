"""The scan backend: no container; a build in this runtime on a temporary root, snapshot and diff."""

from __future__ import annotations

import hashlib
from pathlib import Path

from prebake.bake import BuildOptions, build
from prebake.errors import UsageError
from prebake.recipe import parse
from prebake.restore import restore

from .conftest import prebake


def _recipe(root: Path, url: str, sha: str) -> str:
    return f"""
name = "scanned"
version = "1"
runtime = "2026.07"
backend = "scan"
prepare = ["mkdir -p {root}/opt/app/bin {root}/opt/app/share {root}/prepared && echo tool > {root}/prepared/not-captured"]
install = [
  "printf '#!/bin/sh\\\\necho app-ran\\\\n' > {root}/opt/app/bin/app && chmod 755 {root}/opt/app/bin/app",
  "ln -s app {root}/opt/app/bin/app-link",
  "echo new > {root}/opt/app/share/data.txt",
  "rm {root}/opt/app/share/old.txt",
  "mkdir -p {root}/opt/app/.ssh && echo secret > {root}/opt/app/.ssh/id_ed25519",
]
check = "true"
[[fetch]]
url = "{url}"
sha256 = "{sha}"
dest = "{root}/opt/app/share/model.bin"
[capture]
roots = ["{root}/opt/app"]
"""


def test_scan_backend_captures_changes_and_deletions(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "opt/app/share").mkdir(parents=True)
    (root / "opt/app/share/old.txt").write_text("base had this\n")
    (root / "opt/app/share/kept.txt").write_text("unchanged\n")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 1000)
    recipe = parse(_recipe(root, model.as_uri(), hashlib.sha256(model.read_bytes()).hexdigest()), "scan.toml")
    [result] = build([recipe], BuildOptions(out=tmp_path / "out", cache_dir=tmp_path / "cache"))
    manifest_text = (result.pack / "manifest.json").read_text()
    assert f"{root}/opt/app/share/old.txt" in manifest_text  # a whiteout
    assert result.credentials == [f"{root}/opt/app/.ssh"]

    # restore into a second root: the new files are there, the deleted one is gone
    other = tmp_path / "other"
    (other / str(root).lstrip("/") / "opt/app/share").mkdir(parents=True)
    (other / str(root).lstrip("/") / "opt/app/share/old.txt").write_text("base had this\n")
    restore(str(result.pack), root=other, progress=False, apply_env=False)
    app = other / str(root).lstrip("/") / "opt/app"
    assert (app / "bin/app").read_text().startswith("#!/bin/sh")
    assert (app / "bin/app").stat().st_mode & 0o777 == 0o755
    assert (app / "bin/app-link").is_symlink()
    assert (app / "share/data.txt").read_text() == "new\n"
    assert (app / "share/model.bin").read_bytes() == model.read_bytes()
    assert not (app / "share/old.txt").exists()
    assert not (app / "share/kept.txt").exists(), "unchanged files are not captured"
    assert not (app / ".ssh").exists()
    assert not (other / str(root).lstrip("/") / "prepared").exists()
    # whole seconds, as the pack format keeps them (what a .pyc records too)
    assert int((app / "bin/app").stat().st_mtime) == int((root / "opt/app/bin/app").stat().st_mtime)

    # nothing changed: not rebuilt
    [again] = build([recipe], BuildOptions(out=tmp_path / "out", cache_dir=tmp_path / "cache"))
    assert again.skipped and again.digest == result.digest


def test_scan_backend_refuses_a_private_key_with_an_innocent_name(tmp_path: Path) -> None:
    root = tmp_path / "root"
    recipe = parse(f"""
name = "keyed"
version = "1"
runtime = "2026.07"
backend = "scan"
install = ["mkdir -p {root}/opt/x && printf -- '-----BEGIN RSA PRIVATE KEY-----\\\\nMIIE\\\\n' > {root}/opt/x/server.pem"]
[capture]
roots = ["{root}/opt/x"]
""")
    try:
        build([recipe], BuildOptions(out=tmp_path / "out"))
    except UsageError as e:
        assert "server.pem holds a private key" in str(e)
    else:
        raise AssertionError("a private key was packed")
    assert not (tmp_path / "out" / "keyed").exists()


def test_without_a_docker_engine_scan_builds_and_docker_says_how_in_one_line(tmp_path: Path) -> None:
    """No engine reachable (DOCKER_HOST points nowhere): `--backend scan` still builds a pack here,
    and the docker backend fails with one line (exit 3) that names the way out and its limits."""
    root = tmp_path / "root"
    recipe = tmp_path / "small.toml"
    recipe.write_text(f"""
name = "small"
version = "1"
runtime = "2026.07"
install = ["mkdir -p {root}/opt/small && echo hi > {root}/opt/small/hello.txt"]
[capture]
roots = ["{root}/opt/small"]
""")
    nowhere = {"DOCKER_HOST": "unix:///nonexistent.sock", "COLAB_RELEASE_TAG": ""}
    built = prebake("build", str(recipe), "-o", str(tmp_path / "out"), "--backend", "scan", env=nowhere)
    assert "built small 1" in built.stdout
    assert (tmp_path / "out" / "small" / "manifest.json").is_file()

    refused = prebake("build", str(recipe), "-o", str(tmp_path / "docker-out"), env=nowhere, check=False)
    assert refused.returncode == 3, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    line = refused.stderr.strip()
    assert line.startswith("prebake: error: cannot reach a Docker engine (")
    assert "start dockerd (or set DOCKER_HOST)" in line
    assert "build in this runtime with `--backend scan`" in line
    assert "packs what they change under the recipe's capture roots" in line
    assert "cannot isolate them" in line
    assert not (tmp_path / "docker-out" / "small").exists()
