"""pack, restore, verify, inspect, lock: the pack format and the loader."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from ..manifest import Env
from . import LEAVES_NOTHING_OPEN, _pairs, _size, cli


@cli.command("pack")
@click.argument("src", type=click.Path(path_type=Path), required=False)
@click.option("--conda", "conda_env", type=click.Path(path_type=Path), metavar="PREFIX",
              help="Pack the conda environment at PREFIX (instead of SRC): it restores at --to or any prefix its binaries have room for.")
@click.option("--to", "target", required=True, help="Absolute path the tree restores to.")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Pack folder to write.")
@click.option("--name", help="Pack name (default: the target's last component).")
@click.option("--version", "version", default="0", show_default=True, help="Pack version.")
@click.option("--level", type=click.IntRange(1, 22), default=None, help="zstd level (default 9; 19 for releases).")
@click.option("--part-size", default="64M", show_default=True, help="Tar bytes a part aims at, before compression (parts of compressible trees pack smaller).")
@click.option("--platform", "platform_mode", type=click.Choice(["none", "auto"]), default="none", show_default=True,
              help="auto records this runtime (OS, arch, Python, glibc) as the one the pack needs.")
@click.option("--prepend", multiple=True, metavar="VAR=PATH", help="Prepend PATH to VAR after restore (PATH, PYTHONPATH, ...).")
@click.option("--set", "set_vars", multiple=True, metavar="VAR=VALUE", help="Set VAR after restore.")
@click.option("--check", help="Command that proves the restored pack works.")
def pack_cmd(src: Path | None, conda_env: Path | None, target: str, out: Path, name: str | None, version: str, level: int | None, part_size: str,
             platform_mode: str, prepend: tuple[str, ...], set_vars: tuple[str, ...], check: str | None) -> None:
    """Pack the tree under SRC (or the conda environment at --conda PREFIX) so that it restores to --to."""
    from ..pack import DEFAULT_LEVEL, PackOptions, pack_tree
    from ..runtime import current_platform

    if (src is None) == (conda_env is None):
        msg = "pass either SRC (a folder to pack) or --conda PREFIX (a conda environment), not both or neither"
        raise UsageError(msg)

    prepends: dict[str, tuple[str, ...]] = {}
    for var, path in _pairs(prepend, "--prepend"):
        prepends[var] = (*prepends.get(var, ()), path)
    options = PackOptions(
        name=name or Path(target).name or "pack",
        version=version,
        target=target,
        level=level or DEFAULT_LEVEL,
        part_size=_size(part_size),
        platform=current_platform() if platform_mode == "auto" else None,
        env=Env(prepend=prepends, set=dict(_pairs(set_vars, "--set"))),
        check=check,
    )
    if conda_env is not None:
        from ..conda import pack_conda

        manifest = pack_conda(conda_env, out, options)
    else:
        manifest = pack_tree(src, out, options)
    stats = manifest.stats
    click.echo(
        f"packed {manifest.name} {manifest.version}: {stats['members']:,} entries, "
        f"{stats['bytes'] / 2**20:.1f} MiB -> {stats['packed_bytes'] / 2**20:.1f} MiB in {len(manifest.parts)} part(s)\n"
        f"{out / 'manifest.json'}  {manifest.digest}"
    )


@cli.command("restore")
@click.argument("source", required=False)
@click.option("--root", type=click.Path(path_type=Path), default=Path("/"), show_default=True,
              help="Place everything under this folder instead of /.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=None, help="Parts restored at once (default: one per core, 2-4; twice that from a network store).")
@click.option("--force", is_flag=True, help="Restore even if the pack was built for another platform.")
@click.option("--allow-setuid", is_flag=True, help="Keep setuid/setgid bits.")
@click.option("--allow-env", multiple=True, metavar="VAR",
              help="Let the pack set VAR although it is on the deny list (LD_PRELOAD, proxies, ...).")
@click.option("--no-wait", is_flag=True, help="Fail (exit 8) instead of waiting when another restore holds the root.")
@click.option("--prefix", metavar="DIR", help="Restore a conda environment pack at DIR instead of the folder it was packed for.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def restore_cmd(source: str | None, root: Path, jobs: int | None, force: bool, allow_setuid: bool, allow_env: tuple[str, ...],
                no_wait: bool, prefix: str | None, quiet: bool) -> None:
    """Restore a pack folder, a pack URL or every pack of a lock file (default: ./prebake.lock)."""
    from ..restore import RestoreOptions, restore

    if source is None:
        if not Path("prebake.lock").is_file():
            msg = "no SOURCE given and no prebake.lock here: pass a lock, a pack folder or a pack URL"
            raise UsageError(msg)
        source = "prebake.lock"
    options = RestoreOptions(root=root.absolute(), jobs=jobs or 0, force=force, allow_setuid=allow_setuid,
                             progress=False if quiet else None, allow_env=allow_env, wait=not no_wait, prefix=prefix)
    results = restore(source, options)
    if not results.shown:  # -q: no bar, and the summary lines are ours to print
        for result in results:
            click.echo(result.summary())
    click.get_current_context().obj[LEAVES_NOTHING_OPEN] = True  # its pool is joined, its files closed


@cli.command("verify")
@click.argument("source")
@click.option("--installed", is_flag=True, help="Check the restored files under --root instead of the pack's parts.")
@click.option("--root", type=click.Path(path_type=Path), default=Path("/"), show_default=True)
def verify_cmd(source: str, installed: bool, root: Path) -> None:
    """Check a pack (sizes, sha256) or, with --installed, a restored tree against it."""
    from ..errors import IntegrityError
    from ..locate import open_pack
    from ..verify import verify_installed, verify_parts

    pack = open_pack(source)
    problems = verify_installed(pack, root.absolute()) if installed else verify_parts(pack)
    what = f"restored files of {pack.manifest.name} under {root}" if installed else f"{len(pack.manifest.parts)} part(s) of {pack.manifest.name}"
    if problems:
        for problem in problems[:50]:
            click.echo(str(problem), err=True)
        msg = f"{len(problems)} problem(s) in the {what}"
        raise IntegrityError(msg)
    click.echo(f"ok: the {what} match {pack.digest}")


@cli.command("inspect")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def inspect_cmd(source: str, as_json: bool) -> None:
    """Show a pack's name, version, platform, parts, sizes and file count; for a lock, its variants."""
    from ..locate import is_lock, lock_matrix, open_pack

    if is_lock(source) and not as_json:
        click.echo("\n".join(lock_matrix(source)))
        return
    pack = open_pack(source)
    manifest = pack.manifest
    if as_json:
        click.echo(manifest.dumps().decode(), nl=False)
        return
    stats = manifest.stats
    platform = manifest.platform
    facts = ", ".join(f"{k} {v}" for k, v in vars(platform).items() if v) if platform else "any (data only)"
    lines = [
        f"{manifest.name} {manifest.version}  {pack.digest}",
        f"  target    {manifest.target}   prefixes: {', '.join(manifest.prefixes)}",
        f"  platform  {facts}",
        f"  contents  {stats.get('files', 0):,} files, {stats.get('dirs', 0):,} dirs, {stats.get('symlinks', 0):,} symlinks, "
        f"{stats.get('hardlinks', 0):,} hard links; {stats.get('bytes', 0) / 2**20:.1f} MiB",
        f"  packed    {manifest.packed_size / 2**20:.1f} MiB in {len(manifest.parts)} part(s)",
    ]
    lines += [f"    {p.name}  {p.size / 2**20:8.1f} MiB  {p.members:6,} entries  sha256 {p.sha256[:16]}" for p in manifest.parts]
    env = [f"{k}+={':'.join(v)}" for k, v in manifest.env.prepend.items()] + [f"{k}={v}" for k, v in manifest.env.set.items()]
    if env:
        lines.append(f"  env       {' '.join(env)}")
    if manifest.check:
        lines.append(f"  check     {manifest.check}")
    if manifest.conda is not None:
        conda = manifest.conda
        moves = f"moves to any prefix up to {conda.longest_prefix or 'any length'} bytes" if not conda.pinned else f"pinned: {conda.pinned}"
        lines.append(f"  conda     python {conda.python or 'none'}; {len(conda.text)} text and {len(conda.binary)} binary prefix files; {moves}")
    if manifest.whiteouts:
        lines.append(f"  removes   {len(manifest.whiteouts)} path(s)")
    click.echo("\n".join(lines))


@cli.command("lock")
@click.argument("packs", nargs=-1, required=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("prebake.lock"), show_default=True)
def lock_cmd(packs: tuple[str, ...], out: Path) -> None:
    """Write (or update) a lock file pinning PACKS by digest, with their locations."""
    from ..locate import open_pack
    from ..lock import LockedPack, write_lock

    entries = []
    for source in packs:
        pack = open_pack(source)
        location = source if "://" in source else str(Path(source.removesuffix("manifest.json") or ".").resolve())
        entries.append(LockedPack.pinning(pack.manifest, pack.digest, (location,)))
    lock = write_lock(out, entries)
    click.echo(f"wrote {out}: " + ", ".join(f"{p.name} {p.version}" for p in lock.packs))
