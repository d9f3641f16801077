"""push: upload packs to Google Drive, a folder or an fsspec URL, and pin them in a lock."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from . import cli


@cli.command("push")
@click.argument("packs", nargs=-1, required=True)
@click.option("--to", "dests", multiple=True, required=True, metavar="DEST",
              help="gdrive://FOLDER_ID or a Drive folder link, a folder, or an fsspec URL (s3://..., gs://...), where packs "
                   "go to DEST/parts, shared by every pack and release pushed there; repeat for mirrors (restores try "
                   "them in this order).")
@click.option("-o", "--lock", "lock_path", type=click.Path(path_type=Path), default=Path("prebake.lock"),
              show_default=True, help="Lock file to write or update with the pushed locations.")
@click.option("--no-lock", is_flag=True, help="Do not write a lock file.")
@click.option("--public", is_flag=True, help="Share each pack's Drive folder as 'Anyone with the link' (restores need no credentials); "
              "on S3 or GCS, pin the prefix's public https URL (make the prefix public on the bucket first).")
@click.option("--presign", metavar="DURATION", default=None,
              help="S3 or GCS: pin presigned https URLs valid for DURATION (like 3600, 12h or 7d; at most 7d), so the lock "
                   "restores with no SDK and no credentials until then.")
@click.option("--credentials", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Drive credentials: a service-account or OAuth token JSON file (default: $PREBAKE_GDRIVE_CREDENTIALS; 'colab' in Colab).")
def push_cmd(packs: tuple[str, ...], dests: tuple[str, ...], lock_path: Path, no_lock: bool, public: bool,
             presign: str | None, credentials: Path | None) -> None:
    """Upload PACKS (pack folders) to every --to destination and pin them in a lock.

    Parts already at a destination (same sha256) are not uploaded again, and nothing there is
    overwritten: every lock written for it keeps restoring. Drive uploads resume where a dropped
    connection left them. Service accounts have no Drive storage of their own:
    push into a folder on a shared drive that the service account can write to.
    """
    from ..push import push
    from ..stores import is_drive

    creds = None
    if credentials is not None and any(is_drive(d) for d in dests):
        from ..stores.gdrive import WRITE_SCOPES, load_credentials

        creds = load_credentials(str(credentials), WRITE_SCOPES)
    results = push(list(packs), list(dests), None if no_lock else lock_path, public=public,
                   presign=None if presign is None else _seconds(presign), credentials=creds)
    for result in results:
        click.echo(result.summary())
    if not no_lock:
        click.echo(f"wrote {lock_path}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(duration: str) -> int:
    """'3600', '90m', '12h' or '7d' in seconds."""
    text = duration.strip().lower()
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    if not number.isdigit():
        msg = f"--presign {duration!r}: give a duration like 3600, 90m, 12h or 7d"
        raise UsageError(msg)
    return int(number) * _UNITS[unit]
