"""How a restore shows itself: one bar per restore call (not one per pack) in MiB, then one summary
line per pack, shown even when the call is not a cell's last line.

In a notebook the bar is a display that is updated in place and replaced by the summary at the
end, so a saved notebook holds the summary, never a stale half-drawn bar. In a terminal it is a
tqdm bar that leaves no line behind, and the summary is printed.
"""

from __future__ import annotations

import sys
import threading
import time

_MIB = 2**20


def size_text(n: float) -> str:
    """Bytes in the unit a person reads: 512 B, 3.2 KiB, 70 MiB, 1.4 GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", _MIB), ("KiB", 2**10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{n:.0f} B"


def _shell():
    """The running IPython shell, if this is IPython (never imported here: the restore path stays light)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def execution_count() -> int | None:
    """The IPython cell execution running now, if any (a result shown in it is not shown again)."""
    return getattr(_shell(), "execution_count", None)


def _in_notebook() -> bool:
    """A Jupyter kernel runs this (Colab's shell is a kernel's shell too); a terminal IPython is not one."""
    return getattr(_shell(), "kernel", None) is not None


class Progress:
    """Bytes restored across every pack of one call; `finish` shows the summary lines."""

    def __init__(self, label: str, *, bar: bool | None) -> None:
        """bar: True always, None when a person is watching (a notebook or a terminal), False never."""
        self.label = label
        self.total = 0
        self.done = 0
        self._lock = threading.Lock()
        self._notebook = bar is not False and _in_notebook()
        self._handle = None
        self._drawn = 0.0
        self._tqdm = None
        if self._notebook:
            from IPython.display import display

            self._handle = display({"text/plain": self._text()}, raw=True, display_id=True)
        elif bar is True or (bar is None and sys.stderr.isatty()):
            from tqdm import tqdm

            class Bar(tqdm):
                # No monitor thread: the bar is updated often anyway, and a single-threaded process
                # may then fork its workers (see restore._worker_context).
                monitor_interval = 0

            # "iB" with a 1024 divisor reads MiB, the unit of the summary.
            self._tqdm = Bar(total=0, unit="iB", unit_scale=True, unit_divisor=1024, desc=label, leave=False)

    def _text(self) -> str:
        share = self.done / self.total if self.total else 0.0
        filled = int(share * 30)
        return f"{self.label}: [{'#' * filled}{'.' * (30 - filled)}] {size_text(self.done)} of {size_text(self.total)}"

    def expect(self, n: int, label: str) -> None:
        """More bytes to come: the next pack's parts."""
        with self._lock:
            self.total += n
            self.label = label
            if self._tqdm is not None:
                self._tqdm.set_description_str(label, refresh=False)
                self._tqdm.total = self.total
                self._tqdm.refresh()

    def update(self, n: int) -> None:
        with self._lock:
            self.done += n
            if self._tqdm is not None:
                self._tqdm.update(n)
            elif self._handle is not None and time.monotonic() - self._drawn > 0.2:
                self._drawn = time.monotonic()
                self._handle.update({"text/plain": self._text()}, raw=True)

    def finish(self, lines: list[str]) -> None:
        """Remove the bar and show `lines` in its place."""
        if self._tqdm is not None:
            self._tqdm.close()
        text = "\n".join(lines)
        if self._handle is not None:
            self._handle.update({"text/plain": text}, raw=True)
        elif text:
            print(text)

