"""doctor: this runtime against a lock's packs."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import PlatformMismatch
from . import cli


@cli.command("doctor")
@click.argument("lock", default="prebake.lock")
@click.option("--root", type=click.Path(path_type=Path), default=Path("/"), show_default=True,
              help="Where the packs would be restored (their install markers say which are restored already).")
def doctor_cmd(lock: str, root: Path) -> None:
    """This runtime's facts against every pack of LOCK (default: ./prebake.lock): which restore here,
    which need a build for this runtime (and the command), which are restored already. Exits 0 when
    every pack has a variant for this runtime, 6 when some have none."""
    from ..doctor import doctor

    diagnosis = doctor(lock, root.absolute())
    click.echo("\n".join(diagnosis.lines()))
    if not diagnosis.ok:
        msg = f"no variant for this runtime of {', '.join(diagnosis.missing)} in {lock}; build one with the command above"
        raise PlatformMismatch(msg)
