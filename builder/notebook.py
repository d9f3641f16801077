"""v0 notebook -> recipe + v1 notebook: setup cells become recipe steps and one restore cell.

    cells --classify--> setup | research | mixed      (every code cell, in order)
    setup cells   -> install steps of OUT/pack.toml   (`%pip` -> `python -m pip`, `!cmd` -> cmd,
                                                       %%bash/%%sh bodies, subprocess/os.system calls,
                                                       each prefixed with `cd DIR` where %cd moved)
    v1.ipynb      =  v0 with the first setup cell replaced by ONE restore cell and the other setup
                     cells removed (a removed cell that changed directory leaves a `%cd DIR` cell);
                     research, mixed and markdown cells are kept exactly as they were

A shell command is setup when its program installs, downloads or builds (pip, apt-get, conda,
wget, curl, git clone, make, tar, mkdir, ...); inspection commands (ls, nvidia-smi, pip show, ...)
go along with either kind; anything else (running a tool, `python train.py`) is research. A cell
with both is *mixed*: kept as it was and reported, its commands not in the recipe. A cell can be
forced either way with the tags `prebake-setup` / `prebake-keep`. Python interpolation in a shell
command (`!wget {url}`) cannot be translated: that cell is kept and reported too.

Used by `prebake notebook`; the restore path never imports this module (it needs nbformat).
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from . import settings
from .errors import UsageError

START_DIR = "/content"  # where Colab (and the builder's steps) start
HOME = "/root"
DEFAULT_ROOTS = ("/usr", "/opt", "/etc", "/var/lib/dpkg", "/root", "/content")
DEFAULT_SOURCE = "prebake.lock"
TAG_SETUP, TAG_KEEP = "prebake-setup", "prebake-keep"

# Programs whose run installs, downloads or builds something: setup.
_SETUP_PROGRAMS = {
    "pip", "pip3", "conda", "mamba", "micromamba", "apt", "apt-get", "aptitude", "dpkg", "add-apt-repository",
    "wget", "curl", "gdown", "aria2c", "git", "svn", "hg", "make", "cmake", "ninja", "meson", "configure",
    "tar", "unzip", "gunzip", "bunzip2", "unxz", "7z", "zstd", "mkdir", "cp", "mv", "ln", "rm", "chmod", "chown",
    "install", "ldconfig", "npm", "yarn", "cargo", "go", "rustup", "uv", "pipx", "poetry", "gcc", "g++", "cc",
    "c++", "nvcc", "huggingface-cli", "kaggle", "rsync", "touch", "sed", "tee", "update-alternatives", "pushd",
    "popd", "cd", "export", "source", ".", "sh", "bash",
}
# Programs that only look: harmless in a setup cell, not setup on their own.
_NEUTRAL_PROGRAMS = {
    "ls", "cat", "head", "tail", "echo", "printf", "pwd", "nvidia-smi", "nvcc --version", "df", "du", "free",
    "which", "whereis", "nproc", "lscpu", "uname", "env", "printenv", "wc", "file", "tree", "date", "true", ":",
    "whoami", "id", "hostname", "sleep", "stat",
}
_PIP_LOOKS = {"show", "list", "freeze", "--version", "-V", "check", "inspect"}
_PY_SETUP_MODULES = {"pip", "spacy", "nltk.downloader", "ensurepip", "venv", "conda"}
_SHELL_MAGICS = {"bash", "sh", "shell", "script"}
_SUBPROCESS_CALLS = {"run", "call", "check_call", "check_output", "Popen", "getoutput", "getstatusoutput"}
_INTERPOLATION = re.compile(r"(?<![$\\]){[A-Za-z_][^{}\s]*}")


@dataclass
class Command:
    """One translated shell command of a setup cell."""

    run: str
    kind: str  # setup | neutral | other


@dataclass
class CellPlan:
    index: int  # position in the notebook's cells
    number: int  # 1-based code-cell number, as users count
    kind: str  # setup | research | mixed
    commands: list[Command] = field(default_factory=list)
    cwd_before: str = START_DIR
    cwd_after: str = START_DIR
    env: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    first_line: str = ""


@dataclass
class Conversion:
    """What `convert` found and produced."""

    name: str
    cells: list[CellPlan]
    recipe_text: str
    v1: object  # nbformat.NotebookNode

    @property
    def setup(self) -> list[CellPlan]:
        return [c for c in self.cells if c.kind == "setup"]

    @property
    def mixed(self) -> list[CellPlan]:
        return [c for c in self.cells if c.kind == "mixed"]

    def report(self) -> str:
        lines = [f"setup cells (now in the recipe and replaced by one restore cell): "
                 f"{', '.join(str(c.number) for c in self.setup)}"]
        for cell in self.setup:
            lines.append(f"  cell {cell.number}: {cell.first_line}")
        for cell in self.mixed:
            lines.append(f"kept cell {cell.number} as it was, not in the recipe: {cell.reason} ({cell.first_line})")
        return "\n".join(lines)


# ---------------------------------------------------------------- reading


def read(path: Path):
    """The notebook at `path` (nbformat v4), or a one-line UsageError."""
    import nbformat

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        msg = f"cannot read notebook {path}: {e.strerror or e}"
        raise UsageError(msg) from e
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        msg = f"{path} is not a notebook: invalid JSON at line {e.lineno} column {e.colno} ({e.msg})"
        raise UsageError(msg) from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as e:  # nbformat raises several unrelated types for malformed notebooks
        msg = f"{path} is not a notebook nbformat can read: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        raise UsageError(msg) from None
    return nb


# ---------------------------------------------------------------- classifying shell commands


def _simple_commands(command: str) -> list[list[str]]:
    """The simple commands of a shell line, split on && || ; | (best effort: shlex, no expansions)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:
        return [command.split()]
    commands, current = [], []
    for token in tokens:
        if token and set(token) <= set(";&|()"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


def _program_kind(words: list[str]) -> str:
    while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in ("sudo", "time", "nohup", "env")):
        words = words[1:]
    if not words:
        return "neutral"
    program = words[0].rsplit("/", 1)[-1]
    if program in ("pip", "pip3") and len(words) > 1 and words[1] in _PIP_LOOKS:
        return "neutral"
    if re.match(r"^python[0-9.]*$", program):
        if len(words) > 1 and words[1] in ("--version", "-V"):
            return "neutral"
        if len(words) > 2 and words[1] == "-m":
            if words[2] == "pip" and len(words) > 3 and words[3] in _PIP_LOOKS:
                return "neutral"
            return "setup" if words[2] in _PY_SETUP_MODULES else "other"
        if len(words) > 1 and words[1].endswith("setup.py"):
            return "setup"
        return "other"
    if program == "git" and len(words) > 1 and words[1] in ("status", "log", "diff", "show", "rev-parse"):
        return "neutral"
    if program in _SETUP_PROGRAMS:
        return "setup"
    if program in _NEUTRAL_PROGRAMS:
        return "neutral"
    return "other"


def shell_kind(command: str) -> str:
    """setup if any simple command in it installs/downloads/builds; else other if any runs a tool."""
    kinds = {_program_kind(words) for words in _simple_commands(command)}
    if kinds <= {"neutral"} and re.search(r">>?\s*(?!/dev/null|&)[^\s>&]", command):
        kinds = {"setup"}  # `echo ... > file` writes a file
    return "setup" if "setup" in kinds else "other" if "other" in kinds else "neutral"


def _drop_sudo(command: str) -> str:
    """Colab runs as root and so do build steps: `sudo cmd` -> `cmd` at the start of each command."""
    return re.sub(r"(^|[;&|]\s*)sudo\s+(-\S+\s+)*", r"\1", command)


# ---------------------------------------------------------------- classifying a cell


class _Unclassifiable(Exception):
    pass


def _literal(node: ast.AST) -> str | list[str]:
    """A string or list of strings from a literal (sys.executable counts as 'python')."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.executable":
        return "python"
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(item) for item in node.elts]
        if all(isinstance(i, str) for i in items):
            return items  # type: ignore[return-value]
    raise _Unclassifiable(f"`{ast.unparse(node)}` is not a literal command")


def _python_statement(stmt: ast.stmt) -> tuple[str, str] | None:
    """('shell', cmd) / ('cd', dir) / ('neutral', '') for a statement a setup cell may hold; None if research."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        modules = [a.name for a in stmt.names] if isinstance(stmt, ast.Import) else [stmt.module or ""]
        return ("neutral", "") if all(m in ("os", "subprocess", "sys", "shutil", "shlex") for m in modules) else None
    if not isinstance(stmt, ast.Expr) or not isinstance(stmt.value, ast.Call):
        return None
    call = stmt.value
    name = ast.unparse(call.func)
    try:
        if name in ("os.system",) or (name.startswith("subprocess.") and name.split(".", 1)[1] in _SUBPROCESS_CALLS):
            if not call.args:
                return None
            value = _literal(call.args[0])
            return "shell", value if isinstance(value, str) else shlex.join(value)
        if name == "os.chdir" and call.args:
            value = _literal(call.args[0])
            return ("cd", value) if isinstance(value, str) else None
        if name == "os.makedirs" and call.args:
            value = _literal(call.args[0])
            return ("shell", f"mkdir -p {shlex.quote(value)}") if isinstance(value, str) else None
        if name == "print" and all(isinstance(a, ast.Constant) for a in call.args):
            return "neutral", ""
    except _Unclassifiable:
        return None
    return None


def _logical_lines(source: str) -> list[tuple[int, str]]:
    """(line number, text) with backslash continuations of top-level magics joined."""
    out: list[tuple[int, str]] = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        text, start = lines[i], i
        if text.startswith(("!", "%")):
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
        out.append((start, text))
        i += 1
    return out


def _resolve(cwd: str, target: str) -> str:
    target = target.strip()
    if target in ("", "~"):
        return HOME
    if target.startswith("~/"):
        target = HOME + target[1:]
    return posixpath.normpath(posixpath.join(cwd, target))


def classify(cell, index: int, number: int, cwd: str) -> CellPlan:
    """Classify one code cell, translating its setup commands (run in `cwd`)."""
    source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
    plan = CellPlan(index, number, "research", cwd_before=cwd, cwd_after=cwd,
                    first_line=next((line.strip() for line in source.splitlines() if line.strip()), "")[:80])
    tags = set(cell.get("metadata", {}).get("tags", []))
    try:
        _classify(source, plan)
    except _Unclassifiable as e:
        plan.kind, plan.reason, plan.commands = "mixed", str(e), []
    kinds = {c.kind for c in plan.commands}
    if plan.kind != "mixed":
        if "other" in kinds and "setup" in kinds:
            plan.kind = "mixed"
            plan.reason = "it mixes setup with research (" + next(c.run for c in plan.commands if c.kind == "other")[:60] + ")"
        elif "setup" in kinds and "other" not in kinds:
            plan.kind = "setup"
        else:
            plan.kind = "research"
    if TAG_KEEP in tags:
        plan.kind, plan.reason = "research", ""
    elif TAG_SETUP in tags:
        if plan.kind == "mixed" and not plan.commands:
            msg = f"cell {number} is tagged {TAG_SETUP} but cannot be translated: {plan.reason}"
            raise UsageError(msg)
        plan.kind = "setup"
    if plan.kind != "setup":
        plan.commands = []
    return plan


def _classify(source: str, plan: CellPlan) -> None:
    stripped = source.lstrip()
    first, _, body = stripped.partition("\n")
    if first.startswith("%%capture"):
        return _classify(body, plan)
    if first.startswith("%%"):
        magic = first[2:].split()
        if magic and magic[0] in _SHELL_MAGICS:
            if magic[0] == "script" and (len(magic) < 2 or magic[1] not in ("bash", "sh")):
                plan.commands.append(Command(stripped, "other"))
                return None
            if _INTERPOLATION.search(body) and magic[0] == "shell":
                raise _Unclassifiable("its shell commands use Python values ({...})")
            kind = "setup" if any(shell_kind(line) == "setup" for line in body.splitlines() if line.strip()) else "other"
            plan.commands.append(Command(_in_dir(plan.cwd_after, _drop_sudo(body.strip("\n"))), kind))
            return None
        plan.commands.append(Command(first, "other"))
        return None
    python: list[str] = []
    for _, line in _logical_lines(source):
        text = line.strip()
        if not line.startswith(("!", "%")):
            python.append(line)
            continue
        python.append("")  # keeps line numbers of the Python around it
        _python_chunk(python, plan)
        python = []
        if text.startswith("!"):
            command = text[1:].strip()
            if command.startswith("!"):
                command = command[1:].strip()
            if _INTERPOLATION.search(command):
                raise _Unclassifiable(f"`{text[:60]}` uses Python values")
            _shell(command, plan)
        elif text.startswith("%"):
            _line_magic(text, plan)
    _python_chunk(python, plan)
    return None


def _python_chunk(lines: list[str], plan: CellPlan) -> None:
    code = "\n".join(lines)
    if not code.strip():
        return
    try:
        tree = ast.parse(code)
    except SyntaxError:
        plan.commands.append(Command(code.strip().splitlines()[0], "other"))
        return
    for stmt in tree.body:
        found = _python_statement(stmt)
        if found is None:
            plan.commands.append(Command(ast.unparse(stmt).splitlines()[0], "other"))
        elif found[0] == "shell":
            _shell(found[1], plan)
        elif found[0] == "cd":
            plan.cwd_after = _resolve(plan.cwd_after, found[1])


def _shell(command: str, plan: CellPlan) -> None:
    command = _drop_sudo(command)
    plan.commands.append(Command(_in_dir(plan.cwd_after, command), shell_kind(command)))


def _line_magic(text: str, plan: CellPlan) -> None:
    name, _, args = text[1:].partition(" ")
    args = args.strip()
    if name in ("pip", "conda", "mamba"):
        command = f"python -m pip {args}" if name == "pip" else f"{name} {args}"
        kind = "neutral" if name == "pip" and args.split()[:1] and args.split()[0] in _PIP_LOOKS else "setup"
        plan.commands.append(Command(_in_dir(plan.cwd_after, command), kind))
    elif name == "cd":
        words = [w for w in shlex.split(args) if w != "-q"] if args else []
        if words and words[0].startswith("-"):
            raise _Unclassifiable(f"`{text}` (only `%cd DIR` is translated)")
        plan.cwd_after = _resolve(plan.cwd_after, words[0] if words else "")
    elif name in ("env", "set_env"):
        var, sep, value = args.partition("=") if "=" in args else args.partition(" ")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", var.strip()):
            plan.commands.append(Command(text, "neutral"))
            return
        plan.env[var.strip()] = value.strip()
        plan.commands.append(Command(f"export {var.strip()}={shlex.quote(value.strip())}", "neutral"))
    elif name in ("sx", "system"):
        _shell(args, plan)
    else:
        plan.commands.append(Command(text, "other"))  # %matplotlib, %time, %load_ext ...: research


def _in_dir(cwd: str, command: str) -> str:
    return command if cwd == START_DIR else f"cd {shlex.quote(cwd)}\n{command}"


# ---------------------------------------------------------------- writing


def _toml_string(text: str) -> str:
    if "\n" in text and "'''" not in text and not text.endswith("'") and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text):
        return "'''\n" + text + "'''"
    return json.dumps(text, ensure_ascii=False)


def recipe_text(name: str, cells: list[CellPlan], *, runtime: str, source: str, prepare: tuple[str, ...] = (),
                check: str | None = None, roots: tuple[str, ...] = DEFAULT_ROOTS) -> str:
    steps: list[tuple[str, str]] = []
    env: dict[str, str] = {}
    for cell in cells:
        if cell.kind != "setup":
            continue
        env.update(cell.env)
        runs = [c.run for c in cell.commands if c.kind != "neutral"]  # inspection and %env: not steps
        for i, run in enumerate(runs):
            steps.append((f"cell {cell.number}" + (f" #{i + 1}" if len(runs) > 1 else ""), run))
    prepare = tuple(prepare)
    uses_apt = any(re.search(r"(^|[\s;&|])(apt|apt-get)\s+(-\S+\s+)*install\b", run) for _, run in steps)
    if uses_apt and not any("apt-get update" in p or "apt update" in p for p in prepare):
        prepare = ("apt-get update -q", *prepare)
    out = [f"# Made by `prebake notebook {source}` from its setup cells; edit freely.",
           "# Build: prebake build pack.toml -o packs   (or `prebake notebook ... --build`)",
           f"name = {json.dumps(name)}", 'version = "1"', f"runtime = {json.dumps(runtime)}"]
    if prepare:
        out.append("# Run before the steps and not packed: the mirror image lacks what Colab has (apt lists, compilers).")
        out.append("prepare = [" + ", ".join(_toml_string(p) for p in prepare) + "]")
    out.append("install = [")
    for label, run in steps:
        out.append(f"  {{ name = {json.dumps(label)}, run = {_toml_string(run)} }},")
    out.append("]")
    if check:
        out.append(f"check = {_toml_string(check)}")
    out += ["", "[capture]", "roots = [" + ", ".join(json.dumps(r) for r in roots) + "]"]
    if env:
        out += ["", "[env.set]"] + [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in env.items()]
    return "\n".join(out) + "\n"


def restore_cell_source(setup: list[CellPlan], source: str, cwd: str) -> str:
    numbers = ", ".join(str(c.number) for c in setup)
    lines = [
        f"# prebake: v0's setup cells ({numbers}) restored from the pack they built (see pack.toml).",
        "try:",
        "    from prebake import restore",
        "except ImportError:  # a fresh runtime: one small wheel",
        "    import subprocess, sys",
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"prebake\"], check=True)",
        "    from prebake import restore",
        f"restore({source!r})  # shows what it restored; errors are one line with the fix",
    ]
    if cwd != START_DIR:
        lines.append(f"%cd {cwd}")
    return "\n".join(lines)


def slug(text: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return (name or "notebook")[:64]


def convert(nb, *, name: str, source_label: str, runtime: str = settings.RUNTIME.default, restore_source: str = DEFAULT_SOURCE,
            prepare: tuple[str, ...] = (), check: str | None = None, roots: tuple[str, ...] = DEFAULT_ROOTS) -> Conversion:
    """Classify every code cell, write the recipe text and the v1 notebook (a copy; `nb` is unchanged)."""
    import copy

    import nbformat

    from .recipe import parse

    cells: list[CellPlan] = []
    cwd, number = START_DIR, 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        number += 1
        plan = classify(cell, index, number, cwd)
        cells.append(plan)
        cwd = plan.cwd_after
    setup = [c for c in cells if c.kind == "setup"]
    if not setup:
        mixed = [c for c in cells if c.kind == "mixed"]
        hint = f" (cells {', '.join(str(c.number) for c in mixed)} mix setup with research: split them, or tag the setup part {TAG_SETUP})" if mixed else ""
        msg = f"{source_label} has no setup cells (no pip/apt/conda installs, downloads or builds found){hint}; no pack to make"
        raise UsageError(msg)
    text = recipe_text(name, cells, runtime=runtime, source=source_label, prepare=prepare, check=check, roots=roots)
    parse(text, f"the recipe made from {source_label}")  # what we write must be a valid recipe

    # The setup cells before the first research cell fold into the restore cell (their directory
    # changes become its last line); a later setup cell that changed directory leaves a `%cd` cell.
    leading = []
    for plan in cells[cells.index(setup[0]):]:
        if plan.kind != "setup":
            break
        leading.append(plan)
    v1 = copy.deepcopy(nb)
    by_index = {c.index: c for c in setup}
    new_cells = []
    for index, cell in enumerate(v1.cells):
        plan = by_index.get(index)
        if plan is None:
            new_cells.append(cell)
        elif plan is setup[0]:
            restore = nbformat.v4.new_code_cell(restore_cell_source(setup, restore_source, leading[-1].cwd_after))
            restore.metadata["tags"] = ["prebake-restore"]
            new_cells.append(restore)
        elif plan not in leading and plan.cwd_after != plan.cwd_before:
            new_cells.append(nbformat.v4.new_code_cell(f"# prebake: setup cell {plan.number} changed directory here\n%cd {plan.cwd_after}"))
    v1.cells = new_cells
    for cell in v1.cells:
        if cell.cell_type == "code" and "id" not in cell and v1.nbformat_minor >= 5:
            cell["id"] = nbformat.v4.new_code_cell().id
    return Conversion(name, cells, text, v1)


def write(conversion: Conversion, out: Path) -> tuple[Path, Path]:
    import nbformat

    from ._fs import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    recipe_path, v1_path = out / "pack.toml", out / "v1.ipynb"
    atomic_write(recipe_path, conversion.recipe_text.encode())
    atomic_write(v1_path, (nbformat.writes(conversion.v1) + "\n").encode())
    return recipe_path, v1_path
