"""Solve specs against one local channel and install them into a prefix, keeping the package cache.

Run as `python install.py CHANNEL PREFIX CACHE SPEC...` by tests/conda_env.py: py-rattler's async
runtime can crash the interpreter at exit, so this runs in its own process and leaves by os._exit.
"""

import asyncio
import os
import sys

import rattler


async def main(channel: str, prefix: str, cache: str, specs: list[str]) -> None:
    records = await rattler.solve(
        [rattler.Channel(f"file://{channel}")], specs, platforms=[rattler.Platform.current(), "noarch"]
    )
    await rattler.install(records, prefix, cache_dir=cache, show_progress=False)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
