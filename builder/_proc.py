"""Run a command on this machine, streaming its output line by line and keeping the tail."""

from __future__ import annotations

import collections
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import UsageError

TAIL_LINES = 30


@dataclass(frozen=True)
class Ran:
    code: int
    tail: list[str]


def stream(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
           on_line: Callable[[str], None] | None = None, mask: Iterable[str] = ()) -> Ran:
    """Run `argv` with stdout and stderr merged; each line (secrets in `mask` replaced by ***) goes
    to `on_line`; returns the exit code and the last lines."""
    program = shutil.which(argv[0], path=(env or {}).get("PATH"))
    if program is None:
        searched = (env or {}).get("PATH", "the default PATH")
        msg = f"{argv[0]} not found (searched {searched}); install it or fix PATH"
        raise UsageError(msg)
    secrets = [m for m in mask if m]
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with subprocess.Popen([program, *argv[1:]], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            for secret in secrets:
                line = line.replace(secret, "***")
            tail.append(line)
            if on_line is not None:
                on_line(line)
    return Ran(proc.returncode, list(tail))
