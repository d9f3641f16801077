"""A conda environment in a new session: condacolab-style install, conda-pack's unpack, prebake's restore.

    .venv/bin/python bench/conda.py [--megabytes 150] [--runs 3]

One environment, built offline: a local channel (py-rattler-build) holding the test packages of
tests/conda (text, binary and entry-point prefixes) and one bulk package made of a copy of this
venv's site-packages (real .py, .so and data files, cut to --megabytes). Then, per run, into a fresh
prefix with the page cache as it is:

- condacolab style: what every new session repeats, py-rattler solving and installing from the
  channel with an empty package cache (the channel is local, so no download time is counted);
- conda-pack: its own tar.gz of the environment, `tar -xzf` + `bin/conda-unpack` (packing not timed);
- prebake: `prebake.restore(pack, prefix=...)` of a pack of the same environment (packing not timed).

Prints the medians and the ratio the issue names: prebake's restore over conda-pack's unpack plus
conda-unpack (target <= 0.5x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conda_env import build_channel, install_env  # noqa: E402


def bulk_recipe(folder: Path, megabytes: int) -> Path:
    """A recipe whose package is a copy of this venv's site-packages, cut to about `megabytes`."""
    source = folder / "src"
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    budget = megabytes * 2**20
    for entry in sorted(site.iterdir()):
        if budget <= 0:
            break
        if entry.is_dir() and not entry.name.startswith(("_", ".")) and entry.name != "prebake":
            shutil.copytree(entry, source / entry.name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
            budget -= sum(p.stat().st_size for p in (source / entry.name).rglob("*") if p.is_file())
    (folder / "recipe.yaml").write_text(textwrap.dedent("""\
        package: {name: pb-bulk, version: "1.0"}
        source: {path: src}
        build:
          number: 0
          dynamic_linking: {binary_relocation: false}  # copied wheels' .so files keep their own rpaths
          script:
            - mkdir -p $PREFIX/lib/bulk $PREFIX/etc
            - cp -r . $PREFIX/lib/bulk/
            - echo "root=$PREFIX/lib/bulk" > $PREFIX/etc/bulk.conf
        """))
    return folder / "recipe.yaml"


def timed(action, fresh: Path) -> float:
    """Seconds `action` takes, after the writes of earlier ones reached the disk (so none pays for another's)."""
    os.sync()
    started = time.perf_counter()
    action(fresh)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=150, help="size of the bulk package's files")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import conda_pack
    from prebake.conda import pack_conda
    from prebake.pack import PackOptions
    from prebake.restore import restore
    from rattler_build import Stage0Recipe, ToolConfiguration

    work = Path(tempfile.mkdtemp(prefix="prebake-bench-conda-"))
    os.environ["PREBAKE_STATE_DIR"] = str(work / "state")
    try:
        channel = build_channel(work / "channel")
        Stage0Recipe.from_file(bulk_recipe(work / "bulk", args.megabytes)).run_build(
            output_dir=channel, channels=[channel.as_uri()], tool_config=ToolConfiguration(test_strategy="skip"))
        specs = ["python", "pb-config", "pb-greet", "pb-pyhello", "pb-longbin", "pb-bulk"]
        env = install_env(channel, work / "env", specs, work / "pkgs")
        files = sum(1 for p in env.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in env.rglob("*") if p.is_file() and not p.is_symlink())
        print(f"environment: {files:,} files, {size / 2**20:.0f} MiB, {len(specs)} packages")

        started = time.perf_counter()
        conda_pack.pack(prefix=str(env), output=str(work / "env.tar.gz"), n_threads=-1)
        print(f"conda-pack packed a {(work / 'env.tar.gz').stat().st_size / 2**20:.0f} MiB tar.gz in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        manifest = pack_conda(env, work / "pack", PackOptions(name="bench", version="1", target=str(work / "packed-at")))
        print(f"prebake packed {manifest.packed_size / 2**20:.0f} MiB in {len(manifest.parts)} parts in {time.perf_counter() - started:.1f} s")

        times: dict[str, list[float]] = {"condacolab-style install": [], "conda-pack unpack + conda-unpack": [], "prebake restore": []}
        def condacolab_style(fresh: Path) -> None:
            install_env(channel, fresh / "rattler", specs, fresh / "cache")

        def conda_unpack(fresh: Path) -> None:
            target = fresh / "conda-pack"
            target.mkdir(parents=True)
            subprocess.run(["tar", "-xzf", str(work / "env.tar.gz"), "-C", str(target)], check=True)
            subprocess.run([str(target / "bin/python"), str(target / "bin/conda-unpack")], check=True)

        def prebake_restore(fresh: Path) -> None:
            restore(work / "pack", prefix=str(fresh / "prebake"), progress=False, apply_env=False)

        ways = {"condacolab-style install": condacolab_style, "conda-pack unpack + conda-unpack": conda_unpack,
                "prebake restore": prebake_restore}
        times: dict[str, list[float]] = {what: [] for what in ways}
        for run in range(args.runs):
            fresh = work / f"run-{run}"
            for what, way in ways.items():
                times[what].append(timed(way, fresh))
            check = subprocess.run([str(fresh / "prebake/bin/pb-config")], capture_output=True, text=True, check=True).stdout
            assert check == f"datadir={fresh / 'prebake'}/share/pb-config\n", check
            shutil.rmtree(fresh)

        medians = {what: statistics.median(values) for what, values in times.items()}
        for what, values in times.items():
            print(f"{what:34} median {medians[what]:6.2f} s   runs {', '.join(f'{v:.2f}' for v in values)}")
        ratio = medians["prebake restore"] / medians["conda-pack unpack + conda-unpack"]
        print(f"prebake restore / (conda-pack unpack + conda-unpack) = {ratio:.2f}x (target <= 0.5x: {'met' if ratio <= 0.5 else 'NOT met'})")
        print(f"condacolab-style install / prebake restore = {medians['condacolab-style install'] / medians['prebake restore']:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
