"""A v0 notebook's setup against the v1 notebook's restore (target: v1 >= 10x faster).

    .venv/bin/python bench/notebook.py [--base-image IMG] [--python 3.11] [--runs 3] [--v0-runs 2] [NOTEBOOK]

Runs `prebake bench` on examples/notebook/v0.ipynb (or NOTEBOOK): it converts the notebook,
builds the pack, then times v0's setup cells and v1's restore cell in fresh containers, several
runs each, and this prints both medians and the ratio. Needs dockerd and the base image
(`bash .ci/docker-up.sh && bash .ci/base-image.sh`). The integration test checks that the bench
works and reports consistent numbers; the ratio is measured here, not asserted there.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PREPARE = "apt-get install -y -q --no-install-recommends gcc libc6-dev python3-dev"
CHECK = "greet && figlet ok && python -c 'import markupsafe._speedups'"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=REPO / "examples" / "notebook" / "v0.ipynb")
    parser.add_argument("--base-image", default="prebake-test-base:bookworm")
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--v0-runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prebake-bench-nb-") as work:
        out = Path(work) / "out"
        subprocess.run(
            [sys.executable, "-m", "prebake", "bench", str(args.notebook), "-o", str(out), "--name", "demo",
             "--runs", str(args.runs), "--v0-runs", str(args.v0_runs), "--prepare", PREPARE, "--check", CHECK,
             "--base-image", args.base_image, "--python", args.python, "--no-pins", "-q"],
            check=True, cwd=REPO,
        )
        data = json.loads((out / "bench.json").read_text())
    for label, side in (("v0 setup:  ", data["v0"]), ("v1 restore:", data["v1"])):
        runs = ", ".join(f"{run['total']:.2f}" for run in side["runs"])
        print(f"{label} median {side['median']['total']:.2f} s   runs {runs}")
    print(f"v1 is {data['speedup']:.1f}x faster   (target >= 10x)")


if __name__ == "__main__":
    main()
