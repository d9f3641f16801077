"""Create a recipe's conda environment with py-rattler: a script the builder copies to the build site.

    python conda_solve.py PREFIX CACHE PYTHON FILE CHANNEL... -- SPEC...

It runs there in a venv holding py-rattler and PyYAML (the builder's prepare step makes it), so it
imports nothing of prebake. PYTHON (X.Y, or "") constrains the environment's python to the
kernel's, so its packages import in the kernel; FILE ("" for none) is an environment.yml whose
channels and dependencies are added. The package cache CACHE is kept: prebake's packer reads from
it which files hold the prefix. py-rattler's async runtime can crash the interpreter at exit, so
the script leaves through os._exit.
"""

import asyncio
import os
import sys


def from_file(path: str) -> tuple[list[str], list[str]]:
    """(channels, specs) of an environment.yml; a pip: section is refused (put it in install steps)."""
    import yaml

    with open(path) as f:
        data = yaml.safe_load(f) or {}
    specs = []
    for dependency in data.get("dependencies") or []:
        if not isinstance(dependency, str):
            sys.exit(f"{os.path.basename(path)}: a pip: section is not installed by the conda step; "
                     "pip-install those packages in an install step (with the environment's bin/pip)")
        specs.append(dependency)
    return list(data.get("channels") or []), specs


async def create(prefix: str, cache: str, python: str, channels: list[str], specs: list[str]) -> None:
    import rattler

    constraints = [f"python {python}.*"] if python else []
    records = await rattler.solve(channels, specs, platforms=[rattler.Platform.current(), "noarch"],
                                  constraints=constraints)
    await rattler.install(records, prefix, cache_dir=cache, show_progress=False)


def main(argv: list[str]) -> None:
    prefix, cache, python, env_file, *rest = argv
    split = rest.index("--")
    channels, specs = rest[:split], rest[split + 1:]
    if env_file:
        more_channels, more_specs = from_file(env_file)
        channels += [c for c in more_channels if c not in channels]
        specs += more_specs
    asyncio.run(create(prefix, cache, python, channels, specs))
    print(f"created the conda environment {prefix}: {len(specs)} requested package(s)")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except SystemExit as e:
        print(e.code, file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    except Exception as e:  # one line for the step's failure message
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)
