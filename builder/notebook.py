"""v0 notebook -> recipe + v1 notebook, statement by statement.

Each code cell is read as IPython reads it (its own input transformer turns `!cmd`, `%magic`,
`%%cell magic`, `$var` and `{expr}` into the calls IPython makes) and split into top-level Python
statements. Each statement gets a kind and the reason for it:

    setup       installs, downloads or builds (pip in all spellings, apt, conda/mamba, mim,
                wget/curl/gdown, git clone + make/cmake, torch.hub downloads, ...), also
                under if/try/for and through os.system or subprocess: runs at build time and leaves
                v1, unless it binds a name that kept code uses (then it stays in v1 too). Two kinds
                of setup never run: conda/mamba/micromamba installs go to the recipe's [conda]
                table (an environment prebake builds at /opt/envs/NAME and restores in the running
                kernel), and condacolab's own statements are dropped (prebake replaces it: no
                Miniforge over /usr/local, no kernel restart); a conda command the table cannot
                hold stays a setup step, and condacolab then stays in the build to provide conda
    definition  imports, functions, constants and form fields, %cd, %env, sys.path: stays in v1;
                those before the last setup statement also run at build time (setup uses them)
    needs-user  drive.mount and what reads the user's Drive, files.upload, input(), logins and
                tokens, the user's own data by a form URL: stays in v1, never runs at build time
    research    everything else: stays in v1

Outputs (`write`): OUT/pack.toml runs OUT/setup.ipynb (the build statements, one cell each, in
order) with OUT/run_setup.py (setup_runner.py) in one IPython shell inside the build, so
interpolation, control flow, %cd and the variables the setup defines behave as in Colab;
OUT/v1.ipynb is v0 less the statements that left, with one restore cell first, in v0's nbformat
version; OUT/report.md says where every statement went and why. The [conda] environment is a
recipe of its own (a pack with [conda] holds its environment only): OUT/pack.toml when the setup is
all conda installs and condacolab, else OUT/conda.toml beside the setup's pack.toml; the environment
file it names (one the notebook writes with %%writefile) is written next to them. Cells tagged
`prebake-setup` or `prebake-keep` are taken whole as setup or as research.

Used by `prebake notebook`; the restore path never imports this module (nbformat, IPython).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import json
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import settings
from .errors import UsageError
from .recipe import conda_prefix
from .setup_runner import IPYTHON_DIR

START_DIR = "/content"  # where Colab (and the setup runner) start
DEFAULT_ROOTS = ("/usr", "/opt", "/etc", "/var/lib/dpkg", "/root", "/content")
DEFAULT_SOURCE = "prebake.lock"
TAG_SETUP, TAG_KEEP = "prebake-setup", "prebake-keep"
BUILD_DIR = "/tmp/prebake-notebook"  # where the build finds setup.ipynb and run_setup.py (not captured)

# Programs whose run installs, downloads or builds something: setup.
_SETUP_PROGRAMS = {
    "pip", "pip3", "conda", "mamba", "micromamba", "apt", "apt-get", "aptitude", "dpkg", "add-apt-repository",
    "wget", "curl", "gdown", "aria2c", "git", "svn", "hg", "make", "cmake", "ninja", "meson", "configure",
    "tar", "unzip", "gunzip", "bunzip2", "unxz", "7z", "zstd", "mkdir", "cp", "mv", "ln", "rm", "chmod", "chown",
    "install", "ldconfig", "npm", "yarn", "cargo", "go", "rustup", "uv", "pipx", "poetry", "gcc", "g++", "cc",
    "c++", "nvcc", "huggingface-cli", "kaggle", "rsync", "touch", "sed", "tee", "update-alternatives", "mim",
}
# Programs that only look: harmless in a setup cell, not setup on their own.
_NEUTRAL_PROGRAMS = {
    "ls", "cat", "head", "tail", "echo", "printf", "pwd", "nvidia-smi", "nvcc --version", "df", "du", "free",
    "which", "whereis", "nproc", "lscpu", "uname", "env", "printenv", "wc", "file", "tree", "date", "true", ":",
    "whoami", "id", "hostname", "sleep", "stat", "set", "cd", "pushd", "popd", "export", "source", ".",
}
# Installers: a form value in their arguments picks a version or a branch, not the user's own data.
_INSTALLERS = {"pip", "pip3", "conda", "mamba", "micromamba", "apt", "apt-get", "git", "mim", "uv"}
_CONDA_PROGRAMS = {"conda", "mamba", "micromamba"}
_CONDA_LOOKS = {"list", "info", "search", "env list", "config --show"}
# conda options with a value: channels are kept, base / /usr/local (condacolab's) are where the table
# installs anyway, -f names an environment file, the solver does not change what is installed.
_CONDA_VALUE_OPTIONS = {"-c", "--channel", "-n", "--name", "-p", "--prefix", "-f", "--file", "--solver",
                        "--experimental-solver"}
_CONDA_FLAGS = {"-y", "--yes", "-q", "--quiet", "-v", "--verbose", "--prune", "--freeze-installed", "--no-update-deps",
                "--update-deps", "--strict-channel-priority", "--force-reinstall"}
CONDA_RECIPE = "conda.toml"  # OUT's recipe of the [conda] environment when pack.toml runs setup as well
_CONDACOLAB = ("prebake replaces condacolab (no Miniforge over /usr/local, no kernel restart: the recipe's [conda] "
               "environment is restored in the running kernel)")
_CONDACOLAB_BIN = re.compile(r"/usr/local/bin/[\w.+-]+")
_NULL_REDIRECT = re.compile(r"\s*(?:\d?>>?|&>)\s*(?:/dev/null|&\d)")
_USER_DATA_PROGRAMS = {"yt-dlp", "youtube-dl", "youtube_dl"}
# Setup programs that only move files about: setup before the research, research's own after it.
_FILE_PROGRAMS = {"tar", "unzip", "gunzip", "bunzip2", "unxz", "7z", "zstd", "mkdir", "cp", "mv", "ln", "rm", "chmod",
                  "chown", "install", "rsync", "touch", "sed", "tee", "zip"}
_PIP_LOOKS = {"show", "list", "freeze", "--version", "-V", "check", "inspect"}
_PY_SETUP_MODULES = {"pip", "spacy", "nltk.downloader", "ensurepip", "venv", "conda", "mim"}
_SHELL_MAGICS = {"bash", "sh", "shell"}
_PREFIXES = {"sudo", "time", "nohup", "env", "timeout", "nice", "stdbuf", "xargs", "exec"}
_SHELL_KEYWORDS = {"if", "elif", "fi", "for", "done", "while", "until", "case", "esac", "[", "[[", "test", "}"}
# Scripts whose name says they set up: `bash install.sh`, `python download_models.py`, `%run setup_colab.py`.
_SETUP_SCRIPT = re.compile(r"(^|[_.-])(install|setup|build|download|prepare|deps|requirements|fetch)([_.-]|$)|^get-pip\.",
                           re.I)
# Files that hold someone's credentials: a command that moves or reads one needs that person.
_CREDENTIAL_FILE = re.compile(r"^(kaggle\.json|credentials.*|client_secrets?.*|token.*\.json|.*\.pem|\.netrc|\.env)$", re.I)
_WRAPPING_MAGICS = {"time", "timeit", "capture", "prun"}  # %%time over a setup cell is still setup
_SUBPROCESS_CALLS = {"run", "call", "check_call", "check_output", "Popen", "getoutput", "getstatusoutput"}

# Python calls, matched on the end of their dotted name.
_SETUP_CALLS = ("pip.main", "download_url_to_file", "urlretrieve", "wget.download", "gdown.download",
                "gdown.download_folder", "gdown.cached_download", "hf_hub_download", "snapshot_download",
                "nltk.download", "spacy.cli.download", "utils.get_file", "unpack_archive", "extractall")
_USER_CALLS = ("drive.mount", "files.upload", "auth.authenticate_user", "userdata.get", "notebook_login",
               "interpreter_login", "huggingface_hub.login", "wandb.login", "getpass", "kagglehub.login")
_USER_BUILTINS = {"input", "getpass", "login"}
_STATE_CALLS = ("os.chdir", "sys.path.append", "sys.path.insert", "sys.path.extend", "os.environ.update",
                "os.environ.setdefault", "os.putenv", "warnings.filterwarnings", "logging.basicConfig", "plt.style.use",
                "torch.manual_seed", "random.seed", "np.random.seed", "set_seed")
# Calls that make folders: setup-like file steps (kept as setup before the research, research after it).
_FILE_CALLS = ("os.makedirs", "os.mkdir", ".mkdir")
_NEUTRAL_CALLS = ("print", "open", "close", "items", "keys", "values", "get", "append", "extend", "lower", "upper", "len", "str", "int", "float", "bool", "list", "dict", "set", "tuple", "range",
                  "sorted", "enumerate", "zip", "exists", "isfile", "isdir", "os.path.join", "join", "basename",
                  "dirname", "splitext", "abspath", "expanduser", "Path", "os.getcwd", "os.listdir", "glob",
                  "glob.glob", "os.getenv", "os.environ.get", "format", "split", "strip", "replace", "startswith",
                  "endswith", "is_available", "display", "Markdown", "HTML", "time.time", "time.sleep")
_USER_PATHS = ("/content/drive", "/gdrive/", "/content/gdrive")
_FORM_FIELD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]*)?=.*#\s*@param", re.M)
_SHELL_NAMES = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)|\{([^{}]+)\}")


@dataclass(frozen=True)
class CondaPart:
    """What statements add to the recipe's [conda] table: match specs and channels in order, and an
    environment file the notebook writes (%%writefile), with its text."""

    channels: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    file: str | None = None
    file_text: str = ""

    @property
    def adds(self) -> bool:
        return bool(self.packages or self.file)


def _merged(parts: list[CondaPart]) -> CondaPart:
    """Parts as one: channels and packages in order, each once; the environment file (one at most)."""
    with_file = next((p for p in parts if p.file), CondaPart())
    return CondaPart(tuple(dict.fromkeys(c for p in parts for c in p.channels)),
                     tuple(dict.fromkeys(spec for p in parts for spec in p.packages)),
                     with_file.file, with_file.file_text)


@dataclass
class Statement:
    """One top-level statement of a v0 code cell and where it goes."""

    cell: int  # 1-based code-cell number, as users count
    first_line: int  # 1-based, inclusive, in the cell's source
    last_line: int
    kind: str  # setup | definition | needs-user | research
    reason: str
    source: str  # the v0 text, which the build runs through IPython again
    in_build: bool = False
    in_v1: bool = True
    binds: frozenset[str] = frozenset()
    uses: frozenset[str] = frozenset()
    conda: CondaPart | None = None  # setup the recipe's [conda] table takes over: it never runs

    @property
    def lines(self) -> str:
        return str(self.first_line) if self.first_line == self.last_line else f"{self.first_line}-{self.last_line}"

    @property
    def went(self) -> str:
        if self.conda is not None:
            where = "[conda]" if self.conda.adds else "dropped"
            return f"{where} and v1" if self.in_v1 else where
        if self.in_build and self.in_v1:
            return "build and v1"
        return "build" if self.in_build else "v1"


@dataclass
class Conversion:
    """What `convert` found and produced."""

    name: str
    statements: list[Statement]
    recipes: dict[str, str]  # file name in OUT -> recipe text (see `recipes`)
    setup_notebook: object  # nbformat.NotebookNode: the build statements, one cell each
    v1: object  # nbformat.NotebookNode
    source_label: str = ""

    @property
    def built(self) -> list[Statement]:
        return [s for s in self.statements if s.in_build]

    def report(self) -> str:
        """Where every statement went and why, as a Markdown table; then where the programs that v1
        runs from condacolab's /usr/local/bin are now."""
        setup = [s for s in self.statements if s.kind == "setup" and s.in_build]
        conda = sum(1 for s in self.statements if s.conda is not None)
        rows = [f"# {self.source_label}: {len(setup)} setup statement(s) in the build, "
                + (f"{conda} taken over by the [conda] environment, " if conda else "")
                + f"{sum(1 for s in self.statements if s.in_v1)} statement(s) kept in v1", "",
                "| cell | line | kind | went to | why |", "|---|---|---|---|---|"]
        for s in self.statements:
            rows.append(f"| {s.cell} | {s.lines} | {s.kind} | {s.went} | {s.reason.replace('|', '/')} |")
        if conda_table(self.statements):
            bin_dir = f"{conda_prefix(self.name)}/bin"
            notes = [f"- cell {s.cell} line {s.lines} runs `{path}`: condacolab installed the environment's programs "
                     f"under /usr/local; they are now under {bin_dir} and on PATH after the restore (the line is "
                     "left as it is)"
                     for s in self.statements if s.in_v1 for path in dict.fromkeys(_CONDACOLAB_BIN.findall(s.source))]
            if CONDA_RECIPE in self.recipes:
                notes.insert(0, f"- the [conda] environment is a pack of its own, {CONDA_RECIPE} (a pack with [conda] "
                                "holds its environment only): build it too and put both packs in the lock")
            rows += ["", *notes] if notes else []
        return "\n".join(rows)


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


def _program(words: list[str]) -> str:
    return words[0].rsplit("/", 1)[-1] if words else ""


def _command_words(words: list[str]) -> list[str]:
    """A simple command from its program on: without VAR=value, prefixes (sudo, time, env, ...) and
    the shell words before it (`...; then git clone ...; fi`)."""
    while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in _PREFIXES):
        words = words[2:] if words[0] == "timeout" and len(words) > 1 else words[1:]
        while words and words[0].startswith("-") and len(words) > 1:  # nice -n 10, xargs -r, stdbuf -oL
            words = words[1:]
    while words and words[0] in ("then", "do", "else", "{", "!"):
        words = words[1:]
    return words


def _program_kind(words: list[str]) -> str:
    words = _command_words(words)
    if not words or words[0] in _SHELL_KEYWORDS:  # if/for/while heads, [ tests ], fi, done
        return "neutral"
    program = _program(words)
    if re.match(r"^\{sys\.executable\}$|^\$PYTHON$", program) or re.match(r"^pip[0-9.]*$", program):
        program = "python" if "{" in program or "$" in program else "pip"
    if program in ("source", ".") and len(words) > 1:
        return "setup" if _SETUP_SCRIPT.search(words[1].rsplit("/", 1)[-1]) else "neutral"
    if program.endswith(".sh") and _SETUP_SCRIPT.search(program):
        return "setup"
    if program in ("Rscript", "R", "julia") and re.search(r"install\.packages|Pkg\.add|BiocManager::install", " ".join(words)):
        return "setup"
    if program == "gem" and words[1:2] == ["install"]:
        return "setup"
    if len(words) > 1 and words[1] in ("--version", "-version", "-V", "version", "-v") and program not in ("pip", "pip3"):
        return "neutral"
    if program in ("pip", "pip3") and len(words) > 1 and words[1] in _PIP_LOOKS:
        return "neutral"
    if program in _CONDA_PROGRAMS and (words[1:2] and words[1] in _CONDA_LOOKS or " ".join(words[1:3]) in _CONDA_LOOKS):
        return "neutral"
    if program in ("bash", "sh") and len(words) > 2 and words[1] == "-c":
        return shell_kind(words[2])
    if program in ("bash", "sh"):
        script = next((w for w in words[1:] if not w.startswith("-")), "")
        return "setup" if not script or _SETUP_SCRIPT.search(script.rsplit("/", 1)[-1]) else "other"
    if re.match(r"^python[0-9.]*$", program):
        if len(words) > 2 and words[1] == "-m":
            if words[2] == "pip" and len(words) > 3 and words[3] in _PIP_LOOKS:
                return "neutral"
            return "setup" if words[2] in _PY_SETUP_MODULES else "other"
        if len(words) > 2 and words[1] == "-c":
            return "setup" if re.search(r"\bpip\b|\.download\(|hf_hub_download|snapshot_download|urlretrieve", words[2]) else "other"
        script = next((w for w in words[1:] if not w.startswith("-")), "")
        return "setup" if script and _SETUP_SCRIPT.search(script.rsplit("/", 1)[-1]) else "other"
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
    """Colab runs as root and so do builds: `sudo cmd` -> `cmd` at the start of each command."""
    return re.sub(r"(^|[;&|]\s*)sudo\s+(-\S+\s+)*", r"\1", command)


# ---------------------------------------------------------------- conda, mamba and condacolab


def _installs_condacolab(words: list[str]) -> bool:
    """`pip install -q condacolab` (any pip spelling), naming no other package."""
    if re.match(r"^python[0-9.]*$", _program(words)) and words[1:3] == ["-m", "pip"]:
        words = words[2:]
    names = [w for w in words[2:] if not w.startswith("-")]
    return bool(re.match(r"^pip[0-9.]*$", _program(words)) and words[1:2] == ["install"] and names
                and all(re.match(r"^(condacolab([<>=!~].*)?|git\+\S*/condacolab(\.git)?(@\S*)?)$", n) for n in names))


def _known(expr: str, values: dict[str, object]) -> str | None:
    """The text IPython would put for `expr` ($name or {expr}) when prebake knows it before the build:
    a name bound to a literal, or 'sep'.join(such a list)."""
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Name) and node.id in values:
        return str(values[node.id])
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Name)
            and isinstance(values.get(node.args[0].id), (list, tuple))):
        return node.func.value.value.join(map(str, values[node.args[0].id]))
    return None


def _ipython_expand(command: str, values: dict[str, object]) -> tuple[str | None, str]:
    """`command` as IPython's var_expand makes it (its own parser of $name and {expr}), from the values
    prebake knows before the build; (None, the part it cannot know) otherwise."""
    from IPython.utils.text import DollarFormatter

    out = []
    try:
        for literal, field, spec, conversion in DollarFormatter().parse(command):
            out.append(literal)
            if field is not None:
                value = None if conversion else _known(f"{field}:{spec}" if spec else field, values)
                if value is None:
                    return None, field
                out.append(value)
    except ValueError:  # unbalanced braces
        return None, command
    return "".join(out), ""


def _spec_name(spec: str) -> str:
    return re.split(r"[=<>!~\s\[]", spec.rsplit("::", 1)[-1], maxsplit=1)[0].lower()


def _conda_install(words: list[str], written: dict[str, str]) -> tuple[CondaPart | None, str]:
    """One conda/mamba/micromamba command as its part of the [conda] table and what the report says of
    it, or (None, why the table cannot hold it). Flags that only change the output (-y, -q, ...) and
    condacolab's own environment (-n base, --prefix /usr/local) are dropped; conda-forge, condacolab's
    channel, is searched after the -c ones unless --override-channels says otherwise."""
    program, args = _program(words), words[1:]
    command = args[:2] if args[:1] == ["env"] else args[:1]
    if command not in (["install"], ["env", "update"], ["env", "create"]):
        return None, f"`{program} {' '.join(command)}` is not an install the [conda] table can hold"
    channels, specs, files, override = [], [], [], False
    rest = iter(args[len(command):])
    for word in rest:
        option, has_value, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if re.match(r"^-[cnpf].", word):  # -cconda-forge
            option, has_value, value = word[:2], "=", word[2:]
        if option in _CONDA_VALUE_OPTIONS:
            value = value if has_value else next(rest, "")
            if not value:
                return None, f"{option} has no value"
            if option in ("-c", "--channel"):
                channels.append(value)
            elif option in ("-n", "--name") and value != "base":
                return None, f"it installs into the environment {value!r}, not condacolab's base"
            elif option in ("-p", "--prefix") and value.rstrip("/") != "/usr/local":
                return None, f"it installs into {value!r}, not condacolab's /usr/local"
            elif option in ("-f", "--file"):
                files.append(value)
        elif word == "--override-channels":
            override = True
        elif word.startswith("-") and word not in _CONDA_FLAGS and not re.fullmatch(r"-[yqv]+", word):
            return None, f"prebake cannot tell what {word} does to the environment"
        elif not word.startswith("-"):
            specs.append(word)
    if command[0] == "env" and specs:
        return None, f"`{program} env {command[1]}` takes no package names ({specs[0]})"
    if len(files) > 1 or not (specs or files):
        return None, "it names more than one environment file" if files else "it names no package"
    file = files[0].removeprefix("./") if files else None
    if file is not None and file not in written:
        return None, f"{files[0]} is not a file the notebook writes with %%writefile (prebake ships only those)"
    python = [spec for spec in specs if _spec_name(spec) == "python"]
    packages = tuple(dict.fromkeys(spec for spec in specs if spec not in python))
    channels = tuple(dict.fromkeys(channels + ([] if override else ["conda-forge"])))
    shipped = PurePosixPath(file).name if file else None
    part = CondaPart(channels, packages, shipped, written[file] if file else "")
    takes = [f"{', '.join(packages)} from {', '.join(channels)}"] if packages else []
    if file:
        takes.append(f"the environment file {file} (the notebook writes it; shipped next to pack.toml as {shipped})")
    notes = [f"goes to the [conda] table: {'; '.join(takes) or 'nothing'}"]
    if python:
        notes.append(f"{', '.join(python)} left out: the builder pins the environment's python to the runtime's")
    return part, "; ".join(notes)


def _runs_conda(command: str) -> bool:
    """Some simple command of the line runs conda, mamba or micromamba, not only to look (`conda list`)."""
    return any(_program(_command_words(words)) in _CONDA_PROGRAMS and _program_kind(words) != "neutral"
               for words in _simple_commands(command))


def _conda_line(command: str, expand: bool, values: dict[str, object],
                written: dict[str, str]) -> tuple[str, str, CondaPart | None] | None:
    """What a shell line that runs conda/mamba/micromamba, or only pip-installs condacolab, becomes:
    ("conda", what it adds, its part of the [conda] table), ("condacolab", why it is dropped, None) or
    ("conda-step", why it stays a setup step, None); None for any other line (or one that only looks).
    `expand`: IPython expands the line ($name, {expr}: `!cmd`, %magic), else any such part is unknown."""
    if not _runs_conda(command):
        commands = [_command_words(words) for words in _simple_commands(command)]
        only_condacolab = any(map(_installs_condacolab, commands)) and all(
            _installs_condacolab(words) or _program_kind(words) == "neutral" for words in commands)
        return ("condacolab", "installs condacolab", None) if only_condacolab else None
    if expand:
        text, unknown = _ipython_expand(command, values)
    else:  # os.system, subprocess: `{x}` is an f-string's value
        found = re.search(r"\{[^{}]*\}", command)
        text, unknown = (None, found.group(0)) if found else (command, "")
    shell = re.search(r"\$[\w{(]\S*", text or "")  # the shell's own variables, $(...)
    if shell:
        text, unknown = None, shell.group(0)
    if text is None:
        return ("conda-step", f"stays a setup step that runs conda at build time: prebake cannot know {unknown!r} "
                "before the build", None)
    parts, notes = [], []
    for words in (_command_words(words) for words in _simple_commands(_NULL_REDIRECT.sub("", text))):
        if _program_kind(words) == "neutral":
            continue
        part, note = _conda_install(words, written) if _program(words) in _CONDA_PROGRAMS else \
            (None, f"the line also runs {_program(words)}")
        if part is None:
            return "conda-step", f"stays a setup step that runs conda at build time: {note}", None
        parts.append(part)
        notes.append(note)
    return ("conda", "; ".join(notes), _merged(parts)) if parts else None


# ---------------------------------------------------------------- reading cells as IPython does


def _transform(code: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(code)


def _cell_magic_line(lines: list[str]) -> int | None:
    """The index of a `%%magic` line that only comments, blank lines or a docstring precede (Colab
    forms put `#@title` first): the cell is that magic's."""
    for i, line in enumerate(lines):
        if line.startswith("%%"):
            try:
                before = ast.parse("\n".join(lines[:i]))
            except SyntaxError:
                return None
            docstring_only = all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in before.body)
            return i if docstring_only else None
        if line.strip() and not line.lstrip().startswith(("#", '"', "'")):
            return None
    return None


def _join_continuations(lines: list[str]) -> tuple[list[str], dict[int, int]]:
    """`!cmd \\` lines joined as IPython joins them, padded with blank lines so line numbers hold;
    maps a joined line's number to how many lines it swallowed."""
    out, swallowed, i = [], {}, 0
    while i < len(lines):
        text, start = lines[i], i
        if text.lstrip().startswith(("!", "%")):
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
        out.append(text)
        out.extend([""] * (i - start))
        if i > start:
            swallowed[start + 1] = i - start
        i += 1
    return out, swallowed


def _statements_of(source: str, cell: int) -> list[tuple[ast.AST | None, int, int, str]]:
    """(node, first line, last line, v0 text) per top-level statement; node None when IPython
    could not read the cell (it is kept as it is)."""
    lines = source.splitlines()
    magic = _cell_magic_line(lines)
    if magic is not None:
        text = "\n".join(lines[magic:])
        tree = ast.parse(_transform(text))
        return [(tree.body[0], 1, len(lines), text)]  # the comments or docstring above go with it
    joined, swallowed = _join_continuations(lines)
    try:
        tree = ast.parse(_transform("\n".join(joined) + "\n"))
    except SyntaxError:
        return [(None, 1, len(lines), source)] if source.strip() else []
    groups: list[tuple[list[ast.stmt], int, int]] = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = (node.end_lineno or node.lineno)
        last += swallowed.get(last, 0)
        if groups and first <= groups[-1][2]:  # `import os; os.system(...)`: one line, one statement
            groups[-1][0].append(node)
            groups[-1] = (groups[-1][0], groups[-1][1], max(last, groups[-1][2]))
        else:
            groups.append(([node], first, last))
    return [(nodes[0] if len(nodes) == 1 else ast.Module(body=nodes, type_ignores=[]), first, last,
             "\n".join(lines[first - 1:last])) for nodes, first, last in groups]


# ---------------------------------------------------------------- what a statement does


def _text(node: ast.AST) -> str | None:
    """A command's text from a literal, an f-string (its values as {...}), a + of those or a list."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, (ast.List, ast.Tuple)):  # an argv: a value not known until run time is still an argument
        return " ".join(_text(item) or "{" + ast.unparse(item) + "}" for item in node.elts)
    if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.executable":
        return "python"
    return None


def _ends(name: str, suffixes: tuple[str, ...]) -> bool:
    return any(name == s or name.endswith("." + s.lstrip(".")) for s in suffixes)


class _Facts:
    """What one statement does: (kind, detail) actions; kinds setup, file, user, form (a form field's
    value in a download or edit: the user's own input, a guess the prebake-setup tag overrules),
    conda (an install the [conda] table takes), condacolab (condacolab's own, dropped), conda-step
    (conda run at build time), state, neutral, other."""

    def __init__(self, forms: set[str], user_files: set[str], values: dict[str, object],
                 written: dict[str, str]) -> None:
        self.forms = forms
        self.user_files = user_files  # files the user's own steps bring (a copy from Drive): using one needs the user
        self.values = values  # names bound to literals so far (constants, form fields): IPython expands them
        self.written = written  # files the notebook wrote so far with %%writefile, and their text
        self.actions: list[tuple[str, str]] = []
        self.parts: list[CondaPart] = []

    def add(self, kind: str, detail: str) -> None:
        self.actions.append((kind, detail))

    def kinds(self) -> set[str]:
        return {kind for kind, _ in self.actions}

    def first(self, kind: str) -> str:
        return next(detail for k, detail in self.actions if k == kind)

    def conda_table(self) -> CondaPart | None:
        """The statement's part of the [conda] table when all it does is install with conda or run
        condacolab (an empty part for condacolab alone); None when it runs at build time."""
        kinds = self.kinds()
        only_conda = kinds & {"conda", "condacolab"} and kinds <= {"conda", "condacolab", "neutral"}
        return _merged(self.parts) if only_conda else None

    def shell(self, command: str, via: str) -> None:
        command = _drop_sudo(command.strip())
        first = command.splitlines()[0][:70] if command else ""
        shown = f"`{via}{first}`" if via in ("!", "%") else f"{via} `{first}`"
        all_words = [w for words in _simple_commands(command) for w in words]
        files = {w.rstrip("/").rsplit("/", 1)[-1] for w in all_words[1:] if "." in w.rsplit("/", 1)[-1]}
        if any(path in command for path in _USER_PATHS):
            self.user_files |= files
            return self.add("user", f"{shown} reads the user's Google Drive")
        if files & self.user_files:
            return self.add("user", f"{shown} uses {sorted(files & self.user_files)[0]}, which comes from the user")
        credentials = sorted(f for f in files if _CREDENTIAL_FILE.match(f))
        if credentials:
            return self.add("user", f"{shown} handles {credentials[0]}, someone's credentials")
        words = [w for words in _simple_commands(command) for w in words[:1]]
        programs = {w.rsplit("/", 1)[-1] for w in words}
        if programs & _USER_DATA_PROGRAMS:
            return self.add("user", f"{shown} downloads the user's own media")
        named = _interpolated_names(command)
        kind = shell_kind(command)
        if any(w in ("login", "auth") for words in _simple_commands(command) for w in words[1:3]):
            return self.add("user", f"{shown} logs in as the user")
        conda = _conda_line(command, via.startswith(("!", "%")), self.values, self.written)
        if conda is not None:
            conda_kind, detail, part = conda
            if part is not None:
                self.parts.append(part)
            return self.add(conda_kind, f"{shown} {detail}")
        if kind == "setup" and named & self.forms and not programs & _INSTALLERS and not _is_pip(command):
            form = sorted(named & self.forms)[0]
            return self.add("form", f"{shown} uses the form field {form}, the user's own input")
        if kind == "setup" and programs <= _FILE_PROGRAMS | _NEUTRAL_PROGRAMS:
            return self.add("file", f"{shown} prepares files")
        self.add(kind, f"{shown} " + {"setup": "installs, downloads or builds", "neutral": "only looks",
                                       "other": "runs a program"}[kind])

    def magic(self, name: str, args: str) -> None:
        name = name.lstrip("%")
        if name in ("pip", "conda", "mamba", "micromamba"):
            return self.shell(f"{name} {args}", "%")
        if name == "mkdir":
            return self.shell(f"mkdir {args}", "%mkdir")
        if any(path in args for path in _USER_PATHS):
            return self.add("user", f"%{name} {args[:60]} uses the user's Google Drive")
        if name in ("uv", "mim"):
            return self.add("setup", f"%{name} {args[:60]}".strip())
        if name in ("cd", "env", "set_env", "matplotlib", "load_ext", "reload_ext", "autoreload", "config",
                    "pushd", "popd", "bookmark", "alias"):
            return self.add("state", f"%{name} {args[:60]}".strip())
        if name in ("sx", "system"):
            return self.shell(args, f"%{name}")
        if name == "run":
            return self.shell(f"python {args}", "%run")
        if name in _WRAPPING_MAGICS:
            return self.code(args)
        self.add("other", f"%{name}")

    def cell_magic(self, name: str, line: str, body: str) -> None:
        if name in _SHELL_MAGICS or (name == "script" and line.split()[:1] in (["bash"], ["sh"])):
            kinds = {shell_kind(_drop_sudo(cmd)) for cmd in body.splitlines() if cmd.strip() and not cmd.lstrip().startswith("#")}
            if any(path in body for path in _USER_PATHS):
                return self.add("user", f"%%{name} reads the user's Google Drive")
            kind = "setup" if "setup" in kinds else "other" if "other" in kinds else "neutral"
            if kind == "setup" and any(map(_runs_conda, body.splitlines())):
                self.add("conda-step", f"%%{name} cell runs conda at build time: a shell script stays a setup step")
            return self.add(kind, f"%%{name} cell " + ("installs, downloads or builds" if kind == "setup" else "runs commands"))
        if name in _WRAPPING_MAGICS:
            return self.code(body)
        if name == "writefile":
            words = line.split()
            path = next((w.removeprefix("./") for w in reversed(words) if not w.startswith("-")), None)
            if path:
                self.written[path] = (self.written.get(path, "") if "-a" in words else "") + body
            return self.add("state", f"%%writefile {line[:60]}")
        self.add("other", f"%%{name}")

    def code(self, code: str) -> None:
        try:
            tree = ast.parse(_transform(code))
        except SyntaxError:
            return self.add("other", "code IPython cannot read")
        for node in tree.body:
            self.visit(node)

    def visit(self, node: ast.AST) -> None:
        for sub in _walk_outside_definitions(node):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and not sub.value.startswith(("%", "!")) \
                    and any(path in sub.value for path in _USER_PATHS) and "get_ipython" not in ast.unparse(node):
                self.add("user", f"`{sub.value[:60]}` is in the user's Google Drive")
            if isinstance(sub, ast.Call):
                self.call(sub)
            elif isinstance(sub, (ast.Assign, ast.AugAssign)) and any(
                    ast.unparse(t).startswith("os.environ[") for t in getattr(sub, "targets", [getattr(sub, "target", None)])):
                self.add("state", f"sets {ast.unparse(sub.targets[0] if isinstance(sub, ast.Assign) else sub.target)}")

    def call(self, call: ast.Call) -> None:
        name = ast.unparse(call.func)
        args = [_text(a) for a in call.args]
        if name == "get_ipython":
            return None
        if name in ("get_ipython().system", "get_ipython().getoutput", "os.system", "os.popen") or (
                name.startswith("subprocess.") and name.split(".", 1)[1] in _SUBPROCESS_CALLS):
            if args and args[0] is not None:
                return self.shell(args[0], f"{name.replace('get_ipython().system', '!').replace('get_ipython().getoutput', '!')}")
            return self.add("other", f"{name}(...) with a command prebake cannot read")
        if name == "get_ipython().run_line_magic" and len(args) == 2 and args[0] is not None:
            return self.magic(args[0], args[1] or "")
        if name == "get_ipython().run_cell_magic" and len(args) == 3 and args[0] is not None:
            return self.cell_magic(args[0], args[1] or "", args[2] or "")
        if _ends(name, _USER_CALLS) or name in _USER_BUILTINS:
            return self.add("user", f"{name}() needs the user")
        if any(path in text for text in args if text for path in _USER_PATHS):
            return self.add("user", f"{name}() reads the user's Google Drive")
        if name.startswith("condacolab."):
            return self.add("condacolab", f"{name}() is condacolab's")
        if _ends(name, _SETUP_CALLS):
            return self.add("setup", f"{name}() installs or downloads")
        if _ends(name, _STATE_CALLS):
            return self.add("state", f"{name}()")
        if _ends(name, _FILE_CALLS):
            return self.add("file", f"{name}() makes a folder")
        if _ends(name, _NEUTRAL_CALLS) or name.startswith("os.path."):
            return self.add("neutral", f"{name}()")
        self.add("other", f"calls {name}()")


def _is_pip(command: str) -> bool:
    return bool(re.search(r"(^|\s)(python[0-9.]*\s+-m\s+)?pip3?\s", command))


def _walk_outside_definitions(node: ast.AST):
    """Every node of a statement except the bodies of functions, classes and lambdas (they run later)."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        if current is not node and isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        todo.extend(reversed(list(ast.iter_child_nodes(current))))  # in source order


def _expanded(node: ast.AST) -> list[ast.AST]:
    """The statement, and the code inside a %%time / %%capture / %time it holds (a string to Python)."""
    found = [node]
    for sub in ast.walk(node):
        if not (isinstance(sub, ast.Call) and ast.unparse(sub.func).startswith("get_ipython().run_")):
            continue
        args = [_text(a) for a in sub.args]
        if args and args[0] in _WRAPPING_MAGICS:
            code = args[-1] or ""
            try:
                found.append(ast.parse(_transform(code)))
            except SyntaxError:
                continue
            if args[0] == "capture" and len(args) == 3 and (args[1] or "").split()[:1]:
                found.append(ast.Name(id=(args[1] or "").split()[0], ctx=ast.Store()))  # %%capture out
    return found


def _binds(node: ast.AST) -> set[str]:
    return {name for part in _expanded(node) for name in _binds_of(part)}


def _binds_of(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for sub in _walk_outside_definitions(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in sub.names if a.name != "*"}
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(sub.name)
    return names


def _uses(node: ast.AST) -> set[str]:
    """Names a statement reads, those inside IPython's $var and {expr} interpolation and inside
    %%time and %%capture bodies included."""
    return {name for part in _expanded(node) for name in _uses_of(part)}


def _uses_of(node: ast.AST) -> set[str]:
    names = {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            names |= _interpolated_names(sub.value)
    return names


def _interpolated_names(text: str) -> set[str]:
    """The Python names IPython would expand in a shell line: $var, ${var} and those inside {expr}."""
    return {name for m in _SHELL_NAMES.finditer(text)
            for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(1) or m.group(2))}


def _kind(node: ast.stmt | None, facts: _Facts) -> tuple[str, str]:
    if node is None:
        return "research", "IPython cannot read this cell as Python: kept as it is"
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return "definition", f"defines {node.name}"
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = {a.name.split(".")[0] for a in node.names} if isinstance(node, ast.Import) else {(node.module or "").split(".")[0]}
        if modules != {"condacolab"}:
            return "definition", "imports " + ", ".join(a.name for a in node.names)
        facts.add("condacolab", "imports condacolab")
    else:
        facts.visit(node)
    kinds = facts.kinds()
    if "user" in kinds or "form" in kinds:
        return "needs-user", facts.first("user" if "user" in kinds else "form")
    if facts.conda_table() is not None:
        reasons = [detail for kind, detail in facts.actions if kind in ("conda", "condacolab")]
        return "setup", "; ".join(reasons + ([_CONDACOLAB] if "condacolab" in kinds else []))
    if kinds & {"setup", "file", "conda-step", "conda", "condacolab"}:
        reasons = [facts.first("setup" if "setup" in kinds else "file")] if kinds & {"setup", "file"} else []
        reasons += [facts.first("conda-step")] if "conda-step" in kinds else []
        if kinds & {"conda", "condacolab"}:
            reasons.append("its conda installs and condacolab calls run at build time too: the statement does more "
                           "than those, and prebake takes a statement whole")
        reasons += ["it also runs research, so it stays in v1 too"] if "other" in kinds else []
        return "setup", "; ".join(reasons)
    if "other" in kinds:
        return "research", facts.first("other")
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return "definition", "sets " + ", ".join(ast.unparse(t) for t in targets)
    if "state" in kinds:
        return "definition", facts.first("state") + " (notebook state)"
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return "definition", "a docstring or a bare value"
    if any(isinstance(sub, (ast.Import, ast.ImportFrom)) for sub in ast.walk(node)):
        return "definition", "imports under control flow"
    return "research", facts.first("neutral") + " (inspection)" if "neutral" in kinds else "research code"


def classify(nb) -> list[Statement]:
    """Every top-level statement of every code cell, with its kind and where it goes."""
    forms = {m.group(1) for cell in nb.cells if cell.cell_type == "code" for m in _FORM_FIELD.finditer(_source(cell))}
    user_files: set[str] = set()
    given: set[str] = set()  # names holding a value the user gave
    values: dict[str, object] = {}  # names bound to literals so far
    written: dict[str, str] = {}  # %%writefile'd files so far
    found: list[tuple[Statement, set[str]]] = []  # with the kinds of what it does
    number = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        number += 1
        tags = set(cell.get("metadata", {}).get("tags", []))
        for node, first, last, text in _statements_of(_source(cell), number):
            facts = _Facts(forms, user_files, values, written)
            kind, reason = _kind(node, facts)
            if TAG_KEEP in tags and kind != "needs-user":
                kind, reason = "research", f"the cell is tagged {TAG_KEEP}"
            elif TAG_SETUP in tags and (kind != "needs-user" or "user" not in facts.kinds()):
                # the tag overrules a guess (a form field may hold a public URL), not a person's step
                kind, reason = "setup", f"the cell is tagged {TAG_SETUP}"
            statement = Statement(number, first, last, kind, reason, text,
                                  binds=frozenset(_binds(node) if node else ()),
                                  uses=frozenset(_uses(node) if node else ()),
                                  conda=facts.conda_table() if kind == "setup" and TAG_SETUP not in tags else None)
            if node is not None:
                from_user = sorted((statement.uses - _loop_variables(node)) & given)
                if from_user and kind != "needs-user":
                    statement.kind, statement.conda = "needs-user", None
                    statement.reason = f"uses {from_user[0]}, which holds a value the user gives"
                given = (given - statement.binds) | _user_values(node, given)
                _literal_values(node, statement.binds, values)
            found.append((statement, facts.kinds()))
    statements = [s for s, _ in found]
    _after_the_research(found)
    _one_conda_environment(found)
    _place(found)
    return statements


def _literal_values(node: ast.AST, binds: frozenset[str], values: dict[str, object]) -> None:
    """After a statement: the names it binds to literals (constants, form fields), which IPython puts
    into a later `!cmd $name`; a name it binds any other way is no longer known."""
    for name in binds:
        values.pop(name, None)
    for part in node.body if isinstance(node, ast.Module) else [node]:
        if isinstance(part, ast.Assign) and len(part.targets) == 1 and isinstance(part.targets[0], ast.Name):
            try:
                values[part.targets[0].id] = ast.literal_eval(part.value)
                continue
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                pass
        for name in _binds_of(part):
            values.pop(name, None)


def _one_conda_environment(found: list[tuple[Statement, set[str]]]) -> None:
    """The [conda] table holds one environment file: a second one stays a setup step. A conda command
    that runs at build time needs a conda there: then condacolab's statements run at build time too,
    as they would without prebake (and the table still takes the installs it can hold)."""
    taken: tuple[str, str] | None = None  # the file, and where
    for statement, kinds in found:
        file = statement.conda.file if statement.conda else None
        if file and taken is None:
            taken = (file, f"cell {statement.cell} line {statement.lines}")
        elif file and taken and file != taken[0]:
            statement.conda = None
            kinds.add("conda-step")
            statement.reason = (f"`{statement.source.splitlines()[0][:70]}` stays a setup step that runs conda at build "
                                f"time: the [conda] table holds one environment file, {taken[0]} ({taken[1]})")
    step = next((s for s, kinds in found if s.kind == "setup" and s.conda is None and kinds & {"conda", "conda-step"}),
                None)
    if step is None:
        return
    for statement, kinds in found:
        if statement.conda is not None and "conda" not in kinds:  # condacolab's own
            statement.conda = None
            statement.reason = statement.reason.replace(
                _CONDACOLAB, f"it runs at build time all the same: cell {step.cell} line {step.lines} needs conda there")


def _user_values(node: ast.AST, given: set[str]) -> set[str]:
    """Names a statement binds to a value the user gives: the result of an upload, input(), a
    secret or a login, a path in their Drive, or anything computed from such a value."""
    names: set[str] = set()
    for sub in _walk_outside_definitions(node):
        if isinstance(sub, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor, ast.NamedExpr)):
            value = sub.iter if isinstance(sub, (ast.For, ast.AsyncFor)) else sub.value
            if value is not None and _from_the_user(value, given):
                targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _from_the_user(value: ast.AST, given: set[str]) -> bool:
    for sub in ast.walk(value):
        if isinstance(sub, ast.Name) and sub.id in given:
            return True
        if isinstance(sub, ast.Call):
            name = ast.unparse(sub.func)
            if _ends(name, _USER_CALLS) or name in _USER_BUILTINS:
                return True
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and any(p in sub.value for p in _USER_PATHS):
            return True
    return False


def _loop_variables(node: ast.AST) -> set[str]:
    """Names a statement binds before it reads them (for targets, with ... as, comprehension targets)."""
    names: set[str] = set()
    for sub in ast.walk(node):
        targets = [sub.target] if isinstance(sub, (ast.For, ast.AsyncFor, ast.comprehension)) else \
            [item.optional_vars for item in sub.items if item.optional_vars] if isinstance(sub, (ast.With, ast.AsyncWith)) else []
        names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _after_the_research(found: list[tuple[Statement, set[str]]]) -> None:
    """A step that only moves files (cp, tar, mkdir, sed, ...) after the research has started, and
    after the last install, works on what the research made: it is research, not setup. (One that a
    later install needs, like a folder a download goes into, stays setup.)"""
    last_install = max((i for i, (s, kinds) in enumerate(found) if s.kind == "setup" and "setup" in kinds), default=-1)
    started = False
    for i, (statement, kinds) in enumerate(found):
        if statement.kind == "setup" and started and i > last_install and "setup" not in kinds and "file" in kinds:
            statement.kind = "research"
            statement.reason = statement.reason.replace("prepares files", "moves files after the research started")
        started = started or (statement.kind == "research" and "other" in kinds)


def _place(found: list[tuple[Statement, set[str]]]) -> None:
    """in_build and in_v1: setup runs at build time (unless the [conda] table takes it over) and
    leaves v1 unless it also runs research, changes the notebook's state (%cd, %env, sys.path) or
    binds a name kept code uses; definitions before the last setup statement that runs at build
    time run then too, and so does research a setup statement needs (the values interpolated into
    its commands)."""
    statements = [s for s, _ in found]
    last_setup = max((i for i, s in enumerate(statements) if s.kind == "setup" and s.conda is None), default=-1)
    needed: set[str] = set()
    for i in range(len(statements) - 1, -1, -1):
        statement, kinds = found[i]
        if statement.kind == "setup":
            statement.in_build = statement.conda is None  # the [conda] table's statements never run
            kept_for = sorted(statement.binds & needed)
            statement.in_v1 = bool(kept_for) or bool(kinds & {"other", "state"})
            if kept_for and "other" not in kinds:
                statement.reason += f"; it stays in v1 too: it defines {', '.join(kept_for)}, which kept code uses"
            elif "state" in kinds and "other" not in kinds:
                statement.reason += "; it stays in v1 too: it also changes the notebook's state (%cd, %env, sys.path)"
        elif statement.kind == "definition":
            statement.in_build = i < last_setup
        if statement.in_v1:
            needed |= statement.uses
    wanted: set[str] = set()
    for statement in reversed(statements):
        provides = statement.binds & wanted
        wanted -= statement.binds  # what a statement binds, earlier ones need not provide
        if not statement.in_build and statement.kind == "research" and provides:
            statement.in_build = True
            statement.reason += f"; it runs at build time too: setup uses {', '.join(sorted(provides))}"
        if statement.in_build:
            wanted |= statement.uses - statement.binds


def _source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


# ---------------------------------------------------------------- writing


def _toml_string(text: str) -> str:
    if "\n" in text and "'''" not in text and not text.endswith("'") and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text):
        return "'''\n" + text + "'''"
    return json.dumps(text, ensure_ascii=False)


def recipe_text(name: str, statements: list[Statement], *, runtime: str, source: str, prepare: tuple[str, ...] = (),
                check: str | None = None, roots: tuple[str, ...] = DEFAULT_ROOTS) -> str:
    built = [s for s in statements if s.in_build]
    cells = sorted({s.cell for s in built if s.kind == "setup"})
    # The runner needs IPython. Where the image lacks it, prepare installs it into a folder of its
    # own: in the system site-packages its dependencies (asttokens, jedi, ...) would look installed
    # to the setup's pip, and what the setup needs of them would then be missing from the pack.
    prepare = (f"python3 -c 'import IPython' 2>/dev/null || python3 -m pip install -q --target {IPYTHON_DIR} "
               "'ipython>=7.34'", *prepare)
    uses_apt = any(re.search(r"(^|[\s;&|!])(apt|apt-get)\s+(-\S+\s+)*install\b", s.source) for s in built)
    if uses_apt and not any("apt-get update" in p or "apt update" in p for p in prepare):
        prepare = ("apt-get update -q", *prepare)
    run = f"python3 {BUILD_DIR}/run_setup.py {BUILD_DIR}/setup.ipynb"
    source = re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", " ", source)  # a file name must not end the comment line below
    label = f"the setup of {source}: cells {', '.join(map(str, cells))} ({len(built)} statements, run as Colab runs them)"
    out = [f"# Made by `prebake notebook {source}` from its setup statements (setup.ipynb, run by run_setup.py).",
           "# Build: prebake build pack.toml -o packs   (or `prebake notebook ... --build`)",
           f"name = {json.dumps(name)}", 'version = "1"', f"runtime = {json.dumps(runtime, ensure_ascii=False)}",
           "# Run before the setup and not packed: IPython for the runner, and what the mirror lacks.",
           "prepare = [" + ", ".join(_toml_string(p) for p in prepare) + "]",
           f"install = [{{ name = {json.dumps(label, ensure_ascii=False)}, run = {json.dumps(run)} }}]"]
    if check:
        out.append(f"check = {_toml_string(check)}")
    out += ["", "[[file]]", 'src = "setup.ipynb"', f'dest = "{BUILD_DIR}/setup.ipynb"',
            "", "[[file]]", 'src = "run_setup.py"', f'dest = "{BUILD_DIR}/run_setup.py"',
            "", "[capture]", "roots = [" + ", ".join(json.dumps(r, ensure_ascii=False) for r in roots) + "]",
            '# The user\'s Google Drive is theirs: never packed, even when a root holds its mount point.',
            'exclude = ["/content/drive", "/content/gdrive"]']
    return "\n".join(out) + "\n"


def conda_recipe_text(name: str, prefix: str, conda: CondaPart, *, runtime: str, source: str,
                      prepare: tuple[str, ...] = (), check: str | None = None) -> str:
    """The recipe of the environment the notebook installed with condacolab + conda/mamba: built at
    prefix and restored there in the running kernel, without condacolab."""
    source = re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", " ", source)  # a file name must not end the comment line below
    out = [f"# Made by `prebake notebook {source}` from its conda installs (condacolab is replaced, not packed).",
           f"name = {json.dumps(name)}", 'version = "1"', f"runtime = {json.dumps(runtime, ensure_ascii=False)}"]
    out += ["prepare = [" + ", ".join(_toml_string(p) for p in prepare) + "]"] if prepare else []
    out += [f"check = {_toml_string(check)}"] if check else []
    channels = conda.channels or ("conda-forge",)
    out += ["", "# The builder pins the environment's python to the runtime's X.Y: the kernel imports its packages.",
            "[conda]", f"prefix = {json.dumps(prefix)}",
            "channels = [" + ", ".join(json.dumps(c, ensure_ascii=False) for c in channels) + "]",
            "packages = [" + ", ".join(json.dumps(p, ensure_ascii=False) for p in conda.packages) + "]"]
    out += [f"file = {json.dumps(conda.file, ensure_ascii=False)}"] if conda.file else []
    return "\n".join(out) + "\n"


def recipes(name: str, statements: list[Statement], *, runtime: str, source: str, prepare: tuple[str, ...] = (),
            check: str | None = None, roots: tuple[str, ...] = DEFAULT_ROOTS) -> dict[str, str]:
    """OUT's recipes by file name: pack.toml runs the setup (`recipe_text`) or, when the notebook's
    setup is all conda installs and condacolab, builds the [conda] environment; when it is both, the
    environment is a second recipe, conda.toml (a pack with [conda] holds its environment only)."""
    conda = conda_table(statements)
    if conda is None or any(s.in_build for s in statements):
        out = {"pack.toml": recipe_text(name, statements, runtime=runtime, source=source, prepare=prepare, check=check,
                                        roots=roots)}
        if conda:
            out[CONDA_RECIPE] = conda_recipe_text(f"{name[:58]}-conda", conda_prefix(name), conda, runtime=runtime,
                                                  source=source)
        return out
    return {"pack.toml": conda_recipe_text(name, conda_prefix(name), conda, runtime=runtime, source=source,
                                           prepare=prepare, check=check)}


def conda_table(statements: list[Statement]) -> CondaPart | None:
    """The recipe's [conda] table: what the statements it takes over install; None when they install nothing."""
    table = _merged([s.conda for s in statements if s.conda is not None])
    return table if table.adds else None


def setup_notebook(statements: list[Statement]):
    """The build statements, one cell each, with their v0 cell and line for the runner's messages."""
    import nbformat

    cells = []
    for s in statements:
        if s.in_build:
            cell = nbformat.v4.new_code_cell(s.source)
            cell.metadata["prebake"] = {"cell": s.cell, "line": s.first_line, "kind": s.kind}
            cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


def restore_cell_source(source: str) -> str:
    return "\n".join([
        "# prebake: the setup of this notebook, restored from the pack it built (see pack.toml and report.md).",
        "try:",
        "    from prebake import restore",
        "except ImportError:  # a fresh runtime: one small wheel",
        "    import subprocess, sys",
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"prebake\"], check=True)",
        "    from prebake import restore",
        f"restore({source!r})  # shows what it restored; errors are one line with the fix",
    ])


def _has_code(text: str) -> bool:
    """Something besides comments, blank lines and docstrings is left."""
    try:
        tree = ast.parse(_transform(text))
    except SyntaxError:
        return True
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in tree.body)


def _v1(nb, statements: list[Statement], restore_source: str):
    """v0 without the statements that left, one restore cell before the first code cell, in v0's
    nbformat version (no cell ids below 4.5); kept cells keep their metadata and, if untouched,
    their outputs."""
    import nbformat

    v1 = copy.deepcopy(nb)
    by_cell: dict[int, list[Statement]] = {}
    for s in statements:
        by_cell.setdefault(s.cell, []).append(s)
    cells, number, restore_at = [], 0, None
    for cell in v1.cells:
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        number += 1
        if restore_at is None:
            restore_at = len(cells)
        gone = [s for s in by_cell.get(number, []) if not s.in_v1]
        if gone:
            lines = _source(cell).splitlines()
            drop = {n for s in gone for n in range(s.first_line, s.last_line + 1)}
            text = "\n".join(line for n, line in enumerate(lines, 1) if n not in drop).strip("\n")
            if not _has_code(text):
                continue
            cell.source = text
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    restore = nbformat.v4.new_code_cell(restore_cell_source(restore_source))
    restore.metadata["tags"] = ["prebake-restore"]
    cells.insert(restore_at if restore_at is not None else len(cells), restore)
    if (v1.nbformat, v1.nbformat_minor) < (4, 5):
        for cell in cells:
            cell.pop("id", None)  # cell ids came with nbformat 4.5
    v1.cells = cells
    return v1


def slug(text: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return (name or "notebook")[:64]


def convert(nb, *, name: str, source_label: str, runtime: str = settings.RUNTIME.default, restore_source: str = DEFAULT_SOURCE,
            prepare: tuple[str, ...] = (), check: str | None = None, roots: tuple[str, ...] = DEFAULT_ROOTS) -> Conversion:
    """Classify every statement, write the recipe text, the build's setup notebook and v1 (`nb` is unchanged)."""
    import nbformat

    from .recipe import parse

    statements = classify(nb)
    if not any(s.in_build for s in statements) and conda_table(statements) is None:
        found = ("only condacolab, which prebake replaces" if any(s.kind == "setup" for s in statements)
                 else "no pip/apt/conda installs, downloads or builds found")
        msg = (f"{source_label} has no setup statements to pack ({found}); no pack to make "
               f"(tag a cell {TAG_SETUP} to take it whole)")
        raise UsageError(msg)
    texts = recipes(name, statements, runtime=runtime, source=source_label, prepare=prepare, check=check, roots=roots)
    v1 = _v1(nb, statements, restore_source)
    try:
        nbformat.validate(v1)
    except nbformat.ValidationError as e:  # a bug here, not in the notebook: say so plainly
        msg = f"the v1 notebook made from {source_label} is not valid nbformat ({e.message}); please report this"
        raise UsageError(msg) from None
    with _recipe_folder(_shipped(statements)) as folder:
        for file, text in texts.items():  # what we write must be valid recipes
            parse(text, f"the recipe {file} made from {source_label}", base=folder)
    return Conversion(name, statements, texts, setup_notebook(statements), v1, source_label)


def _shipped(statements: list[Statement]) -> dict[str, str]:
    """Files written next to pack.toml besides setup.ipynb and run_setup.py: the [conda] table's environment file."""
    conda = conda_table(statements)
    return {conda.file: conda.file_text} if conda and conda.file else {}


@contextlib.contextmanager
def _recipe_folder(shipped: dict[str, str]):
    """A folder holding stand-ins for the files the recipe names, so that parsing it checks the rest."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in {"setup.ipynb": "", "run_setup.py": "", **shipped}.items():
            (Path(tmp) / name).write_text(text)
        yield Path(tmp)


def write(conversion: Conversion, out: Path) -> tuple[list[Path], Path]:
    """OUT/pack.toml (and conda.toml, see `recipes`), setup.ipynb, run_setup.py, v1.ipynb, report.md
    and the [conda] table's environment file."""
    import nbformat

    from . import setup_runner
    from ._fs import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    v1_path = out / "v1.ipynb"
    if conversion.setup_notebook.cells:  # else pack.toml builds the [conda] environment alone
        atomic_write(out / "setup.ipynb", (nbformat.writes(conversion.setup_notebook) + "\n").encode())
        atomic_write(out / "run_setup.py", Path(setup_runner.__file__).read_bytes())
    for file, text in conversion.recipes.items():
        atomic_write(out / file, text.encode())
    atomic_write(v1_path, (nbformat.writes(conversion.v1) + "\n").encode())
    atomic_write(out / "report.md", (conversion.report() + "\n").encode())
    for name, text in _shipped(conversion.statements).items():
        atomic_write(out / name, text.encode())
    return [out / file for file in conversion.recipes], v1_path
