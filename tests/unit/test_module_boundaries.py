"""The import rules that keep the restore path light and the modules from tangling."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import prebake
import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("docker", "googleapiclient", "pydrive2", "gdown", "fsspec", "httplib2", "google", "nbformat",
         "nbclient", "matplotlib", "conda_pack", "opensmile", "mediapipe", "numpy", "cv2", "torch")


PROJECT = {p.stem for p in (REPO / "builder").rglob("*.py")} | {"capture", "stores", "cli"}


def imported_names(module: str) -> set[str]:
    """The project modules a builder module imports (relative imports) and the top-level
    packages it imports (absolute imports): `http` the store and `http` the stdlib stay apart."""
    tree = ast.parse((REPO / "builder" / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            names.update(part for part in (node.module or "").split(".") if part in PROJECT)
            names.update(alias.name for alias in node.names if alias.name in PROJECT)
        elif isinstance(node, ast.ImportFrom):
            names.add(f"abs:{(node.module or '').split('.')[0]}")
        elif isinstance(node, ast.Import):
            names.update(f"abs:{alias.name.split('.')[0]}" for alias in node.names)
    return names


RULES = {
    "errors": ("manifest", "pack", "restore", "stores", "capture", "cli"),
    "manifest": ("stores", "pack", "restore", "capture", "cli"),
    "lock": ("capture", "pack", "stores", "cli"),
    "recipe": ("capture", "pack", "stores", "restore", "abs:docker", "abs:requests", "cli"),
    "pack": ("capture", "stores", "restore", "cli"),
    "extract": ("restore", "stores", "pack", "capture", "conda", "cli"),
    "restore": ("capture", "recipe", "pack", "bake", "notebook", "benchmark", "cli", "conda", "abs:docker", "abs:requests"),
    "relocate": ("conda", "pack", "restore", "stores", "capture", "cli", "abs:conda_pack"),
    "capture/__init__": ("pack", "stores", "restore", "cli"),
    "capture/docker": ("pack", "stores"),
    "capture/scan": ("docker", "abs:docker", "pack", "stores"),
    "stores/__init__": ("pack", "capture", "restore", "manifest"),
    "stores/local": ("http", "gdrive", "fsspec", "pack", "restore"),
    "stores/http": ("gdrive", "fsspec", "local", "pack", "restore"),
    "stores/gdrive": ("http", "fsspec", "local", "pack", "restore"),
    "stores/fsspec": ("http", "gdrive", "local", "pack", "restore"),
    "bake": ("cli",),
    "notebook": ("bake", "capture", "cli"),
    "benchmark": ("cli",),
}


@pytest.mark.parametrize("module", RULES, ids=list(RULES))
def test_module_imports_follow_the_map(module: str) -> None:
    assert not imported_names(module) & set(RULES[module])


def test_the_restore_path_loads_nothing_heavy() -> None:
    code = (
        "import sys, prebake, prebake.restore, prebake.cli, prebake.stores.http, prebake.stores.local\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_exported_names_are_the_public_api() -> None:
    public = {name for name in vars(prebake) if not name.startswith("_") and name != "annotations"}
    modules = {name for name in public if type(getattr(prebake, name)).__name__ == "module"}
    assert set(prebake.__all__) - {"__version__"} == public - modules


def test_every_variable_prebake_reads_is_one_documented_setting():
    """settings.py is the one place that reads PREBAKE_* variables, and the README lists them all."""
    from prebake import settings

    declared = {s.variable for s in settings.ALL}
    for path in (REPO / "builder").rglob("*.py"):
        if path.name == "settings.py":
            continue
        text = path.read_text()
        assert not re.search(r"environ(\.get\(|\[)\s*[\"']PREBAKE_", text), f"{path} reads a PREBAKE_ variable itself"
        named = set(re.findall(r"\bPREBAKE_[A-Z][A-Z_]*[A-Z]\b", text))
        assert named <= declared, f"{path} names {sorted(named - declared)}, which settings.py does not declare"
    assert settings.table() in (REPO / "README.md").read_text()


def test_what_the_notebook_command_imports_is_a_declared_dependency():
    """nbformat and IPython are what `prebake notebook` reads notebooks with: both must be installed
    by `pip install prebake` itself, not left to an extra."""
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in declared}
    tree = ast.parse((REPO / "builder" / "notebook.py").read_text())
    imported = {n.module.split(".")[0] if isinstance(n, ast.ImportFrom) else a.name.split(".")[0]
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and getattr(n, "level", 0) == 0
                for a in n.names}
    third_party = imported - set(sys.stdlib_module_names) - {"__future__"}
    assert {m.lower() for m in third_party} <= names, third_party
