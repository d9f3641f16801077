"""What `pip install prebake` adds to a Colab runtime, and the wheel's size (target: prebake alone).

    .venv/bin/python bench/install.py [--colab-pins PATH] [--python PYTHON]

Builds the checkout's wheel and reports its size and file count, failing if the data a build
needs is missing from it (runtime facts, the build image's Dockerfile, the shipped recipes).

Then it makes a fresh venv that mirrors Colab for prebake's dependency closure: every distribution
`prebake[drive,notebook]` resolves to, installed at the version in Colab's `pip freeze` (read at run
time from --colab-pins), with their own dependencies held to Colab's pins as constraints. In that
venv, `pip install --dry-run --report` of the wheel, plain and with [drive,notebook], lists what pip
would install or change. Target for both: prebake alone, so a notebook on Colab downloads one small
wheel and changes nothing Colab ships. The venv runs this machine's Python, which may differ from
Colab's (printed), so dependencies behind python_version markers can differ.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PINS = REPO.parent / "shared" / "reference" / "colab-backend-info"
EXTRAS = "drive,notebook"


def norm(name: str) -> str:
    """PEP 503 name, so `PySocks` in a freeze matches `pysocks` in a report."""
    return re.sub(r"[-_.]+", "-", name).lower()


def run(*cmd: str | Path) -> str:
    """Run a command; on failure show its output and stop, since every later number depends on it."""
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def build_wheel(tmp: Path) -> Path:
    """The wheel as a user gets it from PyPI: built in isolation, no dependencies, from a copy of the
    checkout's files (tracked and not ignored), so a stale build/ folder cannot leak into it."""
    source = tmp / "source"
    for name in run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0"):
        if name and (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", source)
    (wheel,) = (tmp / "dist").glob("prebake-*.whl")
    return wheel


def check_wheel(wheel: Path) -> str:
    """Size, file count and the shipped data; a missing piece would only show when a user builds."""
    names = zipfile.ZipFile(wheel).namelist()
    runtimes = [n for n in names if re.fullmatch(r"prebake/_images/[^/]+/runtime\.toml", n)]
    recipes = [n for n in names if n.startswith("prebake/_recipes/") and not n.endswith("__init__.py")]
    dockerfile = "prebake/_dockerfile/Dockerfile.colab-ubuntu" in names
    if not (runtimes and recipes and dockerfile):
        sys.exit(f"{wheel.name} lacks shipped data: runtime.toml {len(runtimes)}, recipes {len(recipes)}, "
                 f"Dockerfile.colab-ubuntu {'yes' if dockerfile else 'MISSING'}")
    images = ", ".join(n.split("/")[2] for n in runtimes)
    return (f"{wheel.stat().st_size / 1000:.1f} KB, {len(names)} files; runtime.toml for {images}, "
            f"Dockerfile.colab-ubuntu, {len(recipes)} recipe files")


def colab_pins(path: Path) -> tuple[Path, dict[str, str]]:
    """Colab's `name==version` pins (URL installs skipped); a folder means its HEAD-*/pip-freeze.txt."""
    if path.is_dir():
        path = max(path.glob("HEAD-*/pip-freeze.txt"), default=path / "HEAD-*" / "pip-freeze.txt")
    if not path.is_file():
        sys.exit(f"no Colab pip freeze at {path}: pass --colab-pins PATH (a pip-freeze.txt or colab-backend-info)")
    pins = dict(line.split("==", 1) for line in path.read_text().splitlines() if re.match(r"[\w.-]+==", line))
    return path, {norm(name): version.strip() for name, version in pins.items()}


def colab_python(freeze: Path) -> str:
    """Colab's Python version from the os-info.txt beside the freeze, to print next to ours."""
    info = freeze.with_name("os-info.txt")
    found = re.search(r"^Python (\S+)", info.read_text(), re.MULTILINE) if info.is_file() else None
    return found[1] if found else "?"


def dry_run(python: Path, requirement: str, report: Path, *pip_args: str) -> dict[str, str]:
    """What pip would install for `requirement` in this venv, as {name: version}."""
    run(python, "-m", "pip", "install", "-q", "--dry-run", "--report", report, *pip_args, requirement)
    return {norm(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]}


def installed(python: Path) -> dict[str, str]:
    """{name: version} of what the venv holds."""
    listed = json.loads(run(python, "-m", "pip", "list", "--format", "json"))
    return {norm(item["name"]): item["version"] for item in listed}


def describe(adds: dict[str, str], before: dict[str, str]) -> str:
    """One cell: each distribution pip would bring, new or as an upgrade/downgrade of Colab's."""
    return ", ".join(f"{name} {before[name]} -> {version}" if name in before else f"{name} {version}"
                     for name, version in sorted(adds.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--colab-pins", type=Path, default=DEFAULT_PINS,
                        help="Colab's pip-freeze.txt, or the colab-backend-info folder (its HEAD-*/)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the fresh venv")
    args = parser.parse_args()
    freeze, pins = colab_pins(args.colab_pins)
    with tempfile.TemporaryDirectory(prefix="prebake-bench-install-") as tmp:
        tmp_path = Path(tmp)
        wheel = build_wheel(tmp_path)
        print(f"wheel   {wheel.name}: {check_wheel(wheel)}")

        run(args.python, "-m", "venv", tmp_path / "venv")
        python = tmp_path / "venv" / "bin" / "python"
        constraints = tmp_path / "colab-constraints.txt"
        constraints.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()))
        # Colab's pip resolves on Colab (the newest pip if the freeze lacks one; --dry-run --report needs 22.2).
        run(python, "-m", "pip", "install", "-q", "--upgrade", "-c", constraints, "pip", "setuptools")
        report = tmp_path / "report.json"
        closure = dry_run(python, f"{wheel}[{EXTRAS}]", report, "--ignore-installed")
        closure.pop("prebake")
        run(python, "-m", "pip", "install", "-q", "-c", constraints, *sorted(name for name in closure if name in pins))
        before = installed(python)
        version = run(python, "-c", "import platform; print(platform.python_version())").strip()
        missing = sorted(set(closure) - set(pins))
        off = sorted(f"{name} {have} (Colab {pins[name]})" for name, have in before.items()
                     if pins.get(name, have) != have)
        extra = sorted(set(before) - set(pins) - {"pip", "setuptools", "wheel"})
        print(f"colab   {freeze.relative_to(freeze.parent.parent)} (Python {colab_python(freeze)}; venv {version}): "
              f"closure of {len(closure)} mirrored, {len(before)} installed; "
              f"not on Colab: {', '.join(missing) or 'none'}; "
              f"installed off Colab's pins: {', '.join(off + extra) or 'none'}")

        print(f"\n| {'command':<38} | pip would add or change (target: prebake alone) | verdict |")
        print(f"|{'-' * 40}|{'-' * 50}|{'-' * 9}|")
        verdicts = []
        for requirement in ("prebake", f"prebake[{EXTRAS}]"):
            adds = dry_run(python, str(wheel) + requirement.removeprefix("prebake"), report)
            met = set(adds) == {"prebake"}
            verdict = "met" if met else "NOT met"
            verdicts.append(f"pip install {requirement}: "
                            + ("adds prebake only" if met else f"adds {describe(adds, before)}")
                            + f" (target: prebake alone) -> {verdict}")
            print(f"| {'pip install ' + requirement:<38} | {describe(adds, before):<48} | {verdict:<7} |")
        print("\n" + "\n".join(verdicts))


if __name__ == "__main__":
    main()
