"""Recipes (packs/NAME.toml): parse and validate into frozen dataclasses.

    name = "hello"                       # [a-z0-9][a-z0-9._-]*
    version = "2.10"
    runtime = "2026.07"                  # a folder of images/
    depends = ["base-tools"]             # packs built first, present in the build, not captured again
    secrets = ["HF_TOKEN"]               # host variables passed to the steps, never packed
    prepare = ["apt-get install -y gcc make"]          # run, not captured
    install = [                                        # run and captured
        "make -C /tmp/src install",
        { name = "wheel", run = "pip install --no-binary :all: markupsafe" },
    ]
    check = "hello --version"            # run after a restore into a fresh container

    [[fetch]]                            # after prepare, before install; captured if under a root
    url = "https://example.org/model.bin"
    sha256 = "..."
    dest = "/opt/models/model.bin"       # with unpack = true: the folder the archive unpacks into
    unpack = false

    [[file]]                             # a file shipped next to the recipe, copied in before install
    src = "pose_keypoints.py"            # relative to the recipe's folder (its content is in the digest)
    dest = "/opt/pose/bin/pose-keypoints"
    mode = "755"                         # default "644"

    [capture]
    roots = ["/usr/local", "/opt"]       # what a build may change and the pack may hold
    exclude = ["/usr/local/share/man"]   # glob patterns; a match excludes everything below it
    allow = []                           # files the secret scan would refuse but that are public

    [env]
    prepend = { PATH = ["/opt/hello/bin"] }
    set = { HELLO_HOME = "/opt/hello" }

    [conda]                              # a conda environment: the pack holds it (and only it)
    prefix = "/opt/envs/md"              # where it is built and restored (default /opt/envs/NAME)
    channels = ["conda-forge"]           # names or URLs (file:// for a local channel)
    packages = ["rdkit", "openmm=8.1"]   # match specs; python is held to the runtime's X.Y
    file = "environment.yml"             # optional, next to the recipe: its channels and dependencies are added

    [tool]                               # a tool with its own CPython: survives the runtime's Python bumps
    prefix = "/opt/pose"                 # PREFIX/python (a copy of the mirror's, with its libraries), PREFIX/venv

A recipe is a file (packs/NAME.toml) or a folder holding pack.toml and the files it ships
(packs/NAME/pack.toml); `load` accepts either. Every problem names the file and the field. The digest covers everything that changes what a
build produces (not the file's path, comments or layout).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import UsageError
from .manifest import SYSTEM_FOLDERS, Env
from .relocate import check_prefix

DEFAULT_ROOTS = ("/usr/local", "/opt")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RUNTIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_KEYS = {"name", "version", "runtime", "depends", "secrets", "prepare", "install", "fetch", "file", "capture", "env",
         "check", "backend", "description", "conda", "tool"}
_CONDA_KEYS = {"prefix", "channels", "packages", "file"}
RECIPE_FILE = "pack.toml"
_FETCH_KEYS = {"url", "sha256", "dest", "unpack", "mode"}
_FILE_KEYS = {"src", "dest", "mode"}
_CAPTURE_KEYS = {"roots", "exclude", "allow"}
_ENV_KEYS = {"prepend", "set"}
_STEP_KEYS = {"name", "run"}
_ARCHIVES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst", ".tar", ".zip")
BACKENDS = ("docker", "scan")
def conda_prefix(name: str) -> str:
    """Where recipe `name`'s conda environment is built and restored unless [conda] says otherwise."""
    return f"/opt/envs/{name}"


CONDA_WORK = "/tmp/prebake-conda"
"""Where a build keeps the conda tools, the package cache and an environment file (never packed)."""


@dataclass(frozen=True)
class Step:
    label: str
    run: str


@dataclass(frozen=True)
class Fetch:
    url: str
    sha256: str
    dest: str
    unpack: bool = False
    mode: int = 0o644

    @property
    def archive_kind(self) -> str:
        """'.tar.gz', '.zip', ... from the URL (only meaningful with unpack)."""
        path = self.url.split("?", 1)[0].lower()
        return next((suffix for suffix in _ARCHIVES if path.endswith(suffix)), "")


@dataclass(frozen=True)
class File:
    """A file shipped with the recipe: `src` as written (relative to the recipe's folder), its sha256
    (so the digest follows its content), and `path`, where it is on this machine (not in the digest)."""

    src: str
    dest: str
    sha256: str
    mode: int = 0o644
    path: str = ""


@dataclass(frozen=True)
class Conda:
    """The conda environment a recipe builds (created before the install steps, which may use it)."""

    prefix: str
    channels: tuple[str, ...] = ("conda-forge",)
    packages: tuple[str, ...] = ()
    file: File | None = None


@dataclass(frozen=True)
class Tool:
    """A tool pack's own interpreter: the mirror's CPython copied to PREFIX/python (with the libraries it
    loads beyond glibc) and a virtualenv PREFIX/venv made with it, before the install steps."""

    prefix: str


@dataclass(frozen=True)
class Recipe:
    name: str
    version: str
    runtime: str
    prepare: tuple[Step, ...] = ()
    install: tuple[Step, ...] = ()
    fetches: tuple[Fetch, ...] = ()
    files: tuple[File, ...] = ()
    roots: tuple[str, ...] = DEFAULT_ROOTS
    excludes: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    env: Env = field(default_factory=Env)
    check: str | None = None
    depends: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    backend: str = "docker"
    conda: Conda | None = None
    tool: Tool | None = None
    source: str = "<recipe>"

    @property
    def digest(self) -> str:
        """sha256 over what changes the build's result (the recipe's path and description do not)."""
        data = asdict(self)
        data.pop("source")
        for item in data["files"]:
            item.pop("path")
        for optional in ("conda", "tool"):  # recipes without them keep the digests they had
            if data[optional] is None:
                del data[optional]
        if data.get("conda") and data["conda"]["file"] is not None:
            data["conda"]["file"].pop("path")
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=list)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- parsing


def _load_toml(text: str, source: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomlkit

        try:
            return tomlkit.parse(text).unwrap()
        except Exception as e:  # tomlkit raises several unrelated types
            msg = f"{source} is not valid TOML: {e}"
            raise UsageError(msg) from e
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = f"{source} is not valid TOML: {e}"
        raise UsageError(msg) from e


def load(path: Path) -> Recipe:
    """A recipe file, or a folder holding pack.toml; [[file]] sources are read from its folder."""
    if path.is_dir():
        path = path / RECIPE_FILE
    try:
        text = path.read_text()
    except OSError as e:
        msg = f"cannot read recipe {path}: {e.strerror or e}"
        raise UsageError(msg) from e
    return parse(text, str(path), base=path.parent)


def parse(text: str, source: str = "<recipe>", *, base: Path | None = None) -> Recipe:
    """`base` is the folder [[file]] sources are relative to (the current directory if None)."""
    return from_dict(_load_toml(text, source), source, base=base)


class _Fields:
    """Reads typed fields out of one table, each error naming `source` and the field's path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> UsageError:
        return UsageError(f"{self.source}: {where}: {problem}")

    def unknown(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        extra = sorted(set(table) - allowed)
        if extra:
            prefix = f"{where}." if where else ""
            raise self.fail(f"{prefix}{extra[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def string(self, value: Any, where: str, *, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"must be a non-empty string{hint and ' ' + hint}, not {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, f"{value!r} is not valid{hint and ' (' + hint + ')'}")
        return value

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(where, f"must be a list of strings, not {value!r}")
        return tuple(self.string(item, f"{where}[{i}]") for i, item in enumerate(value))

    def abspath(self, value: Any, where: str) -> str:
        text = self.string(value, where)
        path = PurePosixPath(text)
        if not path.is_absolute() or ".." in path.parts or path == PurePosixPath("/"):
            raise self.fail(where, f"{text!r} must be an absolute path below / without '..'")
        return str(path)

    def table(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table, not {value!r}")
        return value


def _steps(f: _Fields, value: Any, phase: str) -> tuple[Step, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise f.fail(phase, "must be a list of commands (strings or tables with run = ...)")
    steps = []
    for i, item in enumerate(value):
        where = f"{phase}[{i}]"
        if isinstance(item, dict):
            f.unknown(item, _STEP_KEYS, where)
            run = f.string(item.get("run"), f"{where}.run", hint="(the shell command)")
            label = f"{phase}[{i}] {f.string(item['name'], f'{where}.name')}" if "name" in item else where
        else:
            run = f.string(item, where, hint="(a shell command)")
            label = where
        steps.append(Step(label, run))
    return tuple(steps)


def _mode(f: _Fields, item: dict, where: str) -> int:
    """A [[fetch]] or [[file]] entry's `mode`: an octal string, 644 when absent."""
    mode = item.get("mode", "644")
    if not isinstance(mode, str) or not re.match(r"^[0-7]{3,4}$", mode):
        raise f.fail(f"{where}.mode", f"must be an octal string like \"755\", not {mode!r}")
    return int(mode, 8)


def _fetches(f: _Fields, value: Any) -> tuple[Fetch, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise f.fail("fetch", "must be an array of tables ([[fetch]] with url, sha256, dest)")
    fetches = []
    for i, item in enumerate(value):
        where = f"fetch[{i}]"
        item = f.table(item, where)
        f.unknown(item, _FETCH_KEYS, where)
        url = f.string(item.get("url"), f"{where}.url")
        if not url.startswith(("http://", "https://", "file://")):
            raise f.fail(f"{where}.url", f"{url!r} must be an http://, https:// or file:// URL")
        sha = f.string(item.get("sha256"), f"{where}.sha256", hint="(64 hex digits)").lower().removeprefix("sha256:")
        if not _SHA256.match(sha):
            raise f.fail(f"{where}.sha256", f"{item['sha256']!r} is not a sha256 (64 hex digits)")
        dest = f.abspath(item.get("dest"), f"{where}.dest")
        unpack = item.get("unpack", False)
        if not isinstance(unpack, bool):
            raise f.fail(f"{where}.unpack", f"must be true or false, not {unpack!r}")
        fetch = Fetch(url, sha, dest, unpack, _mode(f, item, where))
        if unpack and not fetch.archive_kind:
            raise f.fail(f"{where}.unpack", f"cannot tell the archive type of {url!r} (known: {', '.join(_ARCHIVES)})")
        fetches.append(fetch)
    return tuple(fetches)


def _files(f: _Fields, value: Any, base: Path) -> tuple[File, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise f.fail("file", "must be an array of tables ([[file]] with src, dest)")
    files = []
    for i, item in enumerate(value):
        where = f"file[{i}]"
        item = f.table(item, where)
        f.unknown(item, _FILE_KEYS, where)
        src = f.string(item.get("src"), f"{where}.src", hint="(a path relative to the recipe's folder)")
        if PurePosixPath(src).is_absolute() or ".." in PurePosixPath(src).parts:
            raise f.fail(f"{where}.src", f"{src!r} must be a relative path inside the recipe's folder")
        dest = f.abspath(item.get("dest"), f"{where}.dest")
        mode = _mode(f, item, where)
        path = base / src
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as e:
            raise f.fail(f"{where}.src", f"cannot read {path}: {e.strerror or e}") from e
        files.append(File(src, dest, digest, mode, str(path.resolve())))
    return tuple(files)


def _env(f: _Fields, value: Any) -> Env:
    if value is None:
        return Env()
    value = f.table(value, "env")
    f.unknown(value, _ENV_KEYS, "env")
    prepend: dict[str, tuple[str, ...]] = {}
    for var, paths in f.table(value.get("prepend", {}), "env.prepend").items():
        if not _ENV_NAME.match(var):
            raise f.fail(f"env.prepend.{var}", "is not a valid variable name")
        if isinstance(paths, str):
            paths = [paths]
        prepend[var] = tuple(f.abspath(p, f"env.prepend.{var}[{i}]") for i, p in enumerate(paths))
    set_vars: dict[str, str] = {}
    for var, text in f.table(value.get("set", {}), "env.set").items():
        if not _ENV_NAME.match(var):
            raise f.fail(f"env.set.{var}", "is not a valid variable name")
        if not isinstance(text, str):
            raise f.fail(f"env.set.{var}", f"must be a string, not {text!r}")
        set_vars[var] = text
    return Env(prepend=prepend, set=set_vars)


def _conda(f: _Fields, value: Any, name: str, base: Path) -> Conda | None:
    if value is None:
        return None
    table = f.table(value, "conda")
    f.unknown(table, _CONDA_KEYS, "conda")
    prefix = f.abspath(table.get("prefix", conda_prefix(name)), "conda.prefix")
    try:
        check_prefix(prefix, "conda.prefix")
    except UsageError as e:
        raise f.fail("conda.prefix", str(e).removeprefix(f"conda.prefix {prefix} ")) from None
    channels = f.strings(table.get("channels", ["conda-forge"]), "conda.channels")
    packages = f.strings(table.get("packages", []), "conda.packages")
    shipped = None
    if "file" in table:
        src = f.string(table["file"], "conda.file", hint="(a file next to the recipe, such as environment.yml)")
        [shipped] = _files(f, [{"src": src, "dest": f"{CONDA_WORK}/{PurePosixPath(src).name}"}], base)
    if not packages and shipped is None:
        raise f.fail("conda", "lists no packages and no file: the environment would be empty")
    if not channels:
        raise f.fail("conda.channels", "is empty; name at least one channel, such as conda-forge")
    return Conda(prefix, channels, packages, shipped)


def from_dict(data: dict[str, Any], source: str = "<recipe>", *, base: Path | None = None) -> Recipe:
    f = _Fields(source)
    f.unknown(data, _KEYS, "")
    for required in ("name", "version", "runtime"):
        if required not in data:
            raise f.fail(required, "is missing (every recipe needs name, version and runtime)")
    name = f.string(data["name"], "name", pattern=_NAME, hint="lower-case letters, digits, '.', '_', '-'")
    version = data["version"]
    if not isinstance(version, str) or not version.strip():
        raise f.fail("version", f"must be a string like \"1.0\", not {version!r}")
    runtime = f.string(data["runtime"], "runtime", pattern=_RUNTIME, hint="a folder name of images/, like \"2026.07\"")
    backend = data.get("backend", "docker")
    if backend not in BACKENDS:
        raise f.fail("backend", f"{backend!r} is not one of {', '.join(BACKENDS)}")
    capture = f.table(data.get("capture", {}), "capture")
    f.unknown(capture, _CAPTURE_KEYS, "capture")
    roots = tuple(f.abspath(r, f"capture.roots[{i}]") for i, r in enumerate(capture.get("roots", DEFAULT_ROOTS)))
    if not roots:
        raise f.fail("capture.roots", "must name at least one folder to capture")
    excludes = f.strings(capture.get("exclude", []), "capture.exclude")
    allow = f.strings(capture.get("allow", []), "capture.allow")
    for where, patterns in (("capture.exclude", excludes), ("capture.allow", allow)):
        for i, pattern in enumerate(patterns):
            if not pattern.startswith(("/", "*")):
                raise f.fail(f"{where}[{i}]", f"{pattern!r} must be an absolute path or glob (start with / or *)")
    depends = f.strings(data.get("depends", []), "depends")
    for i, dep in enumerate(depends):
        if not _NAME.match(dep):
            raise f.fail(f"depends[{i}]", f"{dep!r} is not a pack name")
        if dep == name:
            raise f.fail(f"depends[{i}]", "a recipe cannot depend on itself")
    secrets = f.strings(data.get("secrets", []), "secrets")
    for i, var in enumerate(secrets):
        if not _ENV_NAME.match(var):
            raise f.fail(f"secrets[{i}]", f"{var!r} is not a variable name")
    check = data.get("check")
    if check is not None:
        check = f.string(check, "check", hint="(a shell command)")
    install = _steps(f, data.get("install"), "install")
    fetches = _fetches(f, data.get("fetch"))
    files = _files(f, data.get("file"), base if base is not None else Path.cwd())
    conda = _conda(f, data.get("conda"), name, base if base is not None else Path.cwd())
    if conda is not None:
        if "roots" in capture:
            raise f.fail("capture.roots", "is set, but a recipe with [conda] packs its environment only: drop capture.roots")
        roots = (conda.prefix,)
    tool = None
    if "tool" in data:
        table = f.table(data["tool"], "tool")
        f.unknown(table, {"prefix"}, "tool")
        if "prefix" not in table:
            raise f.fail("tool.prefix", "is missing: name the tool's folder, such as /opt/NAME")
        tool = Tool(f.abspath(table["prefix"], "tool.prefix"))
        if conda is not None:
            raise f.fail("tool", "and [conda] both give the pack an interpreter: keep one")
        if tool.prefix in SYSTEM_FOLDERS:
            raise f.fail("tool.prefix", f"{tool.prefix} is a system folder; give the tool a folder of its own, such as /opt/NAME")
        if "roots" not in capture:
            roots = (tool.prefix,)
    if not install and not fetches and not files and conda is None:
        raise f.fail("install", "is empty and there is nothing to fetch: the pack would hold nothing")
    if "description" in data:
        f.string(data["description"], "description")
    return Recipe(
        name=name,
        version=version,
        runtime=runtime,
        prepare=_steps(f, data.get("prepare"), "prepare"),
        install=install,
        fetches=fetches,
        files=files,
        roots=roots,
        excludes=excludes,
        allow=allow,
        env=_env(f, data.get("env")),
        check=check,
        depends=depends,
        secrets=secrets,
        backend=backend,
        conda=conda,
        tool=tool,
        source=source,
    )


def build_order(recipes: list[Recipe]) -> list[Recipe]:
    """Recipes with each one's dependencies (those in the list) before it; refuses cycles."""
    by_name: dict[str, Recipe] = {}
    for recipe in recipes:
        if recipe.name in by_name:
            msg = f"two recipes are named {recipe.name!r} ({by_name[recipe.name].source} and {recipe.source})"
            raise UsageError(msg)
        by_name[recipe.name] = recipe
    ordered: list[Recipe] = []
    state: dict[str, str] = {}

    def visit(recipe: Recipe, chain: tuple[str, ...]) -> None:
        if state.get(recipe.name) == "done":
            return
        if state.get(recipe.name) == "visiting":
            msg = f"{recipe.source}: depends: cycle {' -> '.join((*chain, recipe.name))}"
            raise UsageError(msg)
        state[recipe.name] = "visiting"
        for dep in recipe.depends:
            if dep in by_name:
                visit(by_name[dep], (*chain, recipe.name))
        state[recipe.name] = "done"
        ordered.append(recipe)

    for recipe in recipes:
        visit(recipe, ())
    return ordered
