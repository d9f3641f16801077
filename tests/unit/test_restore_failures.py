"""Corrupt, truncated and missing parts; idempotence; resume; platform pinning; env in-process."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import zstandard
from prebake.errors import IntegrityError, PlatformMismatch, StoreError, StoreNotFound, UsageError
from prebake.manifest import Platform
from prebake.restore import marker_path, restore
from prebake.runtime import current_platform

from ..conftest import make_awkward_tree, pack


@pytest.fixture
def packed(tmp_path: Path):
    src = make_awkward_tree(tmp_path / "src", big_file_size=200_000)
    manifest = pack(src, tmp_path / "pack", part_size=20_000)
    assert len(manifest.parts) >= 3
    return manifest


def _files_of_part(pack_dir: Path, part_name: str, intact: bytes) -> list[str]:
    """Names of the non-directory members of a part, read from an intact copy of it."""
    with tarfile.open(fileobj=io.BytesIO(zstandard.ZstdDecompressor().decompressobj().decompress(intact))) as archive:
        return [m.name for m in archive.getmembers() if not m.isdir()]


def _left_behind(root: Path, names: list[str]) -> list[str]:
    return [name for name in names if os.path.lexists(root / name)]


def test_a_corrupt_part_fails_naming_it_and_leaves_none_of_its_files(tmp_path: Path, packed) -> None:
    first, victim = sorted(packed.parts, key=lambda part: part.weight, reverse=True)[:2]  # a restore's order
    path = tmp_path / "pack" / victim.name
    members = _files_of_part(tmp_path / "pack", victim.name, path.read_bytes())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    root = tmp_path / "root"
    with pytest.raises(IntegrityError, match=victim.name) as caught:
        restore(tmp_path / "pack", root=root, progress=False, jobs=1)
    assert "fetched 3 times" in str(caught.value)
    assert members and _left_behind(root, members) == []
    assert not marker_path(root, "app").exists()
    progress = root / "var/lib/prebake/partial"
    done = {p.name for p in progress.rglob("*.done")}
    assert f"{victim.name}.done" not in done
    assert f"{first.name}.done" in done, "parts restored before the failure are kept for a resume"


def test_a_truncated_part_is_reported_as_truncated(tmp_path: Path, packed) -> None:
    victim = packed.parts[0]
    path = tmp_path / "pack" / victim.name
    members = _files_of_part(tmp_path / "pack", victim.name, path.read_bytes())
    path.write_bytes(path.read_bytes()[: victim.size // 2])
    root = tmp_path / "root"
    with pytest.raises(IntegrityError, match=f"{victim.name} is (truncated|corrupt)"):
        restore(tmp_path / "pack", root=root, progress=False, jobs=1)
    assert members and _left_behind(root, members) == []
    assert not marker_path(root, "app").exists()


def test_a_missing_part_names_the_file_and_the_fix(tmp_path: Path, packed) -> None:
    (tmp_path / "pack" / packed.parts[-1].name).unlink()
    with pytest.raises(StoreNotFound, match=f"{packed.parts[-1].name} is missing from the pack folder"):
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert not marker_path(tmp_path / "root", "app").exists()


def test_after_fixing_the_part_the_restore_resumes_and_completes(tmp_path: Path, packed) -> None:
    victim = tmp_path / "pack" / packed.parts[-1].name
    good = victim.read_bytes()
    victim.write_bytes(good[:-10])
    root = tmp_path / "root"
    with pytest.raises(IntegrityError):
        restore(tmp_path / "pack", root=root, progress=False, jobs=1)
    victim.write_bytes(good)
    [result] = restore(tmp_path / "pack", root=root, progress=False)
    assert not result.skipped
    assert json.loads(marker_path(root, "app").read_text())["digest"] == packed.digest
    assert (root / "opt/app/big.bin").read_bytes() == (tmp_path / "src/big.bin").read_bytes()


def test_restoring_the_same_pack_again_is_a_fast_no_op(tmp_path: Path, packed) -> None:
    restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    started = time.perf_counter()
    [again] = restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert again.skipped
    assert time.perf_counter() - started < 0.5


def test_a_restore_killed_half_way_can_be_run_again(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(60):
        (src / f"blob-{i:02d}").write_bytes(os.urandom(200_000))
    manifest = pack(src, tmp_path / "pack", part_size=1_000_000)
    root = tmp_path / "root"
    script = (
        "import sys, time\n"
        "from prebake.restore import restore\n"
        "from prebake.extract import PartWriter\n"
        "feed = PartWriter.feed\n"
        "def slow(self, data):\n"
        "    time.sleep(0.2)\n"
        "    feed(self, data)\n"
        "PartWriter.feed = slow\n"
        f"restore({str(tmp_path / 'pack')!r}, root=__import__('pathlib').Path({str(root)!r}), progress=False, jobs=1)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    progress = root / "var/lib/prebake/partial"
    while time.monotonic() < deadline and not list(progress.rglob("*.done")):
        time.sleep(0.01)
    assert child.poll() is None, "the restore must still be running when it is killed"
    child.kill()
    child.wait()
    assert not marker_path(root, "app").exists()
    [result] = restore(tmp_path / "pack", root=root, progress=False)
    assert not result.skipped
    assert marker_path(root, "app").exists()
    for i in range(60):
        assert (root / f"opt/app/blob-{i:02d}").read_bytes() == (src / f"blob-{i:02d}").read_bytes()
    assert len(manifest.parts) > 3


def test_a_pack_for_another_platform_is_refused_unless_forced(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "x").write_text("x")
    here = current_platform(with_cuda=False)
    elsewhere = dataclasses.replace(here, python="2.7", glibc="99.0")
    pack(src, tmp_path / "pack", platform=elsewhere)
    with pytest.raises(PlatformMismatch) as caught:
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    message = str(caught.value)
    assert "python 2.7" in message and "glibc >= 99.0" in message and "pass force=True" in message and "--force" in caught.value.cli_message()
    assert "\n" not in message
    [result] = restore(tmp_path / "pack", root=tmp_path / "root", progress=False, force=True)
    assert (tmp_path / "root/opt/app/x").exists() and not result.skipped


def test_a_pack_for_this_platform_restores(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "x").write_text("x")
    pack(src, tmp_path / "pack", platform=current_platform(with_cuda=False))
    restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert (tmp_path / "root/opt/app/x").exists()


def test_data_only_packs_record_no_platform(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    assert pack(src, tmp_path / "pack").platform is None
    assert Platform() == Platform(None, None, None, None, None, None)


IMPORT_WITHOUT_RESTART = """
import os, shutil, subprocess, sys
from pathlib import Path
import prebake
try:
    import prebake_demo_mod
    raise SystemExit("the module must not be importable before the restore")
except ImportError:
    pass
assert shutil.which("prebake-demo-tool") is None
prebake.restore(sys.argv[1], root=Path(sys.argv[2]), progress=False)
import prebake_demo_mod
print(prebake_demo_mod.VALUE)
print(subprocess.run(["prebake-demo-tool"], capture_output=True, text=True, check=True).stdout.strip())
print(os.environ["DEMO_SETTING"])
"""


def test_a_restored_module_and_command_work_without_restarting_python(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "site-packages" / "prebake_demo_mod").mkdir(parents=True)
    (src / "site-packages" / "prebake_demo_mod" / "__init__.py").write_text("VALUE = 'imported after restore'\n")
    (src / "bin").mkdir()
    tool = src / "bin" / "prebake-demo-tool"
    tool.write_text("#!/bin/sh\necho tool on PATH\n")
    tool.chmod(0o755)
    from prebake.manifest import Env

    env = Env(prepend={"PATH": ("/opt/demo/bin",), "PYTHONPATH": ("/opt/demo/site-packages",)}, set={"DEMO_SETTING": "set"})
    pack(src, tmp_path / "pack", target="/opt/demo", env=env)
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_WITHOUT_RESTART, str(tmp_path / "pack"), str(tmp_path / "root")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert out[:3] == ["imported after restore", "tool on PATH", "set"]


def test_an_unknown_worker_kind_is_refused_before_anything_is_written(tmp_path: Path, packed, monkeypatch) -> None:
    monkeypatch.setenv("PREBAKE_WORKERS", "fibers")
    with pytest.raises(UsageError, match="'fibers' must be 'processes' or 'threads'"):
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("with_thread", [False, True])
def test_a_plain_script_without_a_main_guard_restores_once(tmp_path: Path, packed, with_thread: bool) -> None:
    script = tmp_path / "setup_env.py"
    script.write_text(
        "import sys, threading\nfrom pathlib import Path\nfrom prebake.restore import restore\n"
        f"if {with_thread}:\n    threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        "print('restoring', flush=True)\n"
        "restore(sys.argv[1], root=Path(sys.argv[2]), progress=False)\n"
    )
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "pack"), str(tmp_path / "root")],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.count("restoring") == 1
    assert marker_path(tmp_path / "root", "app").exists()


_START_METHOD = """
import sys, threading
sys.path.insert(0, {repo!r})
from prebake.restore import _worker_context
if {with_thread}:
    threading.Thread(target=threading.Event().wait, daemon=True).start()
context = _worker_context(["prebake.restore"])
print(context.get_start_method() if context else "threads")
"""


@pytest.mark.parametrize(("with_thread", "as_script", "expected"), [
    (False, True, "fork"),
    (False, False, "fork"),
    (True, False, "forkserver"),
    (True, True, "threads"),
])
def test_workers_fork_only_a_single_threaded_process(tmp_path: Path, with_thread: bool, as_script: bool, expected: str) -> None:
    """A fork copies locks another thread may hold, so only a process without threads forks;
    a forkserver would run a plain script again, so such a script with threads gets threads."""
    code = _START_METHOD.format(repo=str(Path(__file__).parents[2]), with_thread=with_thread)
    if as_script:
        (tmp_path / "script.py").write_text(code)
        command = [sys.executable, str(tmp_path / "script.py")]
    else:
        command = [sys.executable, "-c", code]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip() == expected


def test_python_spelling_rewrites_whole_flags_only() -> None:
    """A hint's --force reads force=True from Python; a user's command or path that merely contains
    such text is quoted as it is."""
    from prebake.errors import StepFailed

    error = StepFailed("step `pip install --force-reinstall --root-user-action=ignore x` exited 1 writing "
                       "/data/--root/x; pass --root DIR or --force")
    assert str(error) == ("step `pip install --force-reinstall --root-user-action=ignore x` exited 1 writing "
                          "/data/--root/x; pass root='DIR' or force=True")
    assert error.cli_message().endswith("pass --root DIR or --force")


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_a_bad_connections_setting_is_one_line_naming_it(tmp_path: Path, monkeypatch, value: str) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x").write_text("x")
    pack(tmp_path / "src", tmp_path / "pack")
    monkeypatch.setenv("PREBAKE_CONNECTIONS", value)
    with pytest.raises(UsageError, match=r"connections '.*' must be a whole number .*PREBAKE_CONNECTIONS"):
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert not (tmp_path / "root").exists()


def test_a_locks_pack_already_restored_here_needs_no_network(tmp_path: Path, packed) -> None:
    """Re-running a notebook's restore cell: the pack a lock pins, restored here, is a no-op read
    from the manifest kept with its marker, even when no location answers, and loads no HTTP
    stack. A kept manifest that is not the pinned one is not trusted: the restore fetches."""
    from prebake.lock import Lock, LockedPack, dump

    root = tmp_path / "root"
    restore(tmp_path / "pack", root=root, progress=False)
    lock = tmp_path / "prebake.lock"
    dump(Lock((LockedPack("app", "1.0", packed.digest, ("http://127.0.0.1:9/nothing-listens-here",)),)), lock)
    script = ("import sys\nfrom prebake.restore import restore\n"
              f"[result] = restore({str(lock)!r}, root={str(root)!r}, progress=False)\n"
              "assert result.skipped, result\n"
              "assert 'requests' not in sys.modules and 'prebake.stores.http' not in sys.modules, 'an HTTP stack was loaded'\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kept = root / "var/lib/prebake/installed/app.manifest"
    kept.write_bytes(kept.read_bytes() + b" ")
    with pytest.raises(StoreError, match="cannot connect"):
        restore(lock, root=root, progress=False)
