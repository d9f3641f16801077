"""Faults a restore must survive: kill -9 at any point, restores racing for one root, and a
tampered location whose files were on disk when the restore was killed.

Every run goes through the real command (`python -m prebake restore`) in its own process, so a
kill is a real SIGKILL of the process that owns the worker processes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prebake.restore import marker_path, restore

from ..conftest import pack
from ..servers import FolderServer, RateLimit

pytestmark = pytest.mark.slow


def make_source(src: Path) -> Path:
    """Folders with their own modes and mtimes, many small files and some large ones."""
    for d in range(12):
        folder = src / f"dir-{d:02d}" / "inner"
        folder.mkdir(parents=True)
        for i in range(40):
            (folder / f"f-{i:03d}.txt").write_text(f"{d} {i}\n" * (i + 1))
        (folder / "blob.bin").write_bytes(os.urandom(400_000))
    for d in range(12):
        os.chmod(src / f"dir-{d:02d}" / "inner", 0o750 if d % 2 else 0o711)
        os.utime(src / f"dir-{d:02d}" / "inner", (1_600_000_000 + d, 1_600_000_000 + d))
        os.utime(src / f"dir-{d:02d}", (1_500_000_000, 1_500_000_000))
    return src


def tree(top: Path) -> dict[str, tuple]:
    """Every entry below `top`: kind, mode, mtime, and content or link target."""
    facts: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            if path.is_symlink():
                facts[str(path.relative_to(top))] = ("link", os.readlink(path))
            elif path.is_dir():
                facts[str(path.relative_to(top))] = ("dir", oct(st.st_mode), int(st.st_mtime))  # tar keeps whole seconds
            else:
                facts[str(path.relative_to(top))] = ("file", oct(st.st_mode), int(st.st_mtime), path.read_bytes())
    return facts


def run_cli(source: str | Path, root: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "prebake", "restore", str(source), "--root", str(root), "-q", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line holds `text` (worker processes share their parent's)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if text.encode() in cmdline and "State:\tZ" not in status:
                found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def source_pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("faults")
    src = make_source(base / "src")
    pack(src, base / "pack", part_size=600_000)
    return src, base / "pack"


def test_kill_9_at_random_points_then_rerun_gives_the_source_tree(source_pack, tmp_path: Path) -> None:
    src, pack_dir = source_pack
    killed_mid_way = 0
    with FolderServer(pack_dir.parent) as server:
        server.faults.rate = RateLimit(3e6)  # about two seconds per restore: room for the kill to land anywhere
        for round_ in range(6):
            root = tmp_path / f"root-{round_}"
            child = run_cli(f"{server.url}/pack", root)
            time.sleep(random.uniform(0.2, 1.2))
            if child.poll() is None:
                killed_mid_way += 1
            child.send_signal(signal.SIGKILL)
            child.communicate()
            deadline = time.monotonic() + 5
            while processes_mentioning(str(root)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert processes_mentioning(str(root)) == [], "worker processes outlived the killed restore"
            restore(f"{server.url}/pack", root=root, progress=False)
            assert marker_path(root, "app").exists()
            assert tree(root / "opt/app") == tree(src), f"round {round_}: the tree differs after a kill and a rerun"
    assert killed_mid_way >= 3, "most kills must land while the restore runs"


def test_three_restores_of_one_root_at_once_all_succeed_and_agree(source_pack, tmp_path: Path) -> None:
    src, pack_dir = source_pack
    for round_ in range(20):
        root = tmp_path / f"root-{round_}"
        children = [run_cli(pack_dir, root) for _ in range(3)]
        outcomes = [(child.wait(), *child.communicate()) for child in children]
        for code, _, err in outcomes:
            assert code == 0, f"round {round_}: a concurrent restore failed: {err.strip()}"
        assert sum("already restored" in out for _, out, _ in outcomes) == 2, [o for _, o, _ in outcomes]
        assert tree(root / "opt/app") == tree(src)


def test_no_wait_fails_at_once_with_exit_8_while_another_restore_holds_the_root(source_pack, tmp_path: Path) -> None:
    src, pack_dir = source_pack
    root = tmp_path / "root"
    with FolderServer(pack_dir.parent) as server:
        server.faults.rate = RateLimit(4e6)
        first = run_cli(f"{server.url}/pack", root)
        deadline = time.monotonic() + 10
        while not (root / "var/lib/prebake/partial").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        second = run_cli(pack_dir, root, "--no-wait")
        _, err = second.communicate(timeout=30)
        assert second.returncode == 8
        assert "another prebake restore" in err and "is restoring into" in err
        assert len(err.strip().splitlines()) == 1
        first.communicate(timeout=60)
        assert first.returncode == 0
    assert tree(root / "opt/app") == tree(src)


def test_files_of_a_tampered_part_are_gone_after_a_kill_and_a_good_rerun(source_pack, tmp_path: Path) -> None:
    """A part served tampered writes its files before its sha256 is known; if the restore is killed
    then, the next run (here from a good copy) undoes them from the journal."""
    src, pack_dir = source_pack
    evil_src = tmp_path / "evil-src"
    (evil_src / "planted").mkdir(parents=True)
    (evil_src / "planted" / "evil.sh").write_text("echo planted\n")
    (evil_src / "planted" / "filler.bin").write_bytes(os.urandom(3_000_000))
    evil = tmp_path / "evil-pack"
    pack(evil_src, evil, part_size=10_000_000)
    tampered = tmp_path / "www" / "pack"
    tampered.mkdir(parents=True)
    (tampered / "manifest.json").write_bytes((pack_dir / "manifest.json").read_bytes())
    for part in pack_dir.glob("part-*.tar.zst"):  # every part the manifest names: the evil bytes
        (tampered / part.name).write_bytes(next(evil.glob("part-*.tar.zst")).read_bytes())
    root = tmp_path / "root"
    with FolderServer(tampered.parent) as server:
        server.faults.rate = RateLimit(1e6)
        child = run_cli(f"{server.url}/pack", root, "-j", "1")
        deadline = time.monotonic() + 20
        while not (root / "opt/app/planted/evil.sh").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (root / "opt/app/planted/evil.sh").exists(), "the tampered part never wrote its first file"
        child.send_signal(signal.SIGKILL)
        child.communicate()
    restore(pack_dir, root=root, progress=False)
    assert not (root / "opt/app/planted").exists()
    assert tree(root / "opt/app") == tree(src)
