"""Run a notebook's setup statements inside a build the way Colab runs cells: in one IPython shell,
so `!cmd`, `%pip`, `%cd`, `%env`, `%%bash`, `$var` and `{expr}` interpolation and the control flow
around them behave as they do in the notebook, with the variables earlier statements define.

    python3 run_setup.py setup.ipynb

`prebake notebook` writes setup.ipynb (one cell per statement, its v0 cell and line in the cell's
metadata) and ships this file next to it; it runs where prebake is not installed, so it uses the
standard library and IPython only. A setup statement that fails, or whose last shell command exits
non-zero, stops the build with one line naming the v0 cell and line; a definition that fails (an
import of something the build does not have) is reported and skipped. google.colab is replaced by a
stand-in whose user-facing calls (drive.mount, files.upload, ...) stop the build with that line.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import types

START_DIR = "/content"
IPYTHON_DIR = "/tmp/prebake-ipython"  # where the recipe's prepare installs IPython when the image has none
TIMING = "prebake-timing"  # `prebake-timing INDEX SECONDS` after each statement, for prebake bench


class NeedsUser(Exception):
    """A call that needs the person at the notebook; it cannot run in a build."""


def _needs_user(what: str):
    def call(*args, **kwargs):
        raise NeedsUser(f"{what} needs the user and cannot run at build time: move it after the setup, "
                        "or tag its cell prebake-keep")

    return call


def _no_op(attr: str):
    """Any other call (output.clear(), output.eval_js(), ...) does nothing, as nothing displays in a build."""
    if attr.startswith("__"):
        raise AttributeError(attr)
    return lambda *args, **kwargs: None


def install_colab_stand_in() -> None:
    """google.colab as a build sees it: importable, its user-facing calls refused in one line."""
    colab = types.ModuleType("google.colab")
    parts = {
        "drive": {"mount": "drive.mount()", "flush_and_unmount": "drive.flush_and_unmount()"},
        "files": {"upload": "files.upload()", "download": "files.download()"},
        "auth": {"authenticate_user": "auth.authenticate_user()"},
        "userdata": {"get": "userdata.get() (a Colab secret)"},
        "output": {},
        "widgets": {},
        "data_table": {},
    }
    for name, calls in parts.items():
        module = types.ModuleType(f"google.colab.{name}")
        for attr, what in calls.items():
            setattr(module, attr, _needs_user(what))
        module.__getattr__ = _no_op
        setattr(colab, name, module)
        sys.modules[f"google.colab.{name}"] = module
    sys.modules["google.colab"] = colab
    try:
        import google  # a namespace package when protobuf or google-auth is installed
    except ImportError:
        # An empty portion of the `google` namespace package: packages the setup installs later
        # (protobuf, google-auth) still join it, as its path is recomputed when sys.path changes.
        portion = tempfile.mkdtemp(prefix="prebake-colab-")
        os.mkdir(os.path.join(portion, "google"))
        sys.path.append(portion)
        import google
    google.colab = colab


class _Kernel:
    """What setup code asks of Colab's kernel: condacolab and `os.kill(os.getpid(), 9)` restart it
    to load what they installed; a build goes on in the same shell (the next statements' shell
    commands see the new files; a Python import of them may need the restart it cannot have)."""

    @staticmethod
    def do_shutdown(restart: bool = False) -> None:
        print("prebake: the setup asked for a kernel restart; the build goes on in the same shell", flush=True)


def _guard_process(shell) -> None:
    """The restart idiom must not kill the runner, and os.system's exit status counts like `!cmd`'s."""
    kill, system = os.kill, os.system

    def guarded_kill(pid: int, sig: int) -> None:
        if pid == os.getpid():
            return _Kernel.do_shutdown(restart=True)
        return kill(pid, sig)

    def counted_system(command: str) -> int:
        status = system(command)
        shell.user_ns["_exit_code"] = os.waitstatus_to_exitcode(status) if status >= 0 else status
        return status

    os.kill, os.system = guarded_kill, counted_system


def main(path: str) -> int:
    sys.path.append(IPYTHON_DIR)  # after the system's packages: the setup's own installs come first
    from IPython.core.interactiveshell import InteractiveShell

    with open(path, encoding="utf-8") as f:
        cells = json.load(f)["cells"]
    install_colab_stand_in()
    os.makedirs(START_DIR, exist_ok=True)
    os.chdir(START_DIR)
    shell = InteractiveShell.instance(colors="NoColor")
    shell.kernel = _Kernel()
    _guard_process(shell)
    for index, cell in enumerate(cells):
        where = cell["metadata"]["prebake"]
        label = f"cell {where['cell']} line {where['line']}"
        source = "".join(cell["source"])
        print(f"prebake: {label}: {source.splitlines()[0][:100]}", flush=True)
        shell.user_ns["_exit_code"] = 0
        started = time.perf_counter()
        result = shell.run_cell(source, store_history=False, silent=False)
        print(f"{TIMING} {index} {time.perf_counter() - started:.3f}", flush=True)
        error = result.error_before_exec or result.error_in_exec
        if isinstance(error, SystemExit) and error.code in (None, 0):
            error = None  # the setup ended its cell on purpose
        if error is None and where["kind"] == "setup" and shell.user_ns.get("_exit_code"):
            error = RuntimeError(f"a shell command exited with status {shell.user_ns['_exit_code']}")
        if error is None:
            continue
        text = f"{type(error).__name__}: {error}" if not isinstance(error, NeedsUser) else str(error)
        if where["kind"] != "setup":
            print(f"prebake: warning: {label} ({where['kind']}) failed at build time and is skipped: {text}", flush=True)
            continue
        print(f"prebake: {label} failed: {text}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
