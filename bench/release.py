"""Releases that move only what changed: push a virtualenv, upgrade one package, push again.

    .venv/bin/python bench/release.py [--upgrade requests,pygments,jedi,numpy] [--work DIR] [--level L]

Builds a virtualenv-like tree once (cached under --work) by copying some of this venv's
site-packages (numpy, matplotlib, pillow, jedi, botocore, fontTools, networkx, pygments, IPython,
...: about 280 MB). Packs it and pushes it to a local folder (release 1), then, one release per
name in --upgrade, "upgrades" that package on top of the previous release: every file of it
rewritten with other bytes and sizes, a few removed and added, its dist-info renamed to a new
version, new mtimes on its files and folders and on site-packages (as pip leaves them). Each
release is packed and pushed to the same folder, with its own lock.

Prints, per release: the parts the push uploaded and the ones the folder already had, the bytes
uploaded against re-uploading the whole pack, the upgraded package packed alone, and what the push
uploaded beyond it in parts of the release's average size (target: <= 2). Then serves the folder
over HTTP and restores every release from its own lock, checking each against its tree.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from prebake.manifest import MANIFEST_NAME, loads
from prebake.pack import DEFAULT_LEVEL, PackOptions, pack_tree
from prebake.push import push
from prebake.restore import restore

from tests.servers import FolderServer

PACKAGES = {  # distribution: the folders of site-packages it installs (globs)
    "numpy": ["numpy", "numpy.libs", "numpy-*.dist-info"],
    "matplotlib": ["matplotlib", "matplotlib-*.dist-info"],
    "pillow": ["PIL", "pillow.libs", "pillow-*.dist-info"],
    "jedi": ["jedi", "jedi-*.dist-info"],
    "parso": ["parso", "parso-*.dist-info"],
    "botocore": ["botocore", "botocore-*.dist-info"],
    "fonttools": ["fontTools", "fonttools-*.dist-info"],
    "networkx": ["networkx", "networkx-*.dist-info"],
    "pygments": ["pygments", "pygments-*.dist-info"],
    "ipython": ["IPython", "ipython-*.dist-info"],
    "tornado": ["tornado", "tornado-*.dist-info"],
    "kiwisolver": ["kiwisolver", "kiwisolver-*.dist-info"],
    "pyyaml": ["yaml", "pyyaml-*.dist-info"],
    "requests": ["requests", "requests-*.dist-info"],
    "urllib3": ["urllib3", "urllib3-*.dist-info"],
    "idna": ["idna", "idna-*.dist-info"],
    "certifi": ["certifi", "certifi-*.dist-info"],
    "click": ["click", "click-*.dist-info"],
}
SITE = "lib/python3/site-packages"
TARGET = "/opt/venv"
INSTALLED = 1_700_000_000
"""The mtime of every file of the first release (the copy's own would change from run to run)."""


@dataclass(frozen=True)
class Release:
    label: str
    change: str
    parts: int
    packed: int
    uploaded_parts: int
    reused_parts: int
    uploaded: int
    package_alone: int = 0

    @property
    def beyond(self) -> float:
        """What the push uploaded beyond the upgraded package, in parts of this release's average size."""
        return (self.uploaded - self.package_alone) / (self.packed / self.parts)


def sh(*command: str) -> None:
    subprocess.run(command, check=True)


def folders(site: Path, dist: str) -> list[Path]:
    return sorted(path for pattern in PACKAGES[dist] for path in site.glob(pattern))


def base_tree(work: Path, dists: list[str]) -> Path:
    """Release 1's tree, copied once from this venv's site-packages with one mtime for everything."""
    tree = work / ("base-" + "-".join(dists))
    if (tree / ".complete").exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    source = Path(sysconfig.get_paths()["purelib"])
    site = tree / "venv" / SITE
    site.mkdir(parents=True)
    for dist in dists:
        for path in folders(source, dist):
            sh("cp", "-a", str(path), str(site / path.name))
    (tree / "venv" / "bin").mkdir()
    (tree / "venv" / "bin" / "python-tool").write_text("#!/bin/sh\nexec python3 \"$@\"\n")
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [*dirnames, *filenames]:
            os.utime(os.path.join(dirpath, name), (INSTALLED, INSTALLED), follow_symlinks=False)
    os.utime(tree, (INSTALLED, INSTALLED))
    (tree / ".complete").write_text("")
    return tree


def replace_file(path: Path, data: bytes, mtime: int) -> None:
    """A new file in its place (the trees share unchanged files as hard links)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
    os.replace(tmp, path)
    os.utime(path, (mtime, mtime))


def upgrade(site: Path, dist: str, mtime: int) -> list[Path]:
    """Install "the next version" of `dist` over its files; returns its folders as they are now."""
    rng = random.Random(dist)
    for top in folders(site, dist):
        if top.name.endswith(".dist-info"):
            renamed = top.with_name(top.name.replace(".dist-info", ".post1.dist-info"))
            top.rename(renamed)
            for path in renamed.iterdir():
                if path.is_file():
                    replace_file(path, path.read_bytes() + b"\nupgraded: 1\n", mtime)
            continue
        files = sorted(p for p in top.rglob("*") if p.is_file() and not p.is_symlink())
        for path in files:
            if rng.random() < 0.05:
                path.unlink()
                continue
            data = path.read_bytes()
            if path.suffix in (".py", ".pyi", ".txt", ".json"):
                data = data.replace(b"e", b"E", 1 + len(data) // 500) + f"\n# {dist} upgraded\n".encode()
            else:
                data = data[: len(data) // 2] + rng.randbytes(64) + data[len(data) // 2 :]
            replace_file(path, data, mtime)
        for i in range(3):
            replace_file(top / f"_new_in_next_version_{i}.py", f"VALUE = {rng.random()}\n".encode() * 200, mtime)
    for top in folders(site, dist):
        for dirpath, _, _ in os.walk(top):
            os.utime(dirpath, (mtime, mtime))
    os.utime(site, (mtime, mtime))  # pip added and removed entries here
    return folders(site, dist)


def packed_alone(work: Path, site: Path, paths: list[Path], level: int) -> int:
    """The upgraded package packed on its own: the least any push of the upgrade can move."""
    alone = work / "alone"
    shutil.rmtree(alone, ignore_errors=True)
    for path in paths:
        (alone / SITE).mkdir(parents=True, exist_ok=True)
        sh("cp", "-al", str(path), str(alone / SITE / path.name))
    manifest = pack_tree(alone, work / "alone-pack", PackOptions(name="alone", version="1", target=TARGET, level=level,
                                                                   part_size=2**40, min_parts=1))
    shutil.rmtree(alone)
    return manifest.packed_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", default=",".join(PACKAGES), help="distributions copied into the payload")
    parser.add_argument("--upgrade", default="requests,pygments,jedi,numpy", help="one release per name, in order")
    parser.add_argument("--work", type=Path, default=REPO / ".bench-cache" / "release")
    parser.add_argument("--level", type=int, default=DEFAULT_LEVEL)
    parser.add_argument("--dest", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
                        help="where the restores land (default /dev/shm: this VM's disk makes file creation the measure)")
    parser.add_argument("--keep", action="store_true", help="keep the trees, packs and the store folder")
    args = parser.parse_args()
    dists = [d for d in args.packages.split(",") if d]
    upgrades = [d for d in args.upgrade.split(",") if d]
    if unknown := sorted(set(dists + upgrades) - set(PACKAGES)):
        parser.error(f"unknown distribution(s) {', '.join(unknown)}; choose from {', '.join(PACKAGES)}")
    if missing := sorted(set(upgrades) - set(dists)):
        parser.error(f"--upgrade names {', '.join(missing)}, which --packages leaves out")
    work = args.work.resolve()
    base = base_tree(work, dists)
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    store = run / "store"

    releases: list[Release] = []
    trees: list[Path] = []
    for k, change in enumerate(["(first push)", *upgrades], start=1):
        tree = run / f"tree-{k}"
        sh("cp", "-al", str(trees[-1] if trees else base / "venv"), str(tree))
        alone = 0
        if trees:
            paths = upgrade(tree / SITE, change, INSTALLED + 86_400 * k)
            alone = packed_alone(run, tree / SITE, paths, args.level)
        trees.append(tree)
        started = time.perf_counter()
        manifest = pack_tree(tree, run / f"pack-{k}", PackOptions(name="venv", version=str(k), target=TARGET, level=args.level))
        packing = time.perf_counter() - started
        [pushed] = push([run / f"pack-{k}"], [str(store)], run / f"release-{k}.lock")
        releases.append(Release(str(k), change, len(manifest.parts), manifest.packed_size, pushed.uploaded_parts,
                                pushed.reused_parts, pushed.uploaded_bytes, alone))
        print(f"release {k} ({change}): packed {manifest.stats['bytes'] / 1e6:.0f} MB into {len(manifest.parts)} parts, "
              f"{manifest.packed_size / 1e6:.1f} MB, in {packing:.1f} s", flush=True)

    print(f"\n{'release':<9}{'change':<15}{'parts':>6}{'shared':>8}{'uploaded':>10}{'MB up':>8}{'whole MB':>10}"
          f"{'% of whole':>11}{'pkg alone MB':>13}{'beyond pkg':>12}")
    for r in releases:
        beyond = f"{r.beyond:.2f} parts" if r.package_alone else ""
        print(f"{r.label:<9}{r.change:<15}{r.parts:>6}{r.reused_parts:>8}{r.uploaded_parts:>10}{r.uploaded / 1e6:>8.1f}"
              f"{r.packed / 1e6:>10.1f}{100 * r.uploaded / r.packed:>10.1f}%{r.package_alone / 1e6:>13.1f}{beyond:>12}")
    upgraded = releases[1:]
    if upgraded:
        worst = max(r.beyond for r in upgraded)
        print(f"target: a one-package upgrade uploads <= 2 parts' worth beyond that package: worst {worst:.2f} "
              f"({'met' if worst <= 2 else 'NOT met'})")
    on_disk = sum(p.stat().st_size for p in (store / "parts").iterdir())
    print(f"store: {on_disk / 1e6:.1f} MB for {len(releases)} releases "
          f"({sum(r.packed for r in releases) / 1e6:.1f} MB if each release kept its own parts)")

    with FolderServer(run) as server:
        for k, tree in enumerate(trees, start=1):
            root = (args.dest.resolve() if args.dest else run) / f"prebake-release-{os.getpid()}-{k}"
            started = time.perf_counter()
            restore(f"{server.url}/release-{k}.lock", root=root, progress=False)
            seconds = time.perf_counter() - started
            same = _listing(root / TARGET.strip("/")) == _listing(tree)
            print(f"restore release {k} over HTTP from its own lock: {seconds:.2f} s, "
                  f"{'identical to its tree' if same else 'DIFFERS from its tree'}")
            shutil.rmtree(root)
            if not same:
                sys.exit(1)
    manifest_names = sorted(p.name for p in (store / "parts").glob("manifest-*.json"))
    assert len(manifest_names) == len(releases), manifest_names
    assert loads((run / "pack-1" / MANIFEST_NAME).read_bytes()).digest[7:] in " ".join(manifest_names)
    if not args.keep:
        shutil.rmtree(run)


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, int(p.lstat().st_mtime))
            for p in root.rglob("*") if not p.is_dir()}


if __name__ == "__main__":
    main()
