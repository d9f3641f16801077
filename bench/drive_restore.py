"""Restore speed from the local Drive server vs the same pack from a plain local HTTP server.

    .venv/bin/python bench/drive_restore.py [--mib 256] [--rounds 3]

Packs a generated tree (random and compressible files), pushes it to tests/drive_server.py with a
service-account key (the real google-api-python-client/google-auth upload path), then restores it
`--rounds` times each way, alternating, into a fresh root: from the Drive API (credentials), from
Drive's public path (no credentials: uc -> confirm page -> download) and from a plain HTTP server
serving the pack folder with the same socket code. Prints the medians and the ratios (target <= 1.2).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from drive_server import DriveServer, FolderServer, service_account_info  # noqa: E402
from prebake.pack import PackOptions, pack_tree  # noqa: E402
from prebake.push import push  # noqa: E402
from prebake.restore import restore  # noqa: E402


def make_tree(root: Path, mib: int) -> None:
    rng = random.Random(1)
    words = [rng.randbytes(6).hex() for _ in range(2000)]
    n = 0
    while n < mib * 2**20:
        i = n // (2 * 2**20)
        path = root / f"d{i % 16}" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(2 * 2**20) if i % 2 else " ".join(rng.choices(words, k=200_000)).encode()[: 2 * 2**20]
        path.write_bytes(data)
        n += len(data)


def timed(source: str, root: Path) -> float:
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    restore(source, root=root, progress=False, apply_env=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="size of the generated tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part-size", type=int, default=48, help="MiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prebake-bench-") as tmp_text:
        tmp = Path(tmp_text)
        make_tree(tmp / "src", args.mib)
        manifest = pack_tree(tmp / "src", tmp / "pack", PackOptions(name="bench", version="1", target="/opt/bench",
                                                                     part_size=args.part_size * 2**20))
        print(f"pack: {manifest.stats['bytes'] / 2**20:.0f} MiB -> {manifest.packed_size / 2**20:.0f} MiB in {len(manifest.parts)} parts")
        with DriveServer(confirm_above=1 << 20) as drive:
            os.environ["PREBAKE_GDRIVE_API_BASE"] = drive.base
            os.environ["PREBAKE_GDRIVE_PUBLIC_BASE"] = drive.base
            creds = tmp / "sa.json"
            creds.write_text(json.dumps(service_account_info(drive.base + "/token")))
            os.environ["PREBAKE_GDRIVE_CREDENTIALS"] = str(creds)
            folder = drive.add_folder("packs")
            t0 = time.perf_counter()
            [pushed] = push([tmp / "pack"], [f"gdrive://{folder.id}"], None, public=True)
            print(f"push to the local Drive server: {time.perf_counter() - t0:.2f} s ({pushed.uploaded_bytes / 2**20:.0f} MiB)")
            drive_url = pushed.locations[0]
            with FolderServer(tmp / "pack") as plain:
                times: dict[str, list[float]] = {"http": [], "drive api": [], "drive public": []}
                for _ in range(args.rounds):
                    times["http"].append(timed(plain.base, tmp / "root"))
                    os.environ["PREBAKE_GDRIVE_CREDENTIALS"] = str(creds)
                    times["drive api"].append(timed(drive_url, tmp / "root"))
                    del os.environ["PREBAKE_GDRIVE_CREDENTIALS"]
                    times["drive public"].append(timed(drive_url, tmp / "root"))
        base = statistics.median(times["http"])
        for label, values in times.items():
            median = statistics.median(values)
            rate = manifest.packed_size / median / 2**20
            print(f"{label:13s} median {median:.3f} s  ({rate:.0f} MiB/s)  runs: {', '.join(f'{v:.3f}' for v in values)}"
                  + ("" if label == "http" else f"  ratio vs http {median / base:.2f}x"))


if __name__ == "__main__":
    main()
