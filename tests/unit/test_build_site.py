"""The build site this machine offers, the one step runner, and the command line's ways to build
without a Docker engine (scan builds only: no engine, no network)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from prebake.bake import run_step
from prebake.capture import ADDED
from prebake.capture.scan import Host
from prebake.errors import StepFailed

from ..conftest import run_cli

NOWHERE = "unix:///nonexistent.sock"


@pytest.fixture(autouse=True)
def not_in_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setenv("DOCKER_HOST", NOWHERE)


def _recipe(tmp_path: Path) -> Path:
    root = tmp_path / "root" / "opt" / "small"
    path = tmp_path / "small.toml"
    path.write_text(f'name = "small"\nversion = "1"\nruntime = "2026.07"\n'
                    f'install = ["mkdir -p {root} && echo hi > {root}/hello.txt"]\n[capture]\nroots = ["{root}"]\n')
    return path


def test_a_failing_step_fails_in_one_line_with_its_last_lines_masked(tmp_path: Path) -> None:
    script = "for i in 1 2 3 4 5 6 7; do echo line $i; done; echo 'token s3cr3t-value' >&2; exit 3"
    with pytest.raises(StepFailed) as failed:
        run_step(Host((str(tmp_path),)), "demo: step install[0] compile", script, dict(os.environ), mask=["s3cr3t-value"])
    assert str(failed.value) == ("demo: step install[0] compile exited with status 3 in this runtime; "
                                 "last lines: line 4 | line 5 | line 6 | line 7 | token ***")
    assert failed.value.exit_code == 7


def test_the_host_site_sees_only_what_changed_after_watch(tmp_path: Path) -> None:
    root = tmp_path / "app"
    (root / "old").mkdir(parents=True)
    host = Host((str(root),))
    host.watch()
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "data.txt").write_text("tree\n")
    host.put_tree(src, str(root / "old"))
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    host.put_file(str(root / "models" / "model.bin"), model, 0o600)
    assert {c.path for c in host.changes() if c.kind == ADDED} == {
        str(root / "old" / "sub"), str(root / "old" / "sub" / "data.txt"), str(root / "models"),
        str(root / "models" / "model.bin"),
    }
    host.export([str(root / "models" / "model.bin")], tmp_path / "staging")
    staged = tmp_path / "staging" / str(root / "models" / "model.bin").lstrip("/")
    assert staged.read_bytes() == b"weights" and staged.stat().st_mode & 0o777 == 0o600


def test_in_colab_build_uses_the_scan_backend_and_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260701-060000_RC00")
    recipe = _recipe(tmp_path)
    assert run_cli("build", str(recipe), "-o", str(tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert "in Colab: building in this runtime with the scan backend (--backend docker" in err
    manifest = json.loads((tmp_path / "out" / "small" / "manifest.json").read_text())
    assert manifest["created_by"]["backend"] == "scan"
    # asked for by name, the docker backend is tried, and there is no engine
    assert run_cli("build", str(recipe), "-o", str(tmp_path / "docker"), "--backend", "docker") == 3
    assert "--backend scan" in capsys.readouterr().err


def test_notebook_build_with_the_scan_backend_writes_pack_and_lock(tmp_path: Path, capsys) -> None:
    root = tmp_path / "root" / "opt" / "tool"
    notebook = tmp_path / "v0.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(f"!mkdir -p {root} && make -v > {root}/make.txt"),
                                       new_code_cell(f"print(open('{root}/make.txt').read())")]), notebook)
    out = tmp_path / "out"
    assert run_cli("notebook", str(notebook), "-o", str(out), "--build", "--backend", "scan", "--root", str(root)) == 0
    assert "built v0 1" in capsys.readouterr().out
    assert (out / "packs" / "v0" / "manifest.json").is_file()
    assert "packs/v0" in (out / "prebake.lock").read_text()


def test_bench_without_the_notebook_extra_says_how_to_install_it(tmp_path: Path, monkeypatch, capsys) -> None:
    for name in ("nbclient", "matplotlib"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    assert run_cli("bench", str(_recipe(tmp_path)), "-o", str(tmp_path / "bench")) == 2
    err = capsys.readouterr().err
    assert err == ("prebake: error: prebake bench needs the notebook extra (nbclient, matplotlib missing): "
                   "pip install 'prebake[notebook]'\n")
