"""The command line as a user runs it: `python -m prebake ...` in a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import make_awkward_tree


def prebake(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "prebake", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"prebake {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_awkward_tree(tmp_path / "src", big_file_size=100_000)


def test_pack_inspect_restore_verify_lock(tmp_path: Path, tree: Path) -> None:
    packed = prebake("pack", str(tree), "--to", "/opt/tool", "-o", str(tmp_path / "pack"), "--name", "tool",
                     "--version", "2.1", "--part-size", "50K", "--prepend", "PATH=/opt/tool/bin", "--platform", "auto")
    assert "packed tool 2.1" in packed.stdout
    shown = prebake("inspect", str(tmp_path / "pack")).stdout
    assert "tool 2.1  sha256:" in shown and re.search(r"part-[0-9a-f]{64}\.tar\.zst", shown) and "PATH+=/opt/tool/bin" in shown
    as_json = json.loads(prebake("inspect", str(tmp_path / "pack"), "--json").stdout)
    assert as_json["format"] == "prebake-pack/1" and as_json["platform"]["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    restored = prebake("restore", str(tmp_path / "pack"), "--root", str(tmp_path / "root"))
    assert restored.stdout.startswith("restored tool 2.1:")
    assert restored.stderr == "", "no progress bar or noise when stderr is not a terminal"
    assert "already restored" in prebake("restore", str(tmp_path / "pack"), "--root", str(tmp_path / "root")).stdout
    assert prebake("verify", str(tmp_path / "pack")).stdout.startswith("ok: the ")
    assert prebake("verify", str(tmp_path / "pack"), "--installed", "--root", str(tmp_path / "root")).stdout.startswith("ok:")
    (tmp_path / "root/opt/tool/zero-bytes").write_text("changed")
    broken = prebake("verify", str(tmp_path / "pack"), "--installed", "--root", str(tmp_path / "root"), check=False)
    assert broken.returncode == 5 and "/opt/tool/zero-bytes: 7 bytes, the pack says 0" in broken.stderr
    prebake("lock", str(tmp_path / "pack"), "-o", str(tmp_path / "prebake.lock"))
    lock_text = (tmp_path / "prebake.lock").read_text()
    assert 'locations = ["pack"]' in lock_text and as_json["name"] in lock_text
    restored_from_lock = prebake("restore", str(tmp_path / "prebake.lock"), "--root", str(tmp_path / "root2"))
    assert restored_from_lock.stdout.startswith("restored tool 2.1:")


BAD_INPUT = {
    "relative target": (["pack", "{src}", "--to", "opt/x", "-o", "{tmp}/out"], 2, "must be an absolute path"),
    "missing source tree": (["pack", "{tmp}/nope", "--to", "/opt/x", "-o", "{tmp}/out"], 2, "is not a directory"),
    "bad part size": (["pack", "{src}", "--to", "/opt/x", "-o", "{tmp}/out", "--part-size", "lots"], 2, "is not a size"),
    "bad env pair": (["pack", "{src}", "--to", "/opt/x", "-o", "{tmp}/out", "--prepend", "PATH"], 2, "NAME=VALUE"),
    "missing pack": (["restore", "{tmp}/nope", "--root", "{tmp}/root"], 4, "does not exist"),
    "not a lock": (["restore", "{tmp}/broken.lock", "--root", "{tmp}/root"], 2, "not valid TOML"),
    "unreachable fsspec URL": (["restore", "ftp://nowhere.invalid/pack", "--root", "{tmp}/root"], 4, "ftp://nowhere.invalid/pack"),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_gives_one_line_and_an_exit_code(tmp_path: Path, tree: Path, case: str) -> None:
    (tmp_path / "broken.lock").write_text("version = [unclosed\n")
    args, code, text = BAD_INPUT[case]
    result = prebake(*(a.format(src=tree, tmp=tmp_path) for a in args), check=False)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prebake: error: ") and text in lines[0], result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "root" / "opt").exists()


def test_a_root_that_cannot_be_written_is_one_clear_line(tmp_path: Path, tree: Path) -> None:
    prebake("pack", str(tree), "--to", "/opt/tool", "-o", str(tmp_path / "pack"))
    (tmp_path / "a-file").write_text("not a folder")
    result = prebake("restore", str(tmp_path / "pack"), "--root", str(tmp_path / "a-file" / "root"), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"prebake: error: cannot write {tmp_path / 'a-file' / 'root'}: Not a directory; check the path or restore elsewhere with --root DIR"


def test_a_restore_ends_with_its_whole_output_and_status_zero_however_stdout_is_set(tmp_path: Path, tree: Path) -> None:
    """The program leaves without the interpreter's teardown after a restore: what it printed is
    flushed first, into a pipe or a file (block-buffered), and a closed stdout is no error."""
    prebake("pack", str(tree), "--to", "/opt/tool", "-o", str(tmp_path / "pack"), "--name", "tool", "--version", "2.1")
    into_file = tmp_path / "out.txt"
    with into_file.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "prebake", "restore", str(tmp_path / "pack"), "--root", str(tmp_path / "a")],
                              stdout=out, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert into_file.read_text().startswith("restored tool 2.1:") and into_file.read_text().endswith("\n")
    closed = subprocess.run(f"{sys.executable} -m prebake restore {tmp_path / 'pack'} --root {tmp_path / 'b'} >&-",
                            shell=True, capture_output=True, text=True, timeout=120)
    assert closed.returncode == 0 and closed.stderr == "", closed.stderr
    assert (tmp_path / "b/opt/tool").is_dir()
