"""Build time against restore time for the extractor packs (target: restore >= 10x faster).

    .venv/bin/python bench/extractors.py [--base-image IMG] [--python 3.11] [--runs 3] [PACK ...]

Builds each pack from scratch (`prebake build --force`, images cached, no pip cache) and times
`prebake restore` of it as a user runs it (whole command, into an empty root) several times,
printing the build time, the pack size, each restore and the ratio. The same numbers print from
the integration tests (`[numbers]` lines), which check that the packs build and restore but do not
assert on times: on these VMs a restore of the same pack ranged from 1.4 s to 4.9 s.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PREBAKE = [sys.executable, "-m", "prebake"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packs", nargs="*", default=["opensmile", "pose", "face"])
    parser.add_argument("--base-image", default="prebake-test-base:bookworm")
    parser.add_argument("--python", default="3.11", help="the base image's Python")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prebake-bench-") as tmp:
        out = Path(tmp) / "packs"
        print(f"{'pack':<12}{'build s':>9}{'packed MiB':>12}{'restore s (runs)':>30}{'ratio':>8}   target >= 10x")
        for name in args.packs:
            build = subprocess.run([*PREBAKE, "build", str(REPO / "packs" / name), "-o", str(out), "--force",
                                    "--base-image", args.base_image, "--python", args.python, "--no-pins"],
                                   capture_output=True, text=True, check=True, cwd=REPO)
            seconds = float(re.search(rf"^built {re.escape(name)} \S+ in ([\d.]+) s", build.stdout, re.MULTILINE)[1])
            packed = sum(p.stat().st_size for p in (out / name).glob("part-*")) / 2**20
            runs = []
            for attempt in range(args.runs):
                started = time.perf_counter()
                subprocess.run([*PREBAKE, "restore", str(out / name), "--root", f"{tmp}/{name}-{attempt}", "-q"],
                               check=True, capture_output=True, cwd=REPO)
                runs.append(time.perf_counter() - started)
            restore = statistics.median(runs)
            shown = f"{restore:.2f} ({', '.join(f'{r:.2f}' for r in runs)})"
            print(f"{name:<12}{seconds:>9.1f}{packed:>12.1f}{shown:>30}{seconds / restore:>7.0f}x")


if __name__ == "__main__":
    main()
