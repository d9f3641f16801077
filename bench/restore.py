"""Restore speed and pack size against the two ways people get these bytes onto a disk today.

    .venv/bin/python bench/restore.py [--runs 3] [--rate-mb 50] [--level L] [--cache DIR]

Builds (once, cached) a realistic payload: a virtualenv with scipy, pandas, scikit-learn and
matplotlib from PyPI, a folder of many small data files and one large binary (weights-like
float32). Serves everything from a local HTTP server on 127.0.0.1 and times, on the same tree:

  (a) `prebake restore URL`                        (the pack: manifest + parts)
  (b) `curl URL | zstd -d | tar -x`                (one tar.zst of the tree, same zstd level)
  (c) `curl -o x.zip URL && unzip x.zip`           (zip -r with default deflate: the Drive-zip recipe)

and a throttled mode where the server's whole output is held to --rate-mb MB/s, reporting the
restore time over the pure transfer time of the pack's bytes; and a Drive-like link where each
connection is held to --link-mb MB/s under a --link-total-mb MB/s total (Drive and CDNs cap each
connection): prebake against that total's bound, and the single-stream tools (the GNU pipeline,
and curl + unzip standing in for gdown + unzip, which also fetch over one connection).

Page caches stay warm by default: on these VMs, dropping them makes the next file creations wait
on ext4 metadata reads, which swings any method's time by seconds from run to run (16,000 creates
measured 0.3 s to 9 s). `--drop-caches` drops them before each timed run anyway (root only).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers import FolderServer, RateLimit

PACKAGES = ["scipy", "pandas", "scikit-learn", "matplotlib"]
PREBAKE = [sys.executable, "-m", "prebake"]
DROP_CACHES = False


def sh(command: str | list[str], **kwargs) -> None:
    subprocess.run(command, shell=isinstance(command, str), check=True, **kwargs)


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def tree_size(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                files += 1
                size += os.lstat(path).st_size
    return files, size


def make_payload(root: Path) -> Path:
    """The tree a notebook restores: a scientific virtualenv, small data files, one large binary."""
    payload = root / "payload"
    if (payload / ".complete").exists():
        return payload
    if payload.exists():
        shutil.rmtree(payload)
    payload.mkdir(parents=True)
    print("building the payload (once): a virtualenv with", ", ".join(PACKAGES), flush=True)
    sh([sys.executable, "-m", "venv", str(payload / "venv")])
    sh([str(payload / "venv/bin/pip"), "install", "--quiet", "--disable-pip-version-check", *PACKAGES])
    sh([str(payload / "venv/bin/python"), "-c", "import scipy.stats, pandas, sklearn.ensemble, matplotlib.pyplot"])
    rng = np.random.default_rng(0)
    data = payload / "data"
    for i in range(3000):
        folder = data / f"subject-{i // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        frame = rng.normal(size=(int(rng.integers(20, 200)), 6)).round(4)
        np.savetxt(folder / f"frames-{i:04d}.csv", frame, delimiter=",", fmt="%.4f")
    (payload / "models").mkdir()
    weights = rng.normal(scale=0.02, size=24 * 2**20).astype(np.float32)
    weights.tofile(payload / "models" / "backbone.f32")
    (payload / ".complete").write_text("")
    return payload


def timed(command: str | list[str]) -> float:
    if DROP_CACHES:
        drop_caches()
    start = time.perf_counter()
    sh(command, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def rounds(methods: dict[str, str | list[str]], runs: int, dest: Path) -> dict[str, list[float]]:
    """Each round runs every method once, in turn, into a fresh folder: this VM's filesystem
    speed drifts over seconds, and interleaving spreads the drift over all methods alike. The
    first round warms up and is not counted."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for round_number in range(runs + 1):
        for name, command in methods.items():
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            seconds = timed(command)
            if round_number:
                times[name].append(seconds)
    shutil.rmtree(dest, ignore_errors=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate-mb", type=float, default=50.0, help="throttled mode rate in MB/s (10^6 bytes)")
    parser.add_argument("--link-mb", type=float, default=25.0, help="Drive-like link: MB/s per connection")
    parser.add_argument("--link-total-mb", type=float, default=100.0, help="Drive-like link: MB/s in total")
    parser.add_argument("--level", type=int, default=None, help="zstd level for both prebake and the tar.zst")
    parser.add_argument("--cache", type=Path, default=REPO / ".bench-cache")
    parser.add_argument("--dest", type=Path, default=None,
                        help="where the restores land (default: beside the cache; /dev/shm takes the disk out)")
    parser.add_argument("--drop-caches", action="store_true", help="drop page caches before each timed run")
    args = parser.parse_args()
    global DROP_CACHES
    DROP_CACHES = args.drop_caches and drop_caches()

    cache = args.cache.resolve()
    payload = make_payload(cache)
    files, raw = tree_size(payload)
    work = cache / "run"
    shutil.rmtree(work, ignore_errors=True)
    www = work / "www"
    www.mkdir(parents=True)
    level = args.level or __import__("prebake.pack", fromlist=["DEFAULT_LEVEL"]).DEFAULT_LEVEL
    print(f"payload: {files:,} files, {raw / 1e6:.0f} MB; zstd level {level}; "
          f"page cache {'dropped before each run' if DROP_CACHES else 'warm'}")

    start = time.perf_counter()
    sh([*PREBAKE, "pack", str(payload), "--to", "/opt/payload", "-o", str(www / "pack"), "--level", str(level)],
       stdout=subprocess.DEVNULL)
    pack_seconds = time.perf_counter() - start
    pack_bytes = sum(p.stat().st_size for p in (www / "pack").iterdir())

    start = time.perf_counter()
    sh(f"tar -C {payload} -cf - . | zstd -q -{level} -T0 -o {www / 'tree.tar.zst'}")
    tarzst_seconds = time.perf_counter() - start
    start = time.perf_counter()
    sh(f"cd {payload} && zip -q -r -y {www / 'tree.zip'} .")
    zip_seconds = time.perf_counter() - start
    zip_bytes = (www / "tree.zip").stat().st_size
    tarzst_bytes = (www / "tree.tar.zst").stat().st_size

    dest = (args.dest or work / "dest").resolve() / "prebake-bench-dest"
    with FolderServer(www) as server:
        url = server.url
        prebake_cmd = [*PREBAKE, "restore", f"{url}/pack", "--root", str(dest), "--quiet"]
        pipeline = f"curl -sf {url}/tree.tar.zst | zstd -dq | tar -x -C {dest}"
        results = rounds(
            {
                "prebake restore": prebake_cmd,
                "curl | zstd -d | tar -x": pipeline,
                "curl zip + unzip": f"curl -sf -o {dest}/tree.zip {url}/tree.zip && unzip -q {dest}/tree.zip -d {dest}/tree",
            },
            args.runs,
            dest,
        )
        dest.mkdir(parents=True)
        sh(prebake_cmd, stdout=subprocess.DEVNULL)
        second = [timed(prebake_cmd) for _ in range(args.runs)]
        rate = args.rate_mb * 1e6
        server.faults.rate = RateLimit(rate)
        throttled = rounds({"prebake": prebake_cmd, "pipeline": pipeline}, 1, dest)
        total = args.link_total_mb * 1e6
        server.faults.rate, server.faults.connection_rate = RateLimit(total), args.link_mb * 1e6
        linked = rounds({"prebake": prebake_cmd, "pipeline": pipeline,
                         "zip": f"curl -sf -o {dest}/tree.zip {url}/tree.zip && unzip -q {dest}/tree.zip -d {dest}/tree"},
                        1, dest)

    med = {name: statistics.median(times) for name, times in results.items()}
    print()
    print(f"{'method':<28}{'median s':>10}   runs")
    for name, times in results.items():
        print(f"{name:<28}{med[name]:>10.2f}   {', '.join(f'{t:.2f}' for t in times)}")
    print(f"{'second prebake restore':<28}{statistics.median(second):>10.2f}   {', '.join(f'{t:.2f}' for t in second)}  (CLI process, a no-op)")
    print()
    pipe, unzip, ours = med["curl | zstd -d | tar -x"], med["curl zip + unzip"], med["prebake restore"]
    print(f"restore vs GNU pipeline:   {ours / pipe:.2f}x its time   (target <= 1.00x)")
    print(f"restore vs zip + unzip:    {unzip / ours:.2f}x faster    (target >= 4x)")
    print(f"pack size:                 {pack_bytes / 1e6:.1f} MB; tar.zst {tarzst_bytes / 1e6:.1f} MB; zip {zip_bytes / 1e6:.1f} MB "
          f"-> pack/zip = {pack_bytes / zip_bytes:.2f}   (target <= 0.40)")
    weights = zipfile.ZipFile(www / "tree.zip").getinfo("models/backbone.f32")
    print(f"                           of the zip, the weights file alone is {weights.compress_size / 1e6:.1f} MB "
          f"({weights.compress_size / weights.file_size:.2f} of its size) = {weights.compress_size / zip_bytes:.2f} of the zip")
    print(f"packing:                   {pack_seconds:.1f} s = {raw / 1e6 / pack_seconds:.0f} MB/s of input   (target >= 40 MB/s; "
          f"tar|zstd {tarzst_seconds:.1f} s, zip {zip_seconds:.1f} s)")
    transfer = pack_bytes / rate
    ours_throttled, pipe_throttled = throttled["prebake"][0], throttled["pipeline"][0]
    print(f"throttled {args.rate_mb:.0f} MB/s:         restore {ours_throttled:.2f} s over pure transfer {transfer:.2f} s = "
          f"{ours_throttled / transfer:.2f}x   (target <= 1.15x; GNU pipeline {pipe_throttled:.2f} s = "
          f"{pipe_throttled / (tarzst_bytes / rate):.2f}x of its own bytes)")
    bound = pack_bytes / total
    ours_linked = linked["prebake"][0]
    print(f"Drive-like link ({args.link_mb:.0f} MB/s per connection, {args.link_total_mb:.0f} MB/s in all): restore "
          f"{ours_linked:.2f} s over the bound {bound:.2f} s = {ours_linked / bound:.2f}x   (target <= 1.15x); "
          f"single stream: GNU pipeline {linked['pipeline'][0]:.2f} s = {linked['pipeline'][0] / ours_linked:.1f}x, "
          f"curl + unzip {linked['zip'][0]:.2f} s = {linked['zip'][0] / ours_linked:.1f}x slower   (target >= 3x)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
