"""The command line: parses, calls the Python API, prints. The only place that prints errors or exits.

One module per group of commands; each registers its commands on `cli`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable

import click

from .. import __version__
from ..errors import PrebakeError, UsageError

log = logging.getLogger("prebake")

_SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def _size(text: str) -> int:
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = cleaned[-1:] if cleaned[-1:] in _SIZE_UNITS else ""
    number = cleaned[: len(cleaned) - len(unit)]
    try:
        value = int(float(number) * _SIZE_UNITS[unit])
    except ValueError:
        value = 0
    if value <= 0:
        msg = f"--part-size {text!r} is not a size; write it like 64M or 1G"
        raise UsageError(msg)
    return value


def _pairs(values: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            msg = f"{option} {value!r} must look like NAME=VALUE"
            raise UsageError(msg)
        pairs.append((key, rest))
    return pairs


class _Echo(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"prebake: {record.levelname.lower()}: {record.getMessage()}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prebake")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors: no logs, bars or streamed output.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, quiet: bool) -> None:
    """Build a notebook's heavy environment once; restore it anywhere in seconds."""
    ctx.ensure_object(dict)
    handler = _Echo()
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.ERROR if quiet else logging.WARNING - 10 * verbose)
    log.propagate = False
    if quiet:  # the commands' own -q, as if given after them
        ctx.default_map = _quiet_map(cli)


def _quiet_map(group: click.Group) -> dict:
    return {name: _quiet_map(command) if isinstance(command, click.Group) else {"quiet": True}
            for name, command in group.commands.items()
            if isinstance(command, click.Group) or any(p.name == "quiet" for p in command.params)}


def _set_level(level: int) -> Callable[[click.Context, click.Parameter, object], None]:
    """A subcommand's -v (each one more verbose), -q or --debug: sets the log level as the group's do."""

    def callback(ctx: click.Context, param: click.Parameter, value: object) -> None:
        if value:
            log.setLevel(min(log.level, level - 10 * (int(value) - 1)) if level < logging.ERROR else level)

    return callback


def _accept_global_options(group: click.Group) -> None:
    """-v, -q and --debug work after the subcommand too (`prebake restore X -v`), as users type them."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_global_options(command)
            continue
        names = {opt for p in command.params for opt in getattr(p, "opts", ())}
        if "-v" not in names:
            command.params.append(click.Option(["-v", "--verbose"], count=True, expose_value=False,
                                               callback=_set_level(logging.INFO), help="More log output."))
        if "-q" not in names:
            command.params.append(click.Option(["-q", "--quiet"], is_flag=True, expose_value=False,
                                               callback=_set_level(logging.ERROR), help="Only errors."))
        if "--debug" not in names:
            command.params.append(click.Option(["--debug"], is_flag=True, expose_value=False,
                                               callback=_set_level(logging.DEBUG), help="Show tracebacks and debug logs."))


@cli.command("settings")
def settings_cmd() -> None:
    """The environment variables prebake reads, their defaults and what they do."""
    from ..settings import ALL

    for setting in ALL:
        current = os.environ.get(setting.variable)
        now = f" (now {current!r})" if current else ""
        click.echo(f"{setting.variable}={setting.default}{now}\n    {setting.meaning}")


LEAVES_NOTHING_OPEN = "leaves nothing open"
"""Set in the context's obj by a command that, once it succeeded, has closed its files and joined its
workers: the `prebake` program may then leave without the interpreter's teardown."""


def _status(argv: list[str] | None, done: dict) -> int:
    """Run one command; its exit status (errors printed as one line)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="prebake", standalone_mode=False, obj=done)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return 2
    except click.Abort:
        click.echo("prebake: interrupted", err=True)
        return 130
    except PrebakeError as e:
        if debug:
            if e.cause is not None:
                traceback.print_exception(e.cause)
            traceback.print_exception(e)
        click.echo(f"prebake: error: {e.cli_message()}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("prebake: interrupted; run the same command again to resume", err=True)
        return 130
    return 0


def main(argv: list[str] | None = None) -> None:
    """`prebake ARGS` in this process; exits (SystemExit) with the command's status."""
    sys.exit(_status(argv, {}))


def program() -> None:
    """The `prebake` program (its console script, `python -m prebake`): main(), then, after a command
    that leaves nothing open, an exit without the interpreter's teardown (freeing every module's
    objects took 20-70 ms after a 0.4 s restore, measured from its last line to the process's end).
    Not for main(), which may run inside a caller's process (the tests do). atexit handlers do not
    run either (a coverage run started from sitecustomize loses a restore's data)."""
    done: dict = {}
    status = _status(None, done)
    alive = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if status == 0 and done.get(LEAVES_NOTHING_OPEN) and not alive and _flushed(sys.stdout, sys.stderr):
        os._exit(0)
    sys.exit(status)


def _flushed(*streams) -> bool:
    """Whether every stream that is open took its buffered output (a closed descriptor leaves
    Python None for it); a failed flush is left to the normal exit, which reports it as Python does."""
    try:
        for stream in streams:
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return False
    return True


from . import (
    _build,  # noqa: E402,F401  (registers its commands)
    _doctor,  # noqa: E402,F401  (registers its commands)
    _notebook,  # noqa: E402,F401  (registers its commands)
    _pack,  # noqa: E402,F401  (registers its commands)
    _push,  # noqa: E402,F401  (registers its commands)
)

_accept_global_options(cli)
