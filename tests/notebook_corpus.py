"""A corpus of v0 Colab notebooks shaped like real ones, and where each of their lines must go.

Written from how public Colab notebooks set themselves up (pose-estimation builds, FEM-on-Colab,
PyTorch3D wheels, condacolab, NeMo/mmpose/detectron2 tutorials, diarization, talking-head demos),
independently of the converter in builder/notebook.py: no case was tuned to what it does.

Every non-blank line of a code cell that is not a pure comment line (`#...`, `#@title`, bash
comments in a `%%bash` body) belongs to exactly one class:

  setup  matched by a `setup` substring: runs at build time and leaves v1
         (unless also matched by `kept_setup`: it then stays in v1 as well, because it binds a name,
         a directory or an environment variable that the research uses); conda/mamba installs and
         condacolab's lines may instead be taken over by the recipe's [conda] table (they leave v1
         and never run: the table's environment is built and restored in their place)
  user   matched by a `user` substring: needs the person running the notebook (Drive, uploads,
         input(), tokens, their own video/config values): stays in v1, never runs at build time
  kept   anything else (definitions, imports, research, inspection): stays in v1

Each substring matches exactly one classifiable line of its case (`problems` checks that).
Conventions where real notebooks leave it open, chosen here and relied on by the checker:
  * a compound statement (`if`/`try`/`for`/`with`) whose body installs is setup with its header lines;
    one that also binds a name the research uses (`try: import dolfinx ...`) is setup + kept_setup
  * a cell magic (`%%bash`, `%%shell`, `%%time`) is one statement: the magic line and every body line
  * `%cd DIR` and `%env VAR=...` before installs are setup + kept_setup: the build needs them and so
    does the research that follows (the kernel's directory and environment)
  * a docstring heading a `%%shell` cell goes with the cell magic (setup), like a `#@title` line would
  * `import condacolab`, condacolab.install() and condacolab.check() are setup (they exist only to
    put conda under /usr/local, which the [conda] environment replaces)
  * running a tool (`!python infer.py`, `!./darknet detector test`, `subprocess.run([tool])`) is
    research; `!nvidia-smi`, `!ls`, `!python3 --version` are inspection: both kept

`score(cases, convert)` is the corpus-wide metric used by the benchmark.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import textwrap
from dataclasses import dataclass

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

# Pattern tags, by family. Every tag must be reproduced by at least one case, and a case may only use these.
PATTERN_FAMILIES: dict[str, tuple[str, ...]] = {
    "mixed cells": (
        "guarded build with helpers",
        "clone+cd+pip -r+import",
        "comment before cell magic",
        "docstring before cell magic",
    ),
    "control flow": (
        "try import/except install",
        "if flag: install",
        "os.system under file guard",
        "subprocess.run install",
    ),
    "interpolation": (
        "$var",
        "${VAR} env",
        "{expr}",
        "constant then @$BRANCH",
        "form field in install",
        "computed list in install",
    ),
    "user steps": (
        "drive mount + cp",
        "files.upload",
        "input()",
        "notebook_login",
        "userdata token",
        "user media from form URL",
        "sed config with form value",
    ),
    "installers": (
        "mim install",
        "condacolab",
        "condacolab.check()",
        "conda install to [conda]",
        "%%writefile environment.yml",
        "conda value prebake cannot know",
        "python3.8 -m pip",
        "update-alternatives",
        "%env",
        "%mkdir",
        "%%shell",
        "%%bash",
        "%%time setup",
        "%run setup script",
        "%cd",
        "torch.hub download + unzip",
        "apt-get install",
        "pip install -e .",
        "pip install git+",
        "--index-url",
        "wget | bash",
        "download + run installer",
        "curl + tar",
        "gdown",
        "ldconfig",
        "cmake/make build",
        "small C build",
        "setup binds a name",
    ),
    "research": (
        "imports of installed",
        "run a tool",
        "tool from /usr/local/bin",
        "inspection",
        "plots/prints",
        "model loading",
        "research before setup",
    ),
}
ALL_PATTERNS: frozenset[str] = frozenset(t for tags in PATTERN_FAMILIES.values() for t in tags)


@dataclass(frozen=True)
class Markdown:
    """A markdown cell."""

    text: str


@dataclass(frozen=True)
class Line:
    """One classifiable line of a case, with where it must go."""

    cell: int  # 1-based code-cell number (markdown cells not counted), as users count
    line: int  # 1-based line number in that cell's source
    text: str
    cls: str  # "setup" | "user" | "kept"
    kept_setup: bool = False  # setup that also stays in v1


def is_classifiable(line: str) -> bool:
    """Non-blank and not a pure comment line."""
    s = line.strip()
    return bool(s) and not s.startswith("#")


def _code(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


@dataclass(frozen=True)
class Case:
    name: str  # slug, unique
    cells: tuple[str | Markdown, ...]  # code cell sources; Markdown("text") for markdown cells
    setup: tuple[str, ...]  # substrings identifying lines that must go to the build and leave v1
    user: tuple[str, ...] = ()  # lines that need the user: stay in v1, never run at build time
    kept_setup: tuple[str, ...] = ()  # setup lines that also stay in v1 because they bind names the research uses
    nbformat_minor: int = 4
    runnable: bool = False  # its setup only needs pip/apt/small C builds/a local server (no GPU, no GitHub, no Drive)
    patterns: tuple[str, ...] = ()  # which patterns it reproduces, in a few words each

    def code_cells(self) -> list[str]:
        return [c for c in self.cells if not isinstance(c, Markdown)]

    def notebook(self) -> nbformat.NotebookNode:
        """The v0 notebook, as Colab saves it: no cell ids before 4.5, `cellView: form` on #@title cells."""
        gpu = not self.runnable
        colab: dict = {"provenance": [], "name": f"{self.name}.ipynb"}
        if gpu:
            colab["gpuType"] = "T4"
        metadata: dict = {
            "colab": colab,
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
            "language_info": {"name": "python"},
        }
        if gpu:
            metadata["accelerator"] = "GPU"
        nb = new_notebook(nbformat_minor=self.nbformat_minor, metadata=metadata)
        for index, cell_src in enumerate(self.cells):
            if isinstance(cell_src, Markdown):
                cell = new_markdown_cell(cell_src.text)
            else:
                cell = new_code_cell(cell_src)
                if cell_src.lstrip().startswith("#@title"):
                    cell.metadata["cellView"] = "form"
            if self.nbformat_minor >= 5:
                cid = _cell_id(self.name, index)
                cell["id"] = cid
                cell.metadata["id"] = cid
            else:
                cell.pop("id", None)
            nb.cells.append(cell)
        return nb

    def lines(self) -> tuple[Line, ...]:
        """Every classifiable line with its class, in notebook order (first matching substring wins)."""
        out = []
        for number, src in enumerate(self.code_cells(), start=1):
            for lineno, text in enumerate(src.split("\n"), start=1):
                if not is_classifiable(text):
                    continue
                if any(s in text for s in self.setup):
                    out.append(Line(number, lineno, text, "setup", any(s in text for s in self.kept_setup)))
                elif any(s in text for s in self.user):
                    out.append(Line(number, lineno, text, "user"))
                else:
                    out.append(Line(number, lineno, text, "kept"))
        return tuple(out)


def _cell_id(name: str, index: int) -> str:
    digest = hashlib.sha256(f"{name}/{index}".encode()).hexdigest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    n = int(digest, 16)
    chars = []
    for _ in range(12):
        n, r = divmod(n, len(alphabet))
        chars.append(alphabet[r])
    return "".join(chars)


def problems(case: Case) -> list[str]:
    """What is wrong with a case's expectations (empty when it is well-formed)."""
    found = []
    classifiable = [
        (number, lineno, text)
        for number, src in enumerate(case.code_cells(), start=1)
        for lineno, text in enumerate(src.split("\n"), start=1)
        if is_classifiable(text)
    ]
    claimed: dict[tuple[int, int], str] = {}
    for kind, subs in (("setup", case.setup), ("user", case.user)):
        for sub in subs:
            hits = [(n, ln) for n, ln, text in classifiable if sub in text]
            if len(hits) != 1:
                found.append(f"{kind} substring {sub!r} matches {len(hits)} lines")
                continue
            if hits[0] in claimed:
                found.append(f"{kind} substring {sub!r} names a line already listed as {claimed[hits[0]]}")
            claimed[hits[0]] = kind
    for sub in case.kept_setup:
        hits = [(n, ln) for n, ln, text in classifiable if sub in text]
        if len(hits) != 1:
            found.append(f"kept_setup substring {sub!r} matches {len(hits)} lines")
        elif claimed.get(hits[0]) != "setup":
            found.append(f"kept_setup substring {sub!r} names a line not listed in setup")
    if not case.setup:
        found.append("no setup lines")
    if not any(line.cls == "kept" for line in case.lines()):
        found.append("no research kept")
    unknown = set(case.patterns) - ALL_PATTERNS
    if unknown:
        found.append(f"unknown patterns {sorted(unknown)}")
    if case.nbformat_minor not in (4, 5):
        found.append(f"nbformat_minor {case.nbformat_minor}")
    return found


def statement_ranges(source: str) -> list[tuple[int, int]]:
    """Top-level statements of one cell as (first_line, last_line), 1-based inclusive, as IPython runs it.

    A cell magic (a `%%` line, possibly after comment or docstring lines) runs to the end of the
    cell; `!cmd` and `%magic` lines (and their backslash continuations) count as simple statements.
    The corpus's own view, used to check that expectations never split a statement.
    """
    lines = source.split("\n")
    magic = next((i for i, text in enumerate(lines) if text.startswith("%%")), None)
    head = lines if magic is None else lines[:magic]
    python, continued = [], False
    for text in head:
        stripped = text.lstrip()
        if continued:
            python.append("")
            continued = text.rstrip().endswith("\\")
        elif stripped.startswith(("!", "%")):
            python.append(text[: len(text) - len(stripped)] + "pass")
            continued = text.rstrip().endswith("\\")
        else:
            python.append(text)
    tree = ast.parse("\n".join(python))
    ranges = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        ranges.append((first, node.end_lineno or node.lineno))
    if magic is not None:
        last = max(i for i, text in enumerate(lines) if text.strip()) + 1
        ranges.append((magic + 1, last))
    return ranges


def find_statement(statements, cell: int, line: int):
    """The converter's statement holding `line` of code cell `cell`, or None."""
    for st in statements:
        if st.cell == cell and st.first_line <= line <= st.last_line:
            return st
    return None


def line_ok(line: Line, st) -> bool:
    """Whether the converter's statement puts this line where it must go."""
    if st is None:
        return False
    if line.cls == "setup":  # in the build, or taken over by the recipe's [conda] table
        return (bool(st.in_build) or st.conda is not None) and bool(st.in_v1) == line.kept_setup
    if line.cls == "user":
        return not st.in_build and bool(st.in_v1)
    return bool(st.in_v1)


def score(cases, convert) -> dict:
    """Corpus-wide metric: how much setup reaches the build, how much research stays, what user steps leak.

    setup_recall   setup lines whose statement is in the build (or taken over by the [conda] table) and
                   out of v1 (in v1 too when kept_setup)
    research_kept  kept lines whose statement stays in v1
    user_in_build  user lines whose statement runs at build time (should be 0)
    v1_valid       notebooks whose v1 passes nbformat.validate, over all cases
    A case whose conversion raises counts as missing every line and an invalid v1.
    """
    setup_total = setup_ok = kept_total = kept_ok = user_total = user_in_build = valid = 0
    errors: list[str] = []
    cases = list(cases)
    for case in cases:
        lines = case.lines()
        setup_total += sum(line.cls == "setup" for line in lines)
        kept_total += sum(line.cls == "kept" for line in lines)
        user_total += sum(line.cls == "user" for line in lines)
        try:
            conversion = convert(case.notebook(), name=case.name, source_label=f"{case.name}.ipynb")
            statements = list(conversion.statements)
        except Exception as e:  # noqa: BLE001 - one broken case must not hide the others' scores
            errors.append(f"{case.name}: convert raised {type(e).__name__}: {e}")
            continue
        for line in lines:
            st = find_statement(statements, line.cell, line.line)
            if st is None:
                errors.append(f"{case.name}: no statement holds cell {line.cell} line {line.line}")
                continue
            if line.cls == "setup":
                setup_ok += line_ok(line, st)
            elif line.cls == "kept":
                kept_ok += line_ok(line, st)
            else:
                user_in_build += bool(st.in_build)
        try:
            nbformat.validate(copy.deepcopy(conversion.v1))
            valid += 1
        except Exception as e:  # noqa: BLE001
            errors.append(f"{case.name}: v1 invalid: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    return {
        "cases": len(cases),
        "setup_lines": setup_total,
        "kept_lines": kept_total,
        "user_lines": user_total,
        "setup_recall": setup_ok / setup_total if setup_total else 1.0,
        "research_kept": kept_ok / kept_total if kept_total else 1.0,
        "user_in_build": user_in_build,
        "v1_valid": valid / len(cases) if cases else 1.0,
        "errors": errors,
    }


def describe(case: Case) -> str:
    """Every line of a case with its expected class: for reading a case next to a converter's report."""
    classes = {(line.cell, line.line): line for line in case.lines()}
    out = [f"{case.name}  (nbformat 4.{case.nbformat_minor}{', runnable' if case.runnable else ''})"]
    for number, src in enumerate(case.code_cells(), start=1):
        out.append(f"--- cell {number}")
        for lineno, text in enumerate(src.split("\n"), start=1):
            line = classes.get((number, lineno))
            tag = "" if line is None else ("setup+kept" if line.kept_setup else line.cls)
            out.append(f"{tag:>10} {lineno:3} | {text}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------
# The cases.

CASES: tuple[Case, ...] = (
    Case(
        name="openpose_guarded_build",
        cells=(
            Markdown("# Pose keypoints from your clip\nBuilds the pose estimator once, then runs it on a video you choose."),
            _code("""
                import os
                from os.path import exists, join, basename, splitext

                git_repo_url = 'https://github.com/CMU-Perceptual-Computing-Lab/openpose.git'
                project_name = splitext(basename(git_repo_url))[0]
                if not exists(project_name):
                  # the runtime's cmake is too old for this project
                  !wget -q https://github.com/Kitware/CMake/releases/download/v3.27.9/cmake-3.27.9-linux-x86_64.tar.gz
                  !tar xfz cmake-3.27.9-linux-x86_64.tar.gz --strip-components=1 -C /usr/local
                  !git clone -q --depth 1 $git_repo_url
                  !apt-get -qq install -y libatlas-base-dev libprotobuf-dev libgoogle-glog-dev protobuf-compiler libhdf5-dev
                  !cd $project_name && rm -rf build && mkdir build && cd build && cmake -DBUILD_PYTHON=ON .. && make -j`nproc`

                POSE_BIN = './build/examples/openpose/openpose.bin'

                def estimate(video, out='keypoints'):
                  \"\"\"Write one JSON of keypoints per frame of `video` into `out`.\"\"\"
                  os.makedirs(out, exist_ok=True)
                  !cd $project_name && $POSE_BIN --video ../{video} --write_json ../{out} --display 0 --render_pose 0
                  return sorted(os.listdir(out))
            """),
            _code("""
                #@title Your clip
                video_url = 'https://example.com/my-clip.mp4' #@param {type:"string"}
                !pip install -q yt-dlp==2024.8.6
                !yt-dlp -q -f mp4 -o video.mp4 "$video_url"
            """),
            _code("""
                !nvidia-smi --query-gpu=name,memory.used --format=csv
                frames = estimate('video.mp4')
                print(f'{len(frames)} frames with keypoints')
            """),
        ),
        setup=(
            "if not exists(project_name):",
            "!wget -q https://github.com/Kitware",
            "!tar xfz cmake-3.27.9",
            "!git clone -q --depth 1 $git_repo_url",
            "!apt-get -qq install -y libatlas",
            "cmake -DBUILD_PYTHON=ON .. && make",
            "!pip install -q yt-dlp",
        ),
        user=("!yt-dlp -q -f mp4",),
        patterns=(
            "guarded build with helpers", "$var", "cmake/make build", "apt-get install", "curl + tar",
            "user media from form URL", "inspection", "run a tool",
        ),
    ),
    Case(
        name="clone_cd_requirements_import",
        cells=(
            Markdown("## Setup\nClone the repository, install its requirements and check the runtime."),
            _code("""
                !git clone -q https://github.com/example-lab/leafseg.git
                %cd leafseg
                %pip install -qr requirements.txt
                !wget -q -P weights https://github.com/example-lab/leafseg/releases/download/v0.3/leafseg_s.pt
                import utils
                from leafseg.model import LeafSeg
                utils.check_env()
            """),
            Markdown("## Segment the sample images"),
            _code("""
                !python infer.py --weights weights/leafseg_s.pt --input samples/ --out preds/
            """),
            _code("""
                import glob
                from PIL import Image
                import matplotlib.pyplot as plt
                paths = sorted(glob.glob('preds/*.png'))[:4]
                fig, axes = plt.subplots(1, len(paths), figsize=(16, 4))
                for ax, p in zip(axes, paths):
                    ax.imshow(Image.open(p)); ax.set_title(p); ax.axis('off')
                plt.show()
            """),
        ),
        setup=(
            "!git clone -q https://github.com/example-lab/leafseg.git",
            "%cd leafseg",
            "%pip install -qr requirements.txt",
            "!wget -q -P weights",
        ),
        kept_setup=("%cd leafseg",),
        patterns=("clone+cd+pip -r+import", "%cd", "run a tool", "plots/prints", "imports of installed"),
    ),
    Case(
        name="title_comment_bash_c_tool",
        cells=(
            _code(r"""
                #@title Build the frame counter { display-mode: "form" }
                # a tiny C helper that the analysis below calls
                %%bash
                set -e
                apt-get update -qq
                apt-get install -y -qq build-essential > /dev/null
                mkdir -p /opt/fc/src
                printf 'int puts(const char *s);\nint main(void) { puts("fc 1.0"); return 0; }\n' > /opt/fc/src/fc.c
                gcc -O2 -o /opt/fc/fc /opt/fc/src/fc.c
                echo "fc built"
            """),
            _code("""
                import subprocess
                version = subprocess.run(['/opt/fc/fc'], capture_output=True, text=True).stdout.strip()
                print('helper says:', version)
            """),
            _code("""
                !ls -l /opt/fc
            """),
        ),
        setup=(
            "%%bash",
            "set -e",
            "apt-get update -qq",
            "apt-get install -y -qq build-essential",
            "mkdir -p /opt/fc/src",
            "printf 'int puts",
            "gcc -O2 -o /opt/fc/fc",
            'echo "fc built"',
        ),
        runnable=True,
        patterns=("comment before cell magic", "%%bash", "apt-get install", "small C build", "run a tool", "inspection"),
    ),
    Case(
        name="docstring_shell_go",
        cells=(
            _code('''
                """Go toolchain for the tokenizer benchmark (about a minute)."""
                %%shell
                set -e
                curl -sSL https://go.dev/dl/go1.22.5.linux-amd64.tar.gz -o /tmp/go.tgz
                rm -rf /usr/local/go && tar -C /usr/local -xzf /tmp/go.tgz
                /usr/local/go/bin/go version
            '''),
            _code("""
                import os
                os.environ['PATH'] = '/usr/local/go/bin:' + os.environ['PATH']
                !go version
            """),
            Markdown("Build and run the benchmark."),
            _code("""
                !git clone -q https://github.com/example-lab/tokbench.git
                !cd tokbench && /usr/local/go/bin/go build -o /usr/local/bin/tokbench ./cmd/tokbench
            """),
            _code("""
                import json, subprocess
                res = json.loads(subprocess.run(['tokbench', '--json', '--n', '2000'], capture_output=True, text=True).stdout)
                print(f"{res['tokens_per_s']:.0f} tokens/s")
            """),
        ),
        setup=(
            '"""Go toolchain for the tokenizer benchmark',
            "%%shell",
            "set -e",
            "curl -sSL https://go.dev/dl/go1.22.5",
            "rm -rf /usr/local/go && tar -C /usr/local",
            "/usr/local/go/bin/go version",
            "!git clone -q https://github.com/example-lab/tokbench.git",
            "/usr/local/go/bin/go build",
        ),
        nbformat_minor=5,
        patterns=("docstring before cell magic", "%%shell", "curl + tar", "run a tool", "inspection"),
    ),
    Case(
        name="fem_dolfinx_try_except",
        cells=(
            Markdown("# Poisson on the unit square (FEniCSx)"),
            _code("""
                try:
                    import dolfinx  # fast path: already installed
                except ImportError:
                    !wget "https://fem-on-colab.github.io/releases/fenicsx-install-release-real.sh" -O "/tmp/fenicsx-install.sh" && bash "/tmp/fenicsx-install.sh"
                    import dolfinx  # after the install
            """),
            _code("""
                import numpy as np
                import ufl
                from mpi4py import MPI
                from dolfinx import mesh, fem, default_scalar_type
                from dolfinx.fem.petsc import LinearProblem
                domain = mesh.create_unit_square(MPI.COMM_WORLD, 32, 32)
                V = fem.functionspace(domain, ("Lagrange", 1))
                u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
                facets = mesh.locate_entities_boundary(domain, 1, lambda x: np.full(x.shape[1], True))
                bc = fem.dirichletbc(default_scalar_type(0), fem.locate_dofs_topological(V, 1, facets), V)
                a = ufl.dot(ufl.grad(u), ufl.grad(v)) * ufl.dx
                L = fem.Constant(domain, default_scalar_type(1)) * v * ufl.dx
                uh = LinearProblem(a, L, bcs=[bc]).solve()
                print("max u =", uh.x.array.max(), "dolfinx", dolfinx.__version__)
            """),
        ),
        setup=("try:", "fast path", "except ImportError:", 'fenicsx-install.sh" && bash', "after the install"),
        kept_setup=("try:", "fast path", "except ImportError:", 'fenicsx-install.sh" && bash', "after the install"),
        patterns=("try import/except install", "setup binds a name", "download + run installer", "plots/prints"),
    ),
    Case(
        name="pytorch3d_need_flag",
        cells=(
            _code("""
                import os
                import sys
                import torch
                need_pytorch3d = False
                try:
                    import pytorch3d
                except ModuleNotFoundError:
                    need_pytorch3d = True
                if need_pytorch3d:
                    pyt = torch.__version__.split("+")[0].replace(".", "")
                    cu = torch.version.cuda.replace(".", "")
                    wheel_tag = f"py3{sys.version_info.minor}_cu{cu}_pyt{pyt}"
                    !pip install -q fvcore iopath
                    !pip install -q --no-index --no-cache-dir pytorch3d -f https://dl.fbaipublicfiles.com/pytorch3d/packaging/wheels/{wheel_tag}/download.html
            """),
            Markdown("Sample a point cloud from a sphere mesh."),
            _code("""
                from pytorch3d.utils import ico_sphere
                from pytorch3d.ops import sample_points_from_meshes
                sphere = ico_sphere(level=3)
                pts = sample_points_from_meshes(sphere, num_samples=5000)
                print(pts.shape)
            """),
        ),
        setup=(
            "if need_pytorch3d:",
            "pyt = torch.__version__",
            "cu = torch.version.cuda",
            "wheel_tag = f",
            "!pip install -q fvcore iopath",
            "pytorch3d -f https://dl.fbaipublicfiles.com",
        ),
        patterns=("if flag: install", "{expr}", "imports of installed", "plots/prints"),
    ),
    Case(
        name="os_system_ready_guard",
        cells=(
            _code("""
                import os
                if not os.path.isfile("READY"):
                    os.system("pip install -q tabulate==0.9.0 humanize==4.9.0")
                    os.system("apt-get update -qq && apt-get install -y -qq jq > /dev/null")
                    open("READY", "w").close()
            """),
            _code("""
                import json
                import subprocess
                import humanize
                from tabulate import tabulate
                sizes = {"weights": 123_456_789, "cache": 4_096, "dataset": 9_876_543_210}
                print(tabulate([(k, humanize.naturalsize(v)) for k, v in sizes.items()], headers=["item", "size"]))
                report = json.dumps(sizes)
                print(subprocess.run(["jq", ".weights"], input=report, capture_output=True, text=True).stdout)
            """),
        ),
        setup=(
            'if not os.path.isfile("READY"):',
            'os.system("pip install -q tabulate',
            'os.system("apt-get update',
            'open("READY", "w").close()',
        ),
        runnable=True,
        patterns=("os.system under file guard", "apt-get install", "plots/prints", "imports of installed"),
    ),
    Case(
        name="condacolab_subprocess_mamba",
        cells=(
            Markdown("Install conda first (the runtime restarts once), then the simulation stack."),
            _code("""
                !pip install -q condacolab
                import condacolab
                condacolab.install()
            """),
            _code("""
                import subprocess
                subprocess.run("mamba install -y -q -c conda-forge openmm=8.1 pdbfixer", shell=True, check=True)
            """),
            _code("""
                !mamba install -y -q -c conda-forge mdtraj
            """),
            _code("""
                import openmm
                import mdtraj as md
                from pdbfixer import PDBFixer
                fixer = PDBFixer(pdbid="1UBQ")
                fixer.findMissingResidues()
                print(openmm.__version__, md.__version__, len(fixer.missingResidues))
            """),
        ),
        setup=(
            "!pip install -q condacolab",
            "import condacolab",
            "condacolab.install()",
            'subprocess.run("mamba install',
            "!mamba install -y -q -c conda-forge mdtraj",
        ),
        nbformat_minor=5,
        patterns=("condacolab", "subprocess.run install", "imports of installed", "model loading"),
    ),
    Case(
        name="condacolab_check_mamba_rdkit",
        cells=(
            Markdown("# Ligand prep\nRun the first cell on its own: condacolab restarts the session when it is done."),
            _code("""
                #@title Install conda (the session restarts once)
                !pip install -q condacolab
                import condacolab  # installs Miniforge under /usr/local
                condacolab.install()
            """),
            Markdown("After the restart: check conda, then install the chemistry stack."),
            _code("""
                import condacolab  # again, after the restart
                condacolab.check()
            """),
            _code("""
                %%capture
                !mamba install -q -y -c conda-forge rdkit openbabel openmm=8.1 pdbfixer
            """),
            _code("""
                from rdkit import Chem
                from rdkit.Chem import AllChem, Descriptors
                mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)Oc1ccccc1C(=O)O"))
                AllChem.EmbedMolecule(mol, randomSeed=7)
                print(round(Descriptors.MolWt(mol), 2), mol.GetNumAtoms())
                Chem.MolToMolFile(mol, "aspirin.mol")
            """),
            _code("""
                !/usr/local/bin/obabel aspirin.mol -O aspirin.pdbqt -xr
                !head -n 5 aspirin.pdbqt
            """),
        ),
        setup=(
            "!pip install -q condacolab",
            "import condacolab  # installs",
            "condacolab.install()",
            "import condacolab  # again",
            "condacolab.check()",
            "%%capture",
            "!mamba install -q -y -c conda-forge rdkit",
        ),
        patterns=("condacolab", "condacolab.check()", "conda install to [conda]", "%%time setup", "imports of installed",
                  "tool from /usr/local/bin", "inspection"),
    ),
    Case(
        name="condacolab_one_cell_cartopy",
        cells=(
            _code("""
                # cartopy needs GEOS and PROJ: conda-forge has them
                !pip install -q condacolab
                import condacolab
                condacolab.install()
                !mamba install -q -c conda-forge cartopy
                import matplotlib.pyplot as plt
                import cartopy.crs as ccrs
            """),
            _code("""
                fig = plt.figure(figsize=(10, 5))
                ax = plt.axes(projection=ccrs.Robinson())
                ax.coastlines()
                ax.gridlines(draw_labels=False)
                plt.show()
            """),
        ),
        setup=("!pip install -q condacolab", "import condacolab", "condacolab.install()", "!mamba install -q -c conda-forge"),
        patterns=("condacolab", "conda install to [conda]", "imports of installed", "plots/prints"),
    ),
    Case(
        name="condacolab_bioconda_environment_file",
        cells=(
            Markdown("## Setup\nbedtools and samtools come from bioconda; the environment file pins them."),
            _code("""
                !pip install -q condacolab
                import condacolab
                condacolab.install()
            """),
            _code("""
                %%writefile environment.yml
                channels:
                  - conda-forge
                  - bioconda
                dependencies:
                  - bedtools=2.31
                  - samtools
                  - pybedtools
            """),
            _code("""
                !mamba env update -n base -f environment.yml
                !conda install -c bioconda seqkit
            """),
            _code("""
                import pybedtools
                regions = pybedtools.BedTool([("chr1", 10, 40), ("chr1", 30, 90), ("chr2", 5, 25)])
                print(regions.sort().merge())
                !samtools --version | head -n 1
            """),
        ),
        setup=(
            "!pip install -q condacolab",
            "import condacolab",
            "condacolab.install()",
            "!mamba env update -n base -f environment.yml",
            "!conda install -c bioconda seqkit",
        ),
        patterns=("condacolab", "%%writefile environment.yml", "conda install to [conda]", "imports of installed",
                  "inspection"),
    ),
    Case(
        name="condacolab_form_version_cuda_fallback",
        cells=(
            _code("""
                #@title Versions
                openmm_version = "8.1.1" #@param ["8.1.1", "8.0.0"]
                extra = ["mdtraj", "pdbfixer"]
            """),
            _code("""
                !pip install -q condacolab
                import condacolab
                condacolab.install()
            """),
            _code("""
                !mamba install -q -y -c conda-forge openmm=$openmm_version {" ".join(extra)}
                import torch
                cuda = torch.version.cuda
                !mamba install -q -y -c conda-forge cuda-version=$cuda
            """),
            _code("""
                import openmm
                platform = openmm.Platform.getPlatformByName("CUDA")
                print(openmm.version.version, platform.getName(), cuda)
            """),
        ),
        setup=(
            "!pip install -q condacolab",
            "import condacolab",
            "condacolab.install()",
            "openmm=$openmm_version",
            "cuda-version=$cuda",
        ),
        patterns=("condacolab", "conda install to [conda]", "conda value prebake cannot know", "form field in install",
                  "$var", "{expr}", "imports of installed"),
    ),
    Case(
        name="condacolab_miniforge_mamba_magic",
        cells=(
            Markdown("Phylogenetics: MAFFT and IQ-TREE from bioconda."),
            _code("""
                %pip install -q condacolab
                import condacolab
                condacolab.install_miniforge()
            """),
            _code("""
                %mamba install -y -c conda-forge -c bioconda mafft iqtree python=3.10
            """),
            _code("""
                %%writefile seqs.fa
                >a
                ACGTACGTTA
                >b
                ACGTTCGTTA
            """),
            _code("""
                !mafft --auto seqs.fa > aligned.fa
                !iqtree2 -s aligned.fa -m GTR -quiet
                print(open("aligned.fa.treefile").read())
            """),
        ),
        setup=("%pip install -q condacolab", "import condacolab", "condacolab.install_miniforge()", "%mamba install"),
        nbformat_minor=5,
        patterns=("condacolab", "conda install to [conda]", "run a tool", "plots/prints"),
    ),
    Case(
        name="nemo_branch_upload",
        cells=(
            _code("""
                BRANCH = 'main'
                !apt-get update -qq && apt-get install -y -qq sox libsndfile1 ffmpeg
                !pip install -q text-unidecode
                !python -m pip install -q "git+https://github.com/NVIDIA/NeMo.git@$BRANCH#egg=nemo_toolkit[asr]"
            """),
            Markdown("## Transcribe your recordings"),
            _code("""
                import nemo.collections.asr as nemo_asr
                asr = nemo_asr.models.ASRModel.from_pretrained("stt_en_fastconformer_ctc_large")
            """),
            _code("""
                from google.colab import files
                uploaded = files.upload()
                for name in uploaded:
                    print(name, '->', asr.transcribe([name])[0])
            """),
        ),
        setup=(
            "!apt-get update -qq && apt-get install",
            "!pip install -q text-unidecode",
            "NeMo.git@$BRANCH",
        ),
        user=("uploaded = files.upload()",),
        patterns=(
            "constant then @$BRANCH", "$var", "pip install git+", "apt-get install", "files.upload", "model loading",
        ),
    ),
    Case(
        name="pyannote_login_user_audio",
        cells=(
            _code("""
                !pip install -q pyannote.audio==3.3.2
            """),
            _code("""
                from huggingface_hub import notebook_login
                notebook_login()
            """),
            _code("""
                import torch
                from pyannote.audio import Pipeline
                pipeline = Pipeline.from_pretrained("pyannote/speaker-diarization-3.1", use_auth_token=True)
                pipeline.to(torch.device("cuda"))
            """),
            _code("""
                #@title Your recording
                audio_url = "https://example.org/standup.wav" #@param {type:"string"}
                !wget -q -O meeting.wav "$audio_url"
                diarization = pipeline("meeting.wav")
                for turn, _, speaker in diarization.itertracks(yield_label=True):
                    print(f"{turn.start:7.1f}s {turn.end:7.1f}s {speaker}")
            """),
        ),
        setup=("!pip install -q pyannote.audio",),
        user=("notebook_login()", "!wget -q -O meeting.wav"),
        patterns=("notebook_login", "user media from form URL", "$var", "model loading", "plots/prints"),
    ),
    Case(
        name="hf_userdata_hub_download",
        cells=(
            _code("""
                %pip install -q transformers==4.44.2 accelerate==0.33.0
            """),
            _code("""
                from google.colab import userdata
                HF_TOKEN = userdata.get('HF_TOKEN')
                from huggingface_hub import hf_hub_download
                cfg_path = hf_hub_download(repo_id="openai-community/gpt2", filename="config.json")
            """),
            _code("""
                import json
                from transformers import AutoTokenizer, AutoModelForCausalLM
                print(json.load(open(cfg_path))["n_layer"], "layers")
                tok = AutoTokenizer.from_pretrained("openai-community/gpt2", token=HF_TOKEN)
                model = AutoModelForCausalLM.from_pretrained("openai-community/gpt2", token=HF_TOKEN)
                ids = tok("A notebook that installs everything", return_tensors="pt").input_ids
                print(tok.decode(model.generate(ids, max_new_tokens=20)[0]))
            """),
        ),
        setup=("%pip install -q transformers", "cfg_path = hf_hub_download("),
        user=("HF_TOKEN = userdata.get(",),
        kept_setup=("cfg_path = hf_hub_download(",),
        nbformat_minor=5,
        patterns=("userdata token", "setup binds a name", "model loading", "imports of installed"),
    ),
    Case(
        name="mmpose_mim_time",
        cells=(
            _code("""
                !nvidia-smi
            """),
            _code("""
                %%time
                %pip install -U -q openmim
                !mim install -q mmengine
                !mim install -q "mmcv>=2.0.1"
                !mim install -q "mmdet>=3.1.0"
            """),
            _code("""
                !git clone -q https://github.com/open-mmlab/mmpose.git
                %cd mmpose
                !pip install -q -r requirements.txt
                !pip install -q -e .
            """),
            _code("""
                %mkdir -p checkpoints
                !wget -q -P checkpoints https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/rtmpose/coco/rtmpose-m_simcc-aic-coco_pt-aic-coco_420e-256x192-63eb25f7_20230126.pth
            """),
            Markdown("## Inference on a sample image"),
            _code("""
                import mmcv
                import mmpose
                from mmpose.apis import init_model, inference_topdown
                print(mmcv.__version__, mmpose.__version__)
                config = 'configs/body_2d_keypoint/rtmpose/coco/rtmpose-m_8xb256-420e_aic-coco-256x192.py'
                ckpt = 'checkpoints/rtmpose-m_simcc-aic-coco_pt-aic-coco_420e-256x192-63eb25f7_20230126.pth'
                model = init_model(config, ckpt, device='cuda:0')
                results = inference_topdown(model, 'tests/data/coco/000000000785.jpg')
                print(results[0].pred_instances.keypoints.shape)
            """),
        ),
        setup=(
            "%%time",
            "%pip install -U -q openmim",
            "mim install -q mmengine",
            'mim install -q "mmcv',
            'mim install -q "mmdet',
            "!git clone -q https://github.com/open-mmlab/mmpose.git",
            "%cd mmpose",
            "!pip install -q -r requirements.txt",
            "!pip install -q -e .",
            "%mkdir -p checkpoints",
            "!wget -q -P checkpoints",
        ),
        kept_setup=("%cd mmpose",),
        patterns=(
            "mim install", "%%time setup", "pip install -e .", "%mkdir", "%cd", "research before setup",
            "inspection", "model loading",
        ),
    ),
    Case(
        name="sadtalker_python38",
        cells=(
            _code("""
                !apt-get update -qq
                !apt-get install -y -qq python3.8 python3.8-distutils python3.8-dev
                !update-alternatives --install /usr/local/bin/python3 python3 /usr/bin/python3.8 2
                !update-alternatives --install /usr/local/bin/python3 python3 /usr/bin/python3.10 1
                !curl -sS https://bootstrap.pypa.io/pip/3.8/get-pip.py | python3.8
                !python3 --version
            """),
            _code("""
                !git clone -q https://github.com/OpenTalker/SadTalker.git
                %cd SadTalker
                !python3.8 -m pip install -q torch==1.12.1+cu113 torchvision==0.13.1+cu113 torchaudio==0.12.1 --extra-index-url https://download.pytorch.org/whl/cu113
                !python3.8 -m pip install -q -r requirements.txt
                !bash scripts/download_models.sh
            """),
            Markdown("Upload a portrait, then animate it."),
            _code("""
                from google.colab import files
                portrait = next(iter(files.upload()))
            """),
            _code("""
                !python3.8 inference.py --driven_audio examples/driven_audio/chinese_news.wav --source_image {portrait} --result_dir results --enhancer gfpgan
            """),
            _code("""
                import glob
                from IPython.display import Video
                Video(sorted(glob.glob('results/*.mp4'))[-1], embed=True)
            """),
        ),
        setup=(
            "!apt-get update -qq",
            "!apt-get install -y -qq python3.8",
            "/usr/bin/python3.8 2",
            "/usr/bin/python3.10 1",
            "get-pip.py | python3.8",
            "!git clone -q https://github.com/OpenTalker/SadTalker.git",
            "%cd SadTalker",
            "!python3.8 -m pip install -q torch==",
            "!python3.8 -m pip install -q -r requirements.txt",
            "!bash scripts/download_models.sh",
        ),
        user=("portrait = next(iter(files.upload()))",),
        kept_setup=("%cd SadTalker",),
        patterns=(
            "python3.8 -m pip", "update-alternatives", "apt-get install", "%cd", "files.upload", "run a tool",
            "inspection",
        ),
    ),
    Case(
        name="drive_gdown_weights",
        cells=(
            _code("""
                from google.colab import drive
                drive.mount('/content/drive')
            """),
            _code("""
                !pip install -q gdown==5.2.0 timm==1.0.9
                !gdown --id 1Xq2lV0aH7bT9cKfJm3RzPwY6eN4uS8dC -O leafnet_weights.zip
                !unzip -q leafnet_weights.zip -d weights
                !cp /content/drive/MyDrive/datasets/leaves.zip /content/
                !unzip -q /content/leaves.zip -d data
            """),
            _code("""
                import glob
                import timm
                import torch
                model = timm.create_model('efficientnet_b0', num_classes=12)
                model.load_state_dict(torch.load('weights/leafnet_b0.pth', map_location='cpu'))
                images = sorted(glob.glob('data/leaves/*.jpg'))
                print(len(images), 'images')
            """),
        ),
        setup=("!pip install -q gdown", "!gdown --id", "!unzip -q leafnet_weights.zip"),
        user=("drive.mount(", "!cp /content/drive/MyDrive", "!unzip -q /content/leaves.zip"),
        patterns=("drive mount + cp", "gdown", "model loading", "imports of installed"),
    ),
    Case(
        name="libjpeg_env_ldconfig",
        cells=(
            Markdown("Build libjpeg-turbo from source (the decoder benchmark needs 3.x)."),
            _code("""
                %env LJT_VERSION=3.0.3
                %env CFLAGS=-O3 -fPIC
                !curl -sL https://github.com/libjpeg-turbo/libjpeg-turbo/archive/refs/tags/${LJT_VERSION}.tar.gz -o ljt.tar.gz && tar xzf ljt.tar.gz
                !cd libjpeg-turbo-${LJT_VERSION} && cmake -G"Unix Makefiles" -DCMAKE_INSTALL_PREFIX=/usr/local . > /dev/null && make -j4 > /dev/null && make install > /dev/null
                !ldconfig
            """),
            _code("""
                !ls /usr/local/lib | grep turbojpeg
                import ctypes
                tj = ctypes.CDLL('libturbojpeg.so.0')
                print('compress API present:', hasattr(tj, 'tj3Init'))
            """),
        ),
        setup=(
            "%env LJT_VERSION=",
            "%env CFLAGS=",
            "!curl -sL https://github.com/libjpeg-turbo",
            '!cd libjpeg-turbo-${LJT_VERSION} && cmake -G"Unix Makefiles"',
            "!ldconfig",
        ),
        kept_setup=("%env LJT_VERSION=", "%env CFLAGS="),
        patterns=("%env", "${VAR} env", "curl + tar", "cmake/make build", "ldconfig", "inspection"),
    ),
    Case(
        name="nvm_wget_pipe_bash",
        cells=(
            _code("""
                !wget -qO- https://raw.githubusercontent.com/nvm-sh/nvm/v0.39.7/install.sh | bash
                !bash -c "source ~/.nvm/nvm.sh && nvm install 20 > /dev/null && npm install -g @mermaid-js/mermaid-cli@10.9.1"
            """),
            _code('''
                diagram = """graph LR
                  v0[v0 notebook] --> build[build once]
                  build --> pack[(pack)]
                  pack --> v1[v1 notebook]"""
                open('flow.mmd', 'w').write(diagram)
            '''),
            _code("""
                !bash -c "source ~/.nvm/nvm.sh && mmdc -i flow.mmd -o flow.svg"
            """),
            _code("""
                from IPython.display import SVG
                SVG('flow.svg')
            """),
        ),
        setup=("nvm/v0.39.7/install.sh | bash", "nvm install 20"),
        patterns=("wget | bash", "run a tool", "plots/prints"),
    ),
    Case(
        name="detectron2_computed_reqs",
        cells=(
            _code("""
                import sys, os
                extras = ["pycocotools", "fvcore", "iopath"]
                pins = {"opencv-python-headless": "4.8.1.78", "shapely": "2.0.4"}
                reqs = extras + [f"{name}=={version}" for name, version in pins.items()]
                !pip install -q {' '.join(reqs)}
                !pip install -q 'git+https://github.com/facebookresearch/detectron2.git'
            """),
            _code("""
                import torch
                weights_url = 'https://github.com/example-lab/balloon-det/releases/download/v1/balloon_r50.zip'
                torch.hub.download_url_to_file(weights_url, 'balloon_r50.zip')
                !unzip -q -o balloon_r50.zip -d weights
            """),
            _code("""
                import detectron2
                from detectron2.utils.logger import setup_logger
                setup_logger()
                from detectron2 import model_zoo
                from detectron2.config import get_cfg
                from detectron2.engine import DefaultPredictor
            """),
            _code("""
                import cv2
                cfg = get_cfg()
                cfg.merge_from_file(model_zoo.get_config_file("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"))
                cfg.MODEL.ROI_HEADS.NUM_CLASSES = 1
                cfg.MODEL.WEIGHTS = "weights/model_final.pth"
                predictor = DefaultPredictor(cfg)
                outputs = predictor(cv2.imread("weights/sample.jpg"))
                print(outputs["instances"].pred_boxes)
            """),
        ),
        setup=(
            "!pip install -q {' '.join(reqs)}",
            "!pip install -q 'git+https://github.com/facebookresearch/detectron2.git'",
            "torch.hub.download_url_to_file(",
            "!unzip -q -o balloon_r50.zip",
        ),
        patterns=(
            "computed list in install", "{expr}", "pip install git+", "torch.hub download + unzip", "model loading",
            "imports of installed",
        ),
    ),
    Case(
        name="darknet_sed_threshold",
        cells=(
            _code("""
                !git clone -q https://github.com/AlexeyAB/darknet
                %cd darknet
                !sed -i -e 's/OPENCV=0/OPENCV=1/' -e 's/GPU=0/GPU=1/' -e 's/CUDNN=0/CUDNN=1/' Makefile
                !make -j4 > /dev/null
                !wget -q https://github.com/AlexeyAB/darknet/releases/download/yolov4/yolov4-tiny.weights
            """),
            _code("""
                #@title Detection settings
                threshold = 0.35 #@param {type:"slider", min:0.05, max:0.95, step:0.05}
                input_size = 416 #@param [320, 416, 608] {type:"raw"}
                !sed -i "s/^width=.*/width={input_size}/; s/^height=.*/height={input_size}/" cfg/yolov4-tiny.cfg
            """),
            _code("""
                !./darknet detector test cfg/coco.data cfg/yolov4-tiny.cfg yolov4-tiny.weights data/dog.jpg -thresh {threshold} -dont_show > /dev/null
                import cv2
                import matplotlib.pyplot as plt
                img = cv2.imread('predictions.jpg')
                plt.figure(figsize=(12, 8))
                plt.imshow(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
                plt.axis('off')
                plt.show()
            """),
        ),
        setup=(
            "!git clone -q https://github.com/AlexeyAB/darknet",
            "%cd darknet",
            "!sed -i -e 's/OPENCV=0",
            "!make -j4",
            "!wget -q https://github.com/AlexeyAB",
        ),
        user=('!sed -i "s/^width=',),
        kept_setup=("%cd darknet",),
        patterns=("sed config with form value", "cmake/make build", "%cd", "{expr}", "run a tool", "plots/prints"),
    ),
    Case(
        name="torch_cpu_index_url_form",
        cells=(
            _code("""
                #@title Pick versions
                torch_version = "2.3.1" #@param ["2.3.1", "2.2.2"]
                index = "https://download.pytorch.org/whl/cpu" #@param {type:"string"}
                !pip install -q torch==$torch_version --index-url $index
                !pip install -q "lightning==2.3.3" "torchmetrics>=1.4"
            """),
            _code("""
                import torch
                import lightning as L
                from torch import nn

                class TinyNet(L.LightningModule):
                    def __init__(self):
                        super().__init__()
                        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))

                    def training_step(self, batch, _):
                        x, y = batch
                        loss = nn.functional.mse_loss(self.net(x), y)
                        self.log("loss", loss)
                        return loss

                    def configure_optimizers(self):
                        return torch.optim.Adam(self.parameters(), lr=1e-2)
            """),
            _code("""
                x = torch.randn(256, 8)
                y = x.sum(dim=1, keepdim=True)
                loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
                trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False)
                trainer.fit(TinyNet(), loader)
                print(trainer.callback_metrics)
            """),
        ),
        setup=("torch==$torch_version --index-url", '"lightning==2.3.3"'),
        patterns=("--index-url", "form field in install", "$var", "imports of installed", "plots/prints"),
    ),
    Case(
        name="input_run_name_rich",
        cells=(
            _code("""
                %pip install -q rich==13.7.1 pyfiglet==1.0.2
            """),
            _code("""
                import os
                run_name = input("Name this run: ")
                os.environ["RUN_NAME"] = run_name
            """),
            _code("""
                import pyfiglet
                from rich.console import Console
                from rich.table import Table
                table = Table(title=os.environ["RUN_NAME"])
                table.add_column("step")
                table.add_column("loss", justify="right")
                for step, loss in enumerate([0.92, 0.61, 0.44, 0.39]):
                    table.add_row(str(step), f"{loss:.2f}")
                Console().print(table)
                print(pyfiglet.figlet_format("done"))
            """),
        ),
        setup=("%pip install -q rich",),
        user=("input(",),
        runnable=True,
        patterns=("input()", "imports of installed", "plots/prints"),
    ),
    Case(
        name="course_run_setup_script",
        cells=(
            Markdown("# Week 3: regression\nRun the first cell once; it fetches the course data."),
            _code("""
                %env COURSE_DATA=/content/course_data
                !wget -q https://raw.githubusercontent.com/example-lab/ml-course/main/colab/install_colab.py -O install_colab.py
                %run install_colab.py --week 3
            """),
            _code("""
                import os
                import pandas as pd
                df = pd.read_csv(os.path.join(os.environ["COURSE_DATA"], "week3", "housing.csv"))
                df.describe()
            """),
            _code("""
                !ls -lh $COURSE_DATA/week3
            """),
        ),
        setup=("%env COURSE_DATA=", "!wget -q https://raw.githubusercontent.com/example-lab", "%run install_colab.py"),
        kept_setup=("%env COURSE_DATA=",),
        patterns=("%run setup script", "%env", "inspection", "plots/prints"),
    ),
    Case(
        name="pip_form_versions_mkdir",
        cells=(
            _code("""
                #@title Dependencies
                TABULATE_VERSION = "0.9.0" #@param {type:"string"}
                extras = ["python-dateutil==2.9.0.post0", "pytz"]
                %pip install -q "tabulate==$TABULATE_VERSION" {" ".join(extras)}
                %mkdir -p /content/outputs
            """),
            _code("""
                from datetime import datetime
                from dateutil import tz
                from tabulate import tabulate
                now = datetime.now(tz.gettz("Europe/Paris"))
                rows = [("run", now.isoformat(timespec="seconds")), ("tabulate", TABULATE_VERSION)]
                print(tabulate(rows, tablefmt="github"))
                open("/content/outputs/summary.md", "w").write(tabulate(rows, tablefmt="github"))
            """),
        ),
        setup=('%pip install -q "tabulate==$TABULATE_VERSION"', "%mkdir -p /content/outputs"),
        nbformat_minor=5,
        runnable=True,
        patterns=("form field in install", "$var", "{expr}", "computed list in install", "%mkdir", "plots/prints"),
    ),
)
