"""Run a command on this machine, streaming its output line by line and keeping the tail; `Output`
is the line handling the container's exec shares (masking, tail, on_line)."""

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


class Output:
    """A command's output as its lines arrive: secrets in `mask` replaced by ***, each line passed to
    `on_line`, the last TAIL_LINES kept for the error message."""

    def __init__(self, on_line: Callable[[str], None] | None = None, mask: Iterable[str] = ()) -> None:
        self.on_line = on_line
        self.secrets = [m for m in mask if m]
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def line(self, text: str) -> None:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        self.tail.append(text)
        if self.on_line is not None:
            self.on_line(text)

    def ran(self, code: int) -> Ran:
        return Ran(code, list(self.tail))


def stream(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
           on_line: Callable[[str], None] | None = None, mask: Iterable[str] = ()) -> Ran:
    """Run `argv` with stdout and stderr merged; each line (masked) goes to `on_line`; returns the
    exit code and the last lines."""
    program = shutil.which(argv[0], path=(env or {}).get("PATH"))
    if program is None:
        searched = (env or {}).get("PATH", "the default PATH")
        msg = f"{argv[0]} not found (searched {searched}); install it or fix PATH"
        raise UsageError(msg)
    output = Output(on_line, mask)
    with subprocess.Popen([program, *argv[1:]], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            output.line(raw.decode(errors="replace").rstrip("\r\n"))
    return output.ran(proc.returncode)
