"""How well `prebake notebook` converts notebooks written like real Colab ones.

Over two corpora of notebooks written for the tests, each reproducing patterns of public Colab
notebooks with every line labelled setup / user / kept: tests/notebook_corpus.py (the converter's
rules were fixed against it) and tests/notebook_holdout.py (written apart from them), prints:

    setup recall    setup lines that reach the build or the recipe's [conda] table (and leave v1
                    unless they bind what research uses)
    research kept   kept lines (definitions, research, inspection) still in v1
    user in build   lines that need the user but would run at build time
    v1 valid        v1 notebooks that pass nbformat.validate

Targets (issue 10): recall >= 95%, research kept 100%, user in build 0, v1 valid 100%.

With --time IMAGE, each runnable case (pip, apt, small C builds: no GPU, GitHub or Drive) also
goes through `prebake bench` against that base image: v0's setup from scratch vs v1's restore,
both in fresh containers of the mirror image (slow: minutes per case).

    .venv/bin/python bench/notebooks.py
    .venv/bin/python bench/notebooks.py --time prebake-test-base:bookworm --python 3.11
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import nbformat  # noqa: E402
from prebake.notebook import convert  # noqa: E402

from tests.notebook_corpus import CASES  # noqa: E402
from tests.notebook_corpus import score as corpus_score  # noqa: E402
from tests.notebook_holdout import HOLDOUT  # noqa: E402

TARGETS = {"setup_recall": 0.95, "research_kept": 1.0, "user_in_build": 0, "v1_valid": 1.0}


def _verdict(name: str, value: float) -> str:
    target = TARGETS[name]
    met = value <= target if name == "user_in_build" else value >= target
    return "met" if met else "NOT met"


def time_runnable(image: str, python: str) -> list[tuple[str, float, float]]:
    """(case, v0 setup s, v1 restore s) medians from `prebake bench` for each runnable case."""
    timings = []
    for case in (c for c in CASES if c.runnable):
        with tempfile.TemporaryDirectory() as tmp:
            v0 = Path(tmp) / f"{case.name}.ipynb"
            nbformat.write(case.notebook(), v0)
            ran = subprocess.run([sys.executable, "-m", "prebake", "bench", str(v0), "-o", f"{tmp}/out", "--runs", "3",
                                  "--v0-runs", "1", "--base-image", image, "--python", python, "--no-pins", "-q"],
                                 capture_output=True, text=True)
            if ran.returncode != 0:
                print(f"  {case.name}: prebake bench exited {ran.returncode}: {ran.stderr.strip().splitlines()[-1:]}")
                continue
            data = json.loads(Path(f"{tmp}/out/bench.json").read_text())
            timings.append((case.name, data["v0"]["median"]["total"], data["v1"]["median"]["total"]))
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", metavar="IMAGE", help="also run prebake bench on the runnable cases, FROM this base image")
    parser.add_argument("--python", default="3.11", help="the base image's Python (with --time)")
    args = parser.parse_args()

    for title, cases in (("corpus (the converter's rules were fixed against it)", CASES),
                         ("held-out corpus (written apart from the rules)", HOLDOUT)):
        result = corpus_score(cases, convert)
        print(f"{title}: {result['cases']} notebooks, {result['setup_lines']} setup lines, "
              f"{result['kept_lines']} kept lines, {result['user_lines']} user lines")
        print(f"  {'measure':<16}{'value':>10}{'target':>10}  verdict")
        for name, label, shown in (("setup_recall", "setup recall", f"{result['setup_recall']:.1%}"),
                                   ("research_kept", "research kept", f"{result['research_kept']:.1%}"),
                                   ("user_in_build", "user in build", str(result["user_in_build"])),
                                   ("v1_valid", "v1 valid", f"{result['v1_valid']:.0%}")):
            target = TARGETS[name]
            print(f"  {label:<16}{shown:>10}{(f'{target:.0%}' if isinstance(target, float) else str(target)):>10}  "
                  f"{_verdict(name, result[name])}")
        for error in result["errors"]:
            print(f"    {error}")
    if args.time:
        for name, v0, v1 in time_runnable(args.time, args.python):
            print(f"{name}: v0 setup {v0:.1f} s, v1 restore {v1:.2f} s: {v0 / v1:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
