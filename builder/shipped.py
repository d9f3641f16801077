"""What prebake ships for builds: the runtime facts (images/), the build image's Dockerfile and the
recipes of packs/, found inside the installed package (a wheel) or in the checkout an editable
install points at. Recipes build by name: `prebake build opensmile pose`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .errors import UsageError
from .recipe import RECIPE_FILE

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent
DOCKERFILE_NAME = "Dockerfile.colab-ubuntu"


def _folder(in_wheel: str, in_checkout: str) -> Path:
    """The wheel maps images/ and packs/ into the package (pyproject's package-dir); a checkout keeps
    them beside builder/."""
    installed = PACKAGE / in_wheel
    return installed if installed.is_dir() else CHECKOUT / in_checkout


def images_dir() -> Path:
    """Runtime facts, one folder per runtime; PREBAKE_IMAGES_DIR points at another set."""
    return Path(settings.IMAGES_DIR.get() or _folder("_images", "images"))


def dockerfile() -> Path:
    return _folder("_dockerfile", ".") / DOCKERFILE_NAME


def recipes_dir() -> Path:
    return _folder("_recipes", "packs")


@dataclass(frozen=True)
class ShippedRecipe:
    name: str
    path: Path
    summary: str  # the first phrase of the recipe file's opening comment


def shipped_recipes() -> list[ShippedRecipe]:
    """Every recipe of packs/: NAME.toml, NAME/pack.toml, and NAME/OTHER.toml as NAME-OTHER (for
    example opensmile/source.toml is `opensmile-source`)."""
    folder = recipes_dir()
    found: list[ShippedRecipe] = []
    for path in sorted(folder.glob("*.toml")) + sorted(folder.glob("*/*.toml")):
        if path.parent == folder:
            name = path.stem
        elif path.name == RECIPE_FILE:
            name = path.parent.name
        else:
            name = f"{path.parent.name}-{path.stem}"
        found.append(ShippedRecipe(name, path.parent if path.name == RECIPE_FILE else path, _summary(path.read_text())))
    return sorted(found, key=lambda r: r.name)


def _summary(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return re.split(r"[:.](?:\s|$)", " ".join(lines), maxsplit=1)[0].strip()


def recipe_path(spec: str | os.PathLike[str]) -> Path:
    """A recipe given as a path (a file, or a folder holding pack.toml) or as a shipped recipe's name.
    An existing path wins, so a user's own ./opensmile folder is theirs."""
    path = Path(spec)
    shipped = {r.name: r.path for r in shipped_recipes()}
    if path.is_dir() and not (path / RECIPE_FILE).is_file() and str(spec) in shipped:
        msg = (f"{path}/ here has no {RECIPE_FILE}, and it hides the shipped recipe {str(spec)!r}: "
               f"build that one from another folder, or pass {shipped[str(spec)]}")
        raise UsageError(msg)
    if path.exists():
        return path
    if str(spec) in shipped:
        return shipped[str(spec)]
    names = ", ".join(shipped) or "none"
    msg = f"recipe {str(spec)!r} is neither a file nor a shipped recipe; pass a path to a recipe, or one of: {names} (`prebake recipes` lists them)"
    raise UsageError(msg)
