"""How many parts a pack should have: restore time by minimum part count, on two pack shapes.

    .venv/bin/python bench/parts.py [--runs 5] [--work /tmp/prebake-parts]

Builds two trees (once, cached under --work): "mixed", like a small extractor environment (a
library-like folder of 1,500 partly compressible binaries, 3,000 small JSON files and one 96 MB
compressible CSV), and "small-files" (20,000 text files of 0.1-3 KB). Packs each with
`min_parts` 1, 2, 4, 8 and 16 and times `python -m prebake restore PACK --root /dev/shm/...` as a
whole command, printing the median of --runs and each part count over one part.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from prebake.pack import PackOptions, pack_tree  # noqa: E402

COUNTS = (1, 2, 4, 8, 16)


def mixed(root: Path) -> None:
    rng = random.Random(1)
    for i in range(1_500):
        lib = root / "lib" / f"pkg{i % 40:02d}" / f"mod{i:04d}.so"
        lib.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(2_000, 60_000)
        lib.write_bytes(rng.randbytes(size // 2) + bytes(size // 2))
    (root / "data").mkdir()
    for i in range(3_000):
        record = {"id": i, "values": [rng.random() for _ in range(20)], "label": "x" * rng.randint(0, 200)}
        (root / "data" / f"rec-{i:04d}.json").write_text(json.dumps(record))
    line = b"".join(b"%d,%0.3f,sample text for a compressible blob\n" % (i, (i * 7 % 1000) / 7) for i in range(20_000))
    with open(root / "blob.csv", "wb") as f:
        while f.tell() < 96_000_000:
            f.write(line)


def small_files(root: Path) -> None:
    rng = random.Random(2)
    for d in range(100):
        folder = root / f"d{d:03d}"
        folder.mkdir(parents=True)
        for i in range(200):
            (folder / f"f{i:03d}.txt").write_text(f"word{rng.randint(0, 999)} " * rng.randint(10, 400))


def restore_seconds(pack: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        dest = Path("/dev/shm/prebake-parts-bench")
        shutil.rmtree(dest, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "prebake", "restore", str(pack), "--root", str(dest), "-q"],
                       check=True, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - started)
        shutil.rmtree(dest, ignore_errors=True)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/prebake-parts"))
    args = parser.parse_args()
    for name, make in (("mixed", mixed), ("small-files", small_files)):
        tree = args.work / name
        if not tree.exists():
            make(tree)
        baseline = None
        for count in COUNTS:
            out = args.work / f"{name}-pack-{count}"
            manifest = pack_tree(tree, out, PackOptions(name="bench", version="1", target="/opt/bench", min_parts=count))
            seconds = restore_seconds(out, args.runs)
            baseline = baseline or seconds
            print(f"{name:12s} min_parts {count:2d}: {len(manifest.parts):2d} parts, {manifest.packed_size / 2**20:6.1f} MiB, "
                  f"restore {seconds:.3f} s = {seconds / baseline:.2f}x one part")


if __name__ == "__main__":
    main()
