"""`prebake bench`: v0's setup run from scratch against v1's restore, in the mirror image.

    recipe (or a v0 notebook, converted)  ->  pack (built, or reused when up to date)
    v0, N runs:  fresh container of the mirror image + the recipe's prepare steps (committed once,
                 not timed: they stand for what Colab already has)  ->  fetches and install steps,
                 each timed, grouped as pip / apt / download / build & other
    v1, N runs:  fresh container of the runner image (the mirror + prebake and what Colab already
                 has for it: requests, zstandard, click, ipykernel)  ->  `import prebake;
                 prebake.restore(URL)` from a local HTTP server  ->  the pack's check, timed
    report:      OUT/bench.json, OUT/bench.md, OUT/bench.png (stacked bars, medians)

The restore's wall time is split into download / decompress / extract in proportion to the time
the part threads spent in each (they overlap, so the split is an attribution, not a sequence).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import StepFailed, UsageError
from .manifest import MANIFEST_NAME, loads
from .recipe import Recipe
from .setup_runner import TIMING

REPO = Path(__file__).resolve().parents[1]
BENCH_REPOSITORY = "prebake-bench"
# What a Colab runtime already has that prebake (and running notebooks) needs.
RUNNER_PACKAGES = ("click>=8.1", "requests>=2.31", "zstandard>=0.22", "tqdm>=4.66", "tomlkit>=0.12",
                   "ipykernel>=6", "nbclient>=0.10", "nbformat>=5.9")
V0_PHASES = ("pip", "apt", "download", "build & other")
V1_PHASES = ("import prebake", "download", "decompress", "extract", "check")
_EXEC_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=False,
               resources={"metadata": {"path": "/content"}}).execute()
nbformat.write(nb, sys.argv[2])
"""
_RESTORE = """
import json, sys, time
t0 = time.perf_counter()
import prebake
t1 = time.perf_counter()
[r] = prebake.restore(sys.argv[1], progress=False, force=True)
t2 = time.perf_counter()
print("PREBAKE-BENCH " + json.dumps({"import": t1 - t0, "restore": t2 - t1, "phases": r.phases,
      "packed_bytes": r.packed_bytes, "bytes": r.bytes, "members": r.members}))
"""


# ---------------------------------------------------------------- a pack folder over HTTP


class _Handler(SimpleHTTPRequestHandler):
    """Serves a folder with single Range requests (206), quietly."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        spec = self.headers.get("Range", "")
        if not spec.startswith("bytes=") or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start_text, _, end_text = spec[6:].partition("-")
        start = int(start_text or 0)
        end = min(int(end_text) if end_text else size - 1, size - 1)
        f = open(path, "rb")  # noqa: SIM115 (closed by copyfile's caller)
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0 and (chunk := source.read(min(1 << 20, remaining))):
            outputfile.write(chunk)
            remaining -= len(chunk)
        self._remaining = None
        return None


class FolderServer:
    """`with FolderServer(folder) as url:` serves `folder` on 127.0.0.1 (host networking reaches it)."""

    def __init__(self, folder: Path) -> None:
        folder = str(folder)

        class Handler(_Handler):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, directory=folder, **kwargs)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


# ---------------------------------------------------------------- images


def derived_image(engine, base: str, repository_tag: str, steps: list[str], files: dict[str, Path] | None = None,
                  on_note: Callable[[str], None] | None = None, on_line: Callable[[str], None] | None = None) -> str:
    """An image: `base` + `files` copied in + `steps` run, committed and cached by a hash of all of it."""
    from .bake import run_step
    from .capture import docker as backend

    base_id = backend.image_id(engine, base)
    if base_id is None:
        msg = f"image {base!r} is not in the engine; build it first (prebake image build / prebake build)"
        raise UsageError(msg)
    digest = hashlib.sha256(repr((base_id, steps)).encode())
    for dest, src in sorted((files or {}).items()):
        for path in sorted(src.rglob("*.py")) if src.is_dir() else [src]:
            digest.update(str(path.relative_to(src) if src.is_dir() else dest).encode() + path.read_bytes())
    tag = f"{repository_tag}-{digest.hexdigest()[:12]}"
    if backend.image_id(engine, f"{BENCH_REPOSITORY}:{tag}") is not None:
        return f"{BENCH_REPOSITORY}:{tag}"
    if on_note:
        on_note(f"preparing the image {BENCH_REPOSITORY}:{tag} (once)")
    with backend.Container(engine, base, label="bench") as container:
        for dest, src in (files or {}).items():
            container.put_tree(src, dest)
        for step in steps:
            run_step(container, f"preparing {BENCH_REPOSITORY}:{tag}: `{step[:80]}`", step, container.environment(),
                     on_line=on_line)
        container.commit(BENCH_REPOSITORY, tag, {"prebake.bench": repository_tag})
    return f"{BENCH_REPOSITORY}:{tag}"


def _source_tree() -> Path:
    """This prebake's sources (no caches, no build data), staged as the `prebake` package for copying
    into an image."""
    staging = Path(tempfile.mkdtemp(prefix="prebake-src-"))
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0].startswith("_") and path.parent != package:
            continue  # shipped recipes (prebake/_recipes) are build data, not the package
        target = staging / "prebake" / path.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    return staging


def runner_image(engine, mirror: str, on_note=None, on_line=None) -> str:
    """The mirror + prebake (this checkout) + what Colab already has for it (requests, ipykernel, ...)."""
    import shutil

    src = _source_tree()
    try:
        return derived_image(engine, mirror, "runner", [
            "python -m pip install -q --no-cache-dir " + " ".join(f"'{p}'" for p in RUNNER_PACKAGES),
            "cp -r /opt/prebake-src/prebake \"$(python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')/\"",
            "rm -rf /opt/prebake-src",
            "python -c 'import prebake, nbclient, ipykernel'",
        ], {"/opt/prebake-src": src}, on_note, on_line)
    finally:
        shutil.rmtree(src, ignore_errors=True)


def v0_image(engine, mirror: str, recipe: Recipe, *, kernel: bool = False, on_note=None, on_line=None) -> str:
    """The mirror + the recipe's prepare steps (what Colab has and the mirror lacks); with `kernel`,
    also ipykernel and nbclient, to run the v0 notebook itself."""
    image = derived_image(engine, mirror, f"v0-{recipe.name}", [s.run for s in recipe.prepare], None, on_note, on_line)
    if not kernel:
        return image
    return derived_image(engine, image, f"v0-{recipe.name}-kernel",
                    ["python -m pip install -q --no-cache-dir 'ipykernel>=6' 'nbclient>=0.10' 'nbformat>=5.9'"],
                    None, on_note, on_line)


# ---------------------------------------------------------------- running notebooks in a container


def run_notebook(engine, image: str, notebook: Path, out: Path, files: dict[str, Path] | None = None,
                 on_line=None) -> float:
    """Execute `notebook` with nbclient in a fresh container of `image` (cwd /content), write the
    executed notebook to `out`; `files` (container path -> host file) are copied in first. Seconds."""
    from .bake import run_step
    from .capture import docker as backend

    started = time.perf_counter()
    with backend.Container(engine, image, label="notebook") as container:
        for dest, src in (files or {}).items():
            container.put_file(dest, src)
        container.put_file("/tmp/prebake-nb/in.ipynb", notebook)
        container.output(["mkdir", "-p", "/content"])
        run_step(container, f"running {notebook.name}",
                 shlex.join(["python", "-c", _EXEC_NOTEBOOK, "/tmp/prebake-nb/in.ipynb", "/tmp/prebake-nb/out.ipynb"]),
                 container.environment(), on_line=on_line)
        out.write_text(container.output(["cat", "/tmp/prebake-nb/out.ipynb"]))
    return time.perf_counter() - started


# ---------------------------------------------------------------- measuring


def _v0_phase(run: str) -> str:
    from .notebook import _program_kind, _simple_commands

    for line in run.splitlines():
        for words in _simple_commands(line):
            while words and (words[0] in ("sudo", "time") or "=" in words[0]):
                words = words[1:]
            if not words or words[0] in ("cd", "pushd", "popd", "export", "mkdir", "set") or _program_kind(words) != "setup":
                continue
            program = words[0].rsplit("/", 1)[-1]
            if program in ("pip", "pip3", "conda", "mamba", "uv") or (program.startswith("python") and "pip" in words[1:3]):
                return "pip"
            if program in ("apt", "apt-get", "dpkg", "add-apt-repository"):
                return "apt"
            if program in ("wget", "curl", "gdown", "aria2c", "git", "huggingface-cli", "kaggle"):
                return "download"
    return "build & other"


@dataclass
class Run:
    total: float
    phases: dict[str, float] = field(default_factory=dict)


def measure_v0(engine, image: str, recipe: Recipe, on_note=None, on_line=None) -> Run:
    from .bake import download, run_step, shipped_file, step_env
    from .capture import docker as backend

    run = Run(0.0, dict.fromkeys(V0_PHASES, 0.0))
    with backend.Container(engine, image, label="bench-v0") as container, tempfile.TemporaryDirectory() as cache:
        env = step_env(container.environment(), recipe.env, {})
        for i, fetch in enumerate(recipe.fetches):
            t = time.perf_counter()
            local = download(fetch, f"fetch[{i}]", Path(cache))  # an empty cache: downloaded every run
            container.put_file(fetch.dest, local, fetch.mode)
            run.phases["download"] += time.perf_counter() - t
        for item in recipe.files:
            container.put_file(item.dest, shipped_file(recipe, item), item.mode)
        statements = _setup_statements(recipe)
        for step in recipe.install:
            if on_note:
                on_note(f"v0: {step.label}: {step.run.strip().splitlines()[-1][:90]}")
            timed: list[tuple[int, float]] = []
            t = time.perf_counter()
            run_step(container, f"v0 step {step.label}", step.run, env, on_line=_timing_lines(timed, on_line))
            seconds = time.perf_counter() - t
            for index, spent in timed:  # a notebook's setup: each statement's own phase
                run.phases[_v0_phase(statements[index])] += spent
                seconds -= spent
            run.phases[_v0_phase(step.run) if not timed else "build & other"] += max(0.0, seconds)
    run.total = sum(run.phases.values())
    return run


def _setup_statements(recipe: Recipe) -> list[str]:
    """The statements of the setup.ipynb a converted notebook's recipe runs, as shell-like text
    (`%pip install` -> `pip install`) for _v0_phase; empty for other recipes."""
    for item in recipe.files:
        if item.src == "setup.ipynb":
            cells = json.loads(Path(item.path).read_text())["cells"]
            return ["\n".join(line.lstrip().lstrip("!%") for line in "".join(c["source"]).splitlines()) for c in cells]
    return []


def _timing_lines(timed: list[tuple[int, float]], on_line):
    """An output-line callback that collects setup_runner's timing lines and passes the rest on."""

    def take(line: str) -> None:
        if line.startswith(TIMING + " "):
            _, index, seconds = line.split()
            timed.append((int(index), float(seconds)))
        elif on_line:
            on_line(line)

    return take


def measure_v1(engine, image: str, url: str, check: str | None, env_of_pack, on_line=None) -> tuple[Run, dict]:
    from .bake import last_lines, run_step, step_env
    from .capture import docker as backend

    with backend.Container(engine, image, label="bench-v1") as container:
        ran = run_step(container, f"v1 restore of {url}", shlex.join(["python", "-c", _RESTORE, url]), container.environment())
        line = next((x for x in reversed(ran.tail) if x.startswith("PREBAKE-BENCH ")), None)
        if line is None:
            msg = f"v1 restore of {url} printed no PREBAKE-BENCH line {container.where}; {last_lines(ran)}"
            raise StepFailed(msg)
        data = json.loads(line.split(" ", 1)[1])
        check_seconds = 0.0
        if check:
            t = time.perf_counter()
            run_step(container, "the pack's check after the v1 restore", check,
                     step_env(container.environment(), env_of_pack, {}), on_line=on_line)
            check_seconds = time.perf_counter() - t
    summed = data["phases"]
    weights = {"download": summed.get("download", 0.0), "decompress": summed.get("decompress", 0.0),
               "extract": summed.get("extract", 0.0)}
    total_weight = sum(weights.values()) or 1.0
    phases = {"import prebake": data["import"]}
    phases.update({k: data["restore"] * v / total_weight for k, v in weights.items()})
    phases["check"] = check_seconds
    return Run(sum(phases.values()), phases), data


def _median_run(runs: list[Run], names: tuple[str, ...]) -> Run:
    """The run with the (low) median total, so that its phases add up to it."""
    total = statistics.median_low(r.total for r in runs)
    middle = next(r for r in runs if r.total == total)
    return Run(total, {k: middle.phases.get(k, 0.0) for k in names})


def bench(recipe: Recipe, pack_dir: Path, *, runs: int = 3, v0_runs: int | None = None,
          on_note: Callable[[str], None] | None = None, on_line: Callable[[str], None] | None = None) -> dict:
    """Measure; returns the report's data (see write_report)."""
    from contextlib import closing

    from .capture import docker as backend

    manifest = loads((pack_dir / MANIFEST_NAME).read_bytes(), str(pack_dir))
    mirror = manifest.created_by.get("image")
    if not mirror or manifest.created_by.get("backend") != "docker":
        msg = f"{pack_dir} was not built with the docker backend; bench measures in the mirror image it was built in"
        raise UsageError(msg)
    if recipe.depends:
        msg = f"{recipe.source}: bench measures one recipe without depends"
        raise UsageError(msg)
    v0_runs = v0_runs or runs
    with closing(backend.client()) as engine:
        v0 = v0_image(engine, mirror, recipe, on_note=on_note, on_line=on_line)
        v1 = runner_image(engine, mirror, on_note=on_note, on_line=on_line)
        v0_results = []
        for i in range(v0_runs):
            if on_note:
                on_note(f"v0 setup, run {i + 1} of {v0_runs}, in a fresh container of {v0}")
            v0_results.append(measure_v0(engine, v0, recipe, on_note=on_note, on_line=on_line))
            if on_note:
                on_note(f"v0 setup run {i + 1}: {v0_results[-1].total:.1f} s")
        v1_results, details = [], {}
        with FolderServer(pack_dir.parent) as base:
            url = f"{base}/{pack_dir.name}"
            for i in range(runs):
                result, details = measure_v1(engine, v1, url, manifest.check, manifest.env, on_line=on_line)
                v1_results.append(result)
                if on_note:
                    on_note(f"v1 restore, run {i + 1} of {runs}: {result.total:.2f} s")
    v0_median, v1_median = _median_run(v0_results, V0_PHASES), _median_run(v1_results, V1_PHASES)
    return {
        "format": "prebake-bench/1",
        "recipe": recipe.source,
        "pack": {"name": manifest.name, "version": manifest.version, "digest": manifest.digest,
                 "packed_bytes": manifest.packed_size, "bytes": details.get("bytes"), "members": details.get("members")},
        "images": {"mirror": mirror, "v0": v0, "v1": v1},
        "v0": {"runs": [r.__dict__ for r in v0_results], "median": v0_median.__dict__},
        "v1": {"runs": [r.__dict__ for r in v1_results], "median": v1_median.__dict__},
        "speedup": v0_median.total / v1_median.total if v1_median.total else None,
        "notes": [
            "v0: the recipe's install steps (and fetches) in a fresh container each run, from scratch (no pip or apt "
            "cache); its prepare steps are in the image and not timed (they stand for what Colab already has).",
            "v1: `import prebake; prebake.restore(URL)` in a fresh container each run, the pack served over HTTP "
            "from this machine (loopback); `pip install prebake` is not timed (prebake is in the runner image).",
            "Restore phases are the restore's wall time split in proportion to the part threads' time in each.",
        ],
    }


# ---------------------------------------------------------------- the report


def write_report(data: dict, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "md": out / "bench.md", "png": out / "bench.png"}
    paths["json"].write_text(json.dumps(data, indent=2) + "\n")
    paths["md"].write_text(markdown(data))
    chart(data, paths["png"])
    return paths


def markdown(data: dict) -> str:
    v0, v1 = data["v0"], data["v1"]
    pack = data["pack"]
    lines = [
        f"# prebake bench: {pack['name']} {pack['version']}",
        "",
        f"**v1's setup is {data['speedup']:.0f}x faster**: v0 setup {v0['median']['total']:.1f} s, "
        f"v1 restore {v1['median']['total']:.2f} s (medians of {len(v0['runs'])} and {len(v1['runs'])} runs).",
        "",
        f"Pack: {pack['packed_bytes'] / 2**20:.1f} MiB packed, {(pack['bytes'] or 0) / 2**20:.1f} MiB, "
        f"{pack['members'] or 0:,} entries, `{pack['digest'][:23]}...`. Mirror image `{data['images']['mirror']}`.",
        "",
        "| | runs (s) | median (s) | " + " | ".join(V0_PHASES) + " |",
        "|---|---|---|" + "---|" * len(V0_PHASES),
        f"| v0 setup | {', '.join(format(r['total'], '.1f') for r in v0['runs'])} | {v0['median']['total']:.1f} | "
        + " | ".join(f"{v0['median']['phases'][k]:.1f}" for k in V0_PHASES) + " |",
        "",
        "| | runs (s) | median (s) | " + " | ".join(V1_PHASES) + " |",
        "|---|---|---|" + "---|" * len(V1_PHASES),
        f"| v1 restore | {', '.join(format(r['total'], '.2f') for r in v1['runs'])} | {v1['median']['total']:.2f} | "
        + " | ".join(f"{v1['median']['phases'][k]:.2f}" for k in V1_PHASES) + " |",
        "",
        *(f"- {note}" for note in data["notes"]),
    ]
    return "\n".join(lines) + "\n"


def chart(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v0, v1 = data["v0"]["median"], data["v1"]["median"]
    colors = {"pip": "#4c72b0", "apt": "#8172b3", "download": "#55a868", "build & other": "#937860",
              "import prebake": "#cccccc", "decompress": "#dd8452", "extract": "#c44e52", "check": "#da8bc3"}
    fig, (top, zoom) = plt.subplots(2, 1, figsize=(9, 4.8), gridspec_kw={"height_ratios": [2, 1]})
    for ax, rows in ((top, [("v0 setup", v0, V0_PHASES), ("v1 restore", v1, V1_PHASES)]),
                     (zoom, [("v1 restore", v1, V1_PHASES)])):
        for y, (_, run, names) in enumerate(reversed(rows)):
            left = 0.0
            for name in names:
                width = run["phases"].get(name, 0.0)
                if width <= 0:
                    continue
                ax.barh(y, width, left=left, color=colors[name], edgecolor="white")
                left += width
            ax.text(left, y, f"  {run['total']:.1f} s" if run["total"] >= 10 else f"  {run['total']:.2f} s",
                    va="center", fontsize=10)
        ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)])
        ax.set_xlim(0, max(r[1]["total"] for r in rows) * 1.18)
        ax.set_xlabel("seconds")
        ax.spines[["top", "right"]].set_visible(False)
    top.set_title(f"{data['pack']['name']}: v0 setup {v0['total']:.1f} s vs v1 restore {v1['total']:.2f} s "
                  f"({data['speedup']:.0f}x faster)", fontsize=11)
    zoom.set_title("v1 restore, zoomed in", fontsize=9)
    handles, labels = [], []
    for name, run in [*((n, v0) for n in V0_PHASES), *((n, v1) for n in V1_PHASES)]:
        if name not in labels and run["phases"].get(name, 0) > 0:
            handles.append(plt.Rectangle((0, 0), 1, 1, color=colors[name]))
            labels.append(f"{name} (v1)" if run is v1 and name == "download" else name)
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.84, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
