"""The headline: a seed-like notebook's setup from scratch (v0) against its restore (v1); target >= 20x.

    .venv/bin/python bench/seed.py [--out /tmp/seed-bench] [--runs 3] [--v0-runs 2] [--notebooks]

examples/seed/v0.ipynb (written by examples/seed/make_v0.py) installs openSMILE, MediaPipe 0.10.21
and scikit-image from PyPI and downloads a model file and a dataset tarball from the lab's server.
Here that server is tests/servers.py's FolderServer on 127.0.0.1, its whole output held to 50 MB/s
(Drive-like), serving a 40 MiB model of random bytes and a tarball of CSV sessions made at run time.
The notebook's DATA_URL is rewritten to the server's address in a temporary copy, then
`prebake bench` converts it, builds the pack (cached when up to date) and times v0's setup and v1's
restore in fresh containers; this prints both medians, the ratio and whether the target was met,
and copies bench.png, bench.md and bench.json to --out. With --notebooks it also runs v0 and v1
top to bottom with nbclient in fresh containers and compares their research cells' outputs.

What the mirror image lacks and Colab has goes in --prepare (not packed, not timed): wget,
ca-certificates, and libGL/GLib for OpenCV. Colab has no pip constraints file, so the prepare
step empties the mirror's: as on Colab, pip downgrades numpy to 1.x for MediaPipe 0.10.21.
Needs dockerd and the base image (`bash .ci/docker-up.sh && bash .ci/base-image.sh`).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers import FolderServer, RateLimit

V0 = REPO / "examples" / "seed" / "v0.ipynb"
RATE = 50e6  # bytes a second, the server's whole output
PREPARE = ("apt-get update -q && apt-get install -y -q --no-install-recommends wget ca-certificates libgl1 libglib2.0-0"
           " && : > /etc/prebake/constraints.txt")
# Not `import opensmile`: its audobject needs asttokens, which IPython (installed by the notebook
# runner's prepare step, not packed; Colab has it) brought into the build, and the bare mirror the
# build's check runs in lacks it.
CHECK = ("python -c 'import numpy; from importlib.metadata import version as v; "
         "assert numpy.__version__ == \"1.26.4\" and v(\"mediapipe\") == \"0.10.21\" and v(\"opensmile\") == \"2.6.0\"'"
         " && test -s /content/models/model.bin && test -s /content/data/seed-sessions/p01.csv")
TARGET = 20.0
DATA_URL = re.compile(r'^(DATA_URL\s*=\s*)"[^"]*"', re.MULTILINE)


def make_data(www: Path, model_mib: int = 40) -> None:
    """The lab's share: model.bin (random bytes, fixed seed) and seed-sessions.tar.gz (CSV, a few MB)."""
    rng = np.random.default_rng(2024)
    (www / "model.bin").write_bytes(rng.bytes(model_mib * 2**20))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for p in range(1, 5):
            frames = 30_000
            t = np.arange(frames) / 30
            valence = np.round(np.sin(t / (7 + p)) * 0.5 + rng.normal(0, 0.1, frames) + 0.05 * p, 4)
            arousal = np.round(np.cos(t / (5 + p)) * 0.4 + rng.normal(0, 0.1, frames), 4)
            text = "frame,time,participant,valence,arousal\n" + "".join(
                f"{i},{t[i]:.3f},p{p:02d},{valence[i]},{arousal[i]}\n" for i in range(frames))
            data = text.encode()
            info = tarfile.TarInfo(f"seed-sessions/p{p:02d}.csv")
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    (www / "seed-sessions.tar.gz").write_bytes(buffer.getvalue())


def point_at(v0: Path, url: str, out: Path) -> Path:
    """A copy of v0 whose DATA_URL is `url`."""
    nb = nbformat.read(v0, as_version=nbformat.NO_CONVERT)
    hits = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source, n = DATA_URL.subn(lambda m: f'{m.group(1)}"{url}"', cell.source)
            hits += n
    if hits != 1:
        sys.exit(f"{v0}: expected one DATA_URL = \"...\" line, found {hits}")
    nbformat.write(nb, out)
    return out


def research_outputs(path: Path) -> list[tuple[str, str]]:
    """(source, stdout) of each code cell but v1's restore cell."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.source.startswith("# prebake:"):
            continue
        # stdout only: MediaPipe's C++ logs on stderr carry timestamps and thread ids
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
        found.append((cell.source, text))
    return found


def run_notebooks(out: Path, v0: Path, work: Path) -> dict:
    """v0 and v1 top to bottom with nbclient in fresh containers; the research outputs compared."""
    from contextlib import closing

    from prebake.benchmark import derived_image, run_notebook, runner_image, v0_image
    from prebake.capture import docker as backend
    from prebake.manifest import loads
    from prebake.recipe import load

    pack = out / "packs" / "seed"
    manifest = loads((pack / "manifest.json").read_bytes())
    recipe = load(out / "pack.toml")
    result = {}
    with closing(backend.client()) as engine:
        kernel = v0_image(engine, manifest.created_by["image"], recipe, kernel=True)
        t = time.perf_counter()
        run_notebook(engine, kernel, v0, work / "v0.out.ipynb")
        result["v0_seconds"] = time.perf_counter() - t
        # the runner image (mirror + prebake) lacks Colab's libGL, which OpenCV loads: add it, not packed
        runner = derived_image(engine, runner_image(engine, manifest.created_by["image"]), "seed-runner-gl",
                          ["apt-get update -q && apt-get install -y -q --no-install-recommends libgl1 libglib2.0-0"])
        from prebake.benchmark import FolderServer as PackServer

        with PackServer(out / "packs") as base:
            lock = work / "prebake.lock"
            lock.write_text(f'version = 1\n[[pack]]\nname = "seed"\nversion = "1"\ndigest = "{manifest.digest}"\n'
                            f'locations = ["{base}/seed"]\n')
            t = time.perf_counter()
            run_notebook(engine, runner, out / "v1.ipynb", work / "v1.out.ipynb",
                         files={"/content/prebake.lock": lock})
            result["v1_seconds"] = time.perf_counter() - t
    v0_out = dict(research_outputs(work / "v0.out.ipynb"))
    v1_out = research_outputs(work / "v1.out.ipynb")
    result["compared"] = len([s for s, _ in v1_out if s in v0_out])
    result["differ"] = [s.splitlines()[0] for s, text in v1_out if s in v0_out and v0_out[s] != text]
    result["outputs"] = [text for _, text in v1_out if text.strip()]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=V0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/seed-bench"))
    parser.add_argument("--base-image", default="prebake-test-base:bookworm")
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--v0-runs", type=int, default=2)
    parser.add_argument("--rate", type=float, default=RATE, help="the data server's bytes a second (default 50e6)")
    parser.add_argument("--model-mib", type=int, default=40)
    parser.add_argument("--notebooks", action="store_true",
                        help="also run v0 and v1 end to end with nbclient and compare the research outputs")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (converted notebook, packs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prebake-seed-"))
    try:
        www = work / "www"
        www.mkdir()
        make_data(www, args.model_mib)
        with FolderServer(www) as server:
            server.faults.rate = RateLimit(args.rate)
            v0 = point_at(args.notebook, server.url, work / "seed.ipynb")
            out = work / "out"
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "prebake", "bench", str(v0), "-o", str(out), "--name", "seed",
                 "--runs", str(args.runs), "--v0-runs", str(args.v0_runs), "--prepare", PREPARE, "--check", CHECK,
                 "--base-image", args.base_image, "--python", args.python, "--no-pins", "-q"],
                check=True, cwd=REPO,
            )
            seconds = time.perf_counter() - started
            data = json.loads((out / "bench.json").read_text())
            ran = run_notebooks(out, v0, work) if args.notebooks else None
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("bench.png", "bench.md", "bench.json"):
            shutil.copy(out / name, args.out / name)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    v0m, v1m = data["v0"]["median"], data["v1"]["median"]
    for label, side in (("v0 setup:  ", data["v0"]), ("v1 restore:", data["v1"])):
        runs = ", ".join(f"{run['total']:.2f}" for run in side["runs"])
        phases = ", ".join(f"{k} {v:.2f}" for k, v in side["median"]["phases"].items())
        print(f"{label} median {side['median']['total']:.2f} s   runs {runs}   ({phases})")
    speedup = data["speedup"]
    print(f"v1 is {speedup:.1f}x faster   target >= {TARGET:.0f}x: {'met' if speedup >= TARGET else 'NOT met'}")
    pack = data["pack"]
    packed = pack["packed_bytes"]
    print(f"pack: {pack['members']} entries, {pack['bytes'] / 2**20:.0f} MiB -> {packed / 2**20:.0f} MiB packed; "
          f"the whole bench command took {seconds:.0f} s")
    # v1's pack came over loopback; from the same 50 MB/s share its download alone would take this long
    at_rate = packed / args.rate
    v1_at_rate = max(v1m["total"], v1m["total"] - v1m["phases"]["download"] + at_rate)
    print(f"if the pack came from the same {args.rate / 1e6:.0f} MB/s share: download >= {at_rate:.1f} s, "
          f"v1 >= {v1_at_rate:.1f} s, {v0m['total'] / v1_at_rate:.1f}x")
    if ran:
        print(f"notebooks end to end (nbclient, fresh containers): v0 {ran['v0_seconds']:.1f} s, "
              f"v1 {ran['v1_seconds']:.1f} s; {ran['compared']} research cells compared, "
              f"{'all the same' if not ran['differ'] else 'DIFFERENT: ' + '; '.join(ran['differ'])}")
        for text in ran["outputs"]:
            print("  | " + text.rstrip().replace("\n", "\n  | "))
    print(f"wrote {args.out / 'bench.png'}, {args.out / 'bench.md'}, {args.out / 'bench.json'}")


if __name__ == "__main__":
    main()
