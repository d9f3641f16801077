"""notebook, bench: from a v0 notebook to a recipe and a v1 notebook, and the time it saves."""

from __future__ import annotations

from pathlib import Path

import click

from .. import settings
from ..errors import UsageError
from . import cli
from ._build import resolve_backend


def _echo_line(line: str) -> None:
    click.echo(f"    {line}", err=True)


def _echo_note(text: str) -> None:
    click.echo(f"==> {text}", err=True)


def _build_options(f):
    for option in reversed([
        click.option("--base-image", help="Image the mirror is built FROM (default: the runtime's Ubuntu release)."),
        click.option("--python", help="Python version to use when the base image lacks the runtime's (e.g. 3.11)."),
        click.option("--no-pins", is_flag=True, help="Do not install the runtime's pinned wheels in the mirror image."),
        click.option("-q", "--quiet", is_flag=True, help="Do not stream the steps' output."),
    ]):
        f = option(f)
    return f


def _recipe_options(f):
    for option in reversed([
        click.option("--name", help="Pack name (default: from the notebook's file name)."),
        click.option("--runtime", default=settings.RUNTIME.get, show_default=settings.RUNTIME.default, help=f"A runtime of images/ (${settings.RUNTIME.variable} sets the default)."),
        click.option("--prepare", multiple=True,
                     help="A prepare step (run before the setup, not packed): what Colab has and the mirror lacks."),
        click.option("--check", help="A check command for the recipe (run after a restore into a fresh container)."),
        click.option("--root", "roots", multiple=True, help="Capture root (repeatable; default: /usr /opt /etc /var/lib/dpkg /root /content)."),
    ]):
        f = option(f)
    return f


def convert_notebook(notebook: Path, name: str | None, runtime: str, prepare: tuple[str, ...], check: str | None,
                     roots: tuple[str, ...], source: str):
    from .. import notebook as nbmod

    nb = nbmod.read(notebook)
    kwargs = {"roots": roots} if roots else {}
    return nbmod.convert(nb, name=name or nbmod.slug(notebook.stem), source_label=notebook.name, runtime=runtime,
                         restore_source=source, prepare=prepare, check=check, **kwargs)


def build_packs(recipe_paths: list[Path], packs: Path, base_image: str | None, python: str | None, no_pins: bool, quiet: bool,
                backend: str | None = None):
    """Build the recipes a conversion wrote (pack.toml, and conda.toml for a conda environment)."""
    import dataclasses

    from ..bake import BuildOptions, build
    from ..recipe import load

    recipes = [load(path) for path in recipe_paths]
    if backend:
        recipes = [dataclasses.replace(recipe, backend=backend) for recipe in recipes]
    options = BuildOptions(out=packs, base_image=base_image, python=python, install_pins=not no_pins,
                           on_line=None if quiet else _echo_line, on_note=_echo_note)
    return build(recipes, options)


def _require_notebook_extra() -> None:
    """bench draws its chart with matplotlib and runs notebooks with nbformat and nbclient: say so in
    one line before any work, not with a traceback at the end."""
    import importlib.util

    missing = [name for name in ("nbformat", "nbclient", "matplotlib") if importlib.util.find_spec(name) is None]
    if missing:
        msg = f"prebake bench needs the notebook extra ({', '.join(missing)} missing): pip install 'prebake[notebook]'"
        raise UsageError(msg)


@cli.command("notebook")
@click.argument("notebook", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("-o", "--out", type=click.Path(path_type=Path),
              help="Folder for pack.toml, setup.ipynb, run_setup.py, v1.ipynb and report.md (required unless --explain).")
@click.option("--source", default="prebake.lock", show_default=True,
              help="What v1's restore cell restores: a lock file, a pack folder or URL.")
@click.option("--build", "do_build", is_flag=True, help="Also build the pack into OUT/packs and write OUT/prebake.lock.")
@click.option("--explain", is_flag=True, help="Only print where every statement would go and why; write nothing.")
@click.option("--backend", type=click.Choice(["docker", "scan"]), default=None,
              help="With --build: scan builds in this runtime without a container (the default in Colab).")
@_recipe_options
@_build_options
def notebook_cmd(notebook: Path, out: Path | None, source: str, do_build: bool, explain: bool, backend: str | None, name: str | None,
                 runtime: str, prepare: tuple[str, ...], check: str | None, roots: tuple[str, ...],
                 base_image: str | None, python: str | None, no_pins: bool, quiet: bool) -> None:
    """Turn a v0 NOTEBOOK into OUT/pack.toml (its setup statements, run at build time as Colab runs
    them) and OUT/v1.ipynb (one restore cell; everything else kept); OUT/report.md says where every
    statement went and why."""
    from .. import notebook as nbmod

    conversion = convert_notebook(notebook, name, runtime, prepare, check, roots, source)
    click.echo(conversion.report())
    if explain:
        return
    if out is None:
        msg = "prebake notebook needs -o OUT, the folder to write the recipe and v1 into (or --explain to write nothing)"
        raise UsageError(msg)
    recipe_paths, v1_path = nbmod.write(conversion, out)
    click.echo(f"wrote {', '.join(map(str, recipe_paths))} ({len(conversion.built)} statements run at build time), "
               f"{out / 'report.md'} and {v1_path}")
    backend = resolve_backend(backend) if do_build else backend
    if do_build:
        from ..lock import LockedPack, write_lock
        from ..manifest import MANIFEST_NAME, loads

        results = build_packs(recipe_paths, out / "packs", base_image, python, no_pins, quiet, backend)
        entries = []
        for result in results:
            click.echo(result.summary())
            manifest = loads((result.pack / MANIFEST_NAME).read_bytes(), str(result.pack))
            entries.append(LockedPack.pinning(manifest, result.digest, (f"packs/{result.name}",)))
        write_lock(out / "prebake.lock", entries)
        folders = " ".join(str(result.pack) for result in results)
        click.echo(f"wrote {out / 'prebake.lock'}: push the packs with `prebake push {folders} --to DEST -o {out / 'prebake.lock'}`")


@cli.command("bench")
@click.argument("source", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path),
              help="Folder for bench.png, bench.json, bench.md (and, from a notebook, pack.toml, v1.ipynb, packs/).")
@click.option("--runs", type=click.IntRange(1, 50), default=3, show_default=True, help="v1 restore runs.")
@click.option("--v0-runs", type=click.IntRange(1, 50), default=None, help="v0 setup runs (default: --runs).")
@click.option("--pack", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Use this built pack instead of building SOURCE's (it must come from the same recipe).")
@_recipe_options
@_build_options
def bench_cmd(source: Path, out: Path, runs: int, v0_runs: int | None, pack: Path | None, name: str | None, runtime: str,
              prepare: tuple[str, ...], check: str | None, roots: tuple[str, ...], base_image: str | None,
              python: str | None, no_pins: bool, quiet: bool) -> None:
    """Measure SOURCE's setup (a v0 notebook or a recipe) from scratch against the restore of its pack.

    Both run in fresh containers of the mirror image, several times; writes a stacked bar chart
    (OUT/bench.png) and the numbers (OUT/bench.json, OUT/bench.md).
    """
    _require_notebook_extra()
    from .. import notebook as nbmod
    from ..benchmark import bench, write_report
    from ..recipe import load

    if source.suffix == ".ipynb":
        conversion = convert_notebook(source, name, runtime, prepare, check, roots, "prebake.lock")
        # The setup's own recipe: a conda environment's (conda.toml, if any) is not benched.
        recipe_path = nbmod.write(conversion, out)[0][0]
        click.echo(conversion.report())
    else:
        recipe_path = source
    recipe = load(recipe_path)
    if pack is None:
        [result] = build_packs([recipe_path], out / "packs", base_image, python, no_pins, quiet)
        click.echo(result.summary())
        pack = result.pack
    data = bench(recipe, pack, runs=runs, v0_runs=v0_runs, on_note=_echo_note, on_line=None if quiet else _echo_line)
    paths = write_report(data, out)
    v0, v1 = data["v0"]["median"], data["v1"]["median"]
    click.echo(f"v0 setup {v0['total']:.1f} s (runs: {', '.join(format(r['total'], '.1f') for r in data['v0']['runs'])}), "
               f"v1 restore {v1['total']:.2f} s (runs: {', '.join(format(r['total'], '.2f') for r in data['v1']['runs'])}): "
               f"{data['speedup']:.1f}x faster")
    click.echo(f"wrote {paths['png']}, {paths['json']}, {paths['md']}")
