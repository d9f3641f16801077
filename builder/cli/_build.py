"""build, check, image build, image capture: the builder's commands."""

from __future__ import annotations

import dataclasses
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import settings
from ..errors import UsageError
from . import _size, cli

if TYPE_CHECKING:
    from ..bake import BuildOptions
    from ..recipe import Recipe


def _echo_line(line: str) -> None:
    click.echo(f"    {line}", err=True)


def _echo_note(text: str) -> None:
    click.echo(f"==> {text}", err=True)


def resolve_backend(backend: str | None) -> str | None:
    """--backend as given; unset in Colab, where no Docker engine runs, the scan backend, said in one note."""
    from ..capture.scan import in_colab

    if backend is None and in_colab():
        _echo_note("in Colab: building in this runtime with the scan backend (--backend docker to use a Docker engine)")
        return "scan"
    return backend


def runtime_builds(recipes: list[Recipe], runtimes: tuple[str, ...], options: BuildOptions) -> list[tuple[list[Recipe], BuildOptions]]:
    """The builds `--runtime` asks for: the recipes once per runtime of images/, each with that
    runtime instead of its own, into OUT/RUNTIME (so OUT/RUNTIME/NAME); without --runtime, the
    recipes as they are, into OUT. The scan backend builds in this runtime only, so it takes none."""
    if not runtimes:
        return [(recipes, options)]
    from ..mirror import load_runtime

    scanned = [r.name for r in recipes if r.backend == "scan"]
    if scanned:
        msg = (f"--runtime picks the mirror image of a docker build, and {', '.join(scanned)} build with the scan backend, "
               "in this runtime: drop --runtime, or build with --backend docker where a Docker engine runs")
        raise UsageError(msg)
    runtimes = tuple(dict.fromkeys(runtimes))
    for runtime in runtimes:
        load_runtime(runtime)  # an unknown one fails before any build, naming the known ones
    return [([dataclasses.replace(r, runtime=runtime) for r in recipes], dataclasses.replace(options, out=options.out / runtime))
            for runtime in runtimes]


@cli.command("build")
@click.argument("recipes", nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Folder for the packs (one OUT/NAME per recipe).")
@click.option("--runtime", "runtimes", multiple=True, metavar="RUNTIME",
              help="Build for this runtime of images/ instead of each recipe's own, into OUT/RUNTIME/NAME; "
                   "repeat for one pack per runtime (push them to one lock: the restore picks the one that fits).")
@click.option("--base-image", help="Image the mirror is built FROM (default: the runtime's Ubuntu release).")
@click.option("--python", help="Python version to use when the base image lacks the runtime's (e.g. 3.11).")
@click.option("--no-pins", is_flag=True, help="Do not install the runtime's pinned wheels in the mirror image (they still constrain pip).")
@click.option("--gpu", is_flag=True, help="Use the runtime's GPU pins (torch, ...).")
@click.option("--backend", type=click.Choice(["docker", "scan"]), default=None,
              help="Override the recipes' backend: scan builds in this runtime without a container (the default in Colab).")
@click.option("--force", is_flag=True, help="Rebuild even if the recipe and the image did not change.")
@click.option("--no-check", is_flag=True, help="Do not run the recipe's check after the build.")
@click.option("--check-image", help="Image for the check (default: the mirror image; scan builds check only with this).")
@click.option("--level", type=click.IntRange(1, 22), default=None, help="zstd level (default 9; 19 for releases).")
@click.option("--part-size", default="64M", show_default=True, help="Target compressed size of a part.")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the steps' output.")
def build_cmd(recipes: tuple[str, ...], out: Path, runtimes: tuple[str, ...], base_image: str | None, python: str | None,
              no_pins: bool, gpu: bool, backend: str | None, force: bool, no_check: bool, check_image: str | None,
              level: int | None, part_size: str, quiet: bool) -> None:
    """Run RECIPES and pack what their install steps changed. A recipe is a file, a folder holding
    pack.toml, or the name of a shipped recipe (`prebake recipes` lists them)."""
    from ..bake import BuildOptions, build
    from ..pack import DEFAULT_LEVEL
    from ..recipe import load
    from ..shipped import recipe_path

    loaded = [load(recipe_path(spec)) for spec in recipes]
    backend = resolve_backend(backend)
    if backend:
        loaded = [dataclasses.replace(r, backend=backend) for r in loaded]
    options = BuildOptions(
        out=out, base_image=base_image, python=python, install_pins=not no_pins, gpu=gpu, force=force,
        check=not no_check, check_image=check_image, level=level or DEFAULT_LEVEL, part_size=_size(part_size),
        on_line=None if quiet else _echo_line, on_note=_echo_note,
    )
    for recipes_for, options_for in runtime_builds(loaded, runtimes, options):
        for result in build(recipes_for, options_for):
            click.echo(result.summary())


@cli.command("recipes")
def recipes_cmd() -> None:
    """List the recipes prebake ships; build one by name: `prebake build NAME -o packs`."""
    from ..shipped import shipped_recipes

    found = shipped_recipes()
    width = max((len(r.name) for r in found), default=0)
    for recipe in found:
        click.echo(f"{recipe.name:<{width}}  {recipe.summary}")


@cli.command("check")
@click.argument("pack", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--image", required=True, help="Image to restore the pack into (a fresh container of it).")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the check's output.")
def check_cmd(pack: Path, image: str, quiet: bool) -> None:
    """Restore PACK into a fresh container of IMAGE and run the pack's check command there."""
    from ..bake import run_check
    from ..capture import docker as backend

    with closing(backend.client()) as engine:
        seconds = run_check(engine, pack, image, on_line=None if quiet else _echo_line)
    click.echo(f"ok: the check of {pack} passed in a fresh container of {image} ({seconds:.1f} s)")


@cli.group("image")
def image_group() -> None:
    """The Colab-mirror build image."""


@image_group.command("build")
@click.option("--runtime", default=settings.RUNTIME.get, show_default=settings.RUNTIME.default, help=f"A runtime of images/ (${settings.RUNTIME.variable} sets the default).")
@click.option("--base-image", help="Image to build FROM (default: the runtime's Ubuntu release).")
@click.option("--python", help="Python version to use when the base image lacks the runtime's.")
@click.option("--no-pins", is_flag=True, help="Do not install the pinned wheels (they still constrain pip).")
@click.option("--gpu", is_flag=True, help="Use the runtime's GPU pins.")
@click.option("--rebuild", is_flag=True, help="Build even if the tag exists.")
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the image build's output.")
def image_build_cmd(runtime: str, base_image: str | None, python: str | None, no_pins: bool, gpu: bool, rebuild: bool,
                    quiet: bool) -> None:
    """Build and tag the mirror image of a Colab runtime (cached by tag)."""
    from ..capture import docker as backend
    from ..mirror import ensure_image, load_runtime, plan_image

    facts = load_runtime(runtime)
    plan = plan_image(facts, base_image=base_image, python=python, install_pins=not no_pins, gpu=gpu)
    with closing(backend.client()) as engine:
        tag, image, built = ensure_image(engine, facts, plan, rebuild=rebuild, on_line=None if quiet else _echo_line)
    click.echo(f"{'built' if built else 'up to date:'} {tag} {image[:19]}")


@image_group.command("capture")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Folder to write runtime.toml into.")
@click.option("--name", help="Runtime name (default: the folder's name).")
def image_capture_cmd(out: Path, name: str | None) -> None:
    """Write the facts of the runtime this runs in (OS, Python, CUDA, pins) as OUT/runtime.toml."""
    from .._fs import atomic_write
    from ..mirror import capture_facts

    text = capture_facts(name or out.resolve().name)
    atomic_write(out / "runtime.toml", text.encode())
    click.echo(f"wrote {out / 'runtime.toml'}")
