"""`prebake notebook`: classifying cells, translating setup commands, writing the recipe and v1."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from prebake import notebook as nbmod
from prebake.cli import main
from prebake.errors import UsageError
from prebake.recipe import parse

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def convert(*cells, **kwargs):
    nb = new_notebook(cells=list(cells))
    return nbmod.convert(nb, name="t", source_label="v0.ipynb", **kwargs)


def steps(conversion) -> list[str]:
    return [s.run for s in parse(conversion.recipe_text).install]


@pytest.mark.parametrize("source, kind", [
    ("!pip install -q numpy", "setup"),
    ("%pip install numpy", "setup"),
    ("!sudo apt-get install -y ffmpeg", "setup"),
    ("%%bash\ncd /tmp && make install", "setup"),
    ("%%capture\n!pip install x", "setup"),
    ("!git clone https://example.org/x.git && cd x && make", "setup"),
    ("import subprocess\nsubprocess.run(['pip', 'install', 'x'], check=True)", "setup"),
    ("import os\nos.system('apt-get install -y sox')", "setup"),
    ("!echo 'export A=1' > /etc/profile.d/a.sh", "setup"),
    ("!ls -la\n!nvidia-smi", "research"),
    ("!figlet hi", "research"),
    ("!python train.py", "research"),
    ("%cd /content/x", "research"),
    ("import numpy as np\nprint(np.ones(3))", "research"),
    ("%matplotlib inline", "research"),
    ("!pip show numpy", "research"),
    ("!pip install x\nimport x\nx.run()", "mixed"),
    ("!wget {url} -O data.bin", "mixed"),
    ("import subprocess\nsubprocess.run(cmd, check=True)", "research"),
    ("%%bash\nls\necho $HOME", "research"),
])
def test_classify(source: str, kind: str) -> None:
    assert nbmod.classify(new_code_cell(source), 0, 1, "/content").kind == kind


def test_translation_is_faithful_and_keeps_directories() -> None:
    conversion = convert(
        new_code_cell("%pip install -q --no-binary :all: markupsafe\n!sudo apt-get -y install sox"),
        new_code_cell("!mkdir -p /content/repo\n%cd /content/repo\n!git clone https://example.org/r.git\n%cd r\n"
                      "!pip install -e . \\\n   --no-deps"),
        new_code_cell("%%bash\nset -x\nmake -j2"),
        new_code_cell("import sys, subprocess\nsubprocess.check_call([sys.executable, '-m', 'pip', 'install', 'a b'])"),
        new_code_cell("%env MODEL_DIR=/content/models\n!wget -q https://example.org/m.bin -P $MODEL_DIR"),
    )
    assert steps(conversion) == [
        "python -m pip install -q --no-binary :all: markupsafe",
        "apt-get -y install sox",
        "mkdir -p /content/repo",
        "cd /content/repo\ngit clone https://example.org/r.git",
        "cd /content/repo/r\npip install -e .  --no-deps",
        "cd /content/repo/r\nset -x\nmake -j2",
        "cd /content/repo/r\npython -m pip install 'a b'",
        "cd /content/repo/r\nwget -q https://example.org/m.bin -P $MODEL_DIR",
    ]
    recipe = parse(conversion.recipe_text)
    assert recipe.prepare[0].run == "apt-get update -q"  # the mirror image has no apt lists
    assert recipe.env.set == {"MODEL_DIR": "/content/models"}
    assert "/content" in recipe.roots and "/usr" in recipe.roots
    # all five setup cells fold into the restore cell, which ends in their last directory
    restore = conversion.v1.cells[0].source
    assert "restore('prebake.lock')" in restore
    assert restore.endswith("%cd /content/repo/r")
    assert len(conversion.v1.cells) == 1
    ast.parse(restore.replace("%cd", "# %cd"))


def test_research_and_markdown_cells_are_kept_exactly() -> None:
    cells = [
        new_markdown_cell("# Title"),
        new_code_cell("!pip install x"),
        new_code_cell("import x\nprint(x.f())"),
        new_code_cell("!pip install y\nimport y"),  # mixed: kept
        new_code_cell("!apt-get install -y z", metadata={"tags": ["prebake-keep"]}),
        new_code_cell("%cd /content\n!pip install w"),  # a later setup cell: removed (no directory change)
        new_code_cell("!figlet z"),
    ]
    cells[2].outputs = [nbformat.v4.new_output("stream", text="42\n")]
    cells[2].execution_count = 3
    conversion = convert(*cells)
    v1 = conversion.v1
    kept = [c for c in v1.cells if "prebake" not in c.source.splitlines()[0]]
    assert kept == [cells[0], cells[2], cells[3], cells[4], cells[6]]
    assert [c.number for c in conversion.setup] == [1, 5]
    assert [c.number for c in conversion.mixed] == [3]
    assert "kept cell 3 as it was" in conversion.report()
    assert steps(conversion) == ["pip install x", "pip install w"]


def test_a_later_setup_cell_that_changes_directory_leaves_a_cd_cell() -> None:
    conversion = convert(
        new_code_cell("!pip install x"),
        new_code_cell("print(1)"),
        new_code_cell("%cd /opt\n!git clone https://example.org/t.git"),
        new_code_cell("print(2)"),
    )
    sources = [c.source for c in conversion.v1.cells]
    assert "restore('prebake.lock')" in sources[0] and "%cd" not in sources[0]
    assert sources[1] == "print(1)"
    assert sources[2].endswith("%cd /opt")
    assert sources[3] == "print(2)"
    assert steps(conversion) == ["pip install x", "cd /opt\ngit clone https://example.org/t.git"]


def test_tag_forces_setup_and_options_reach_the_recipe() -> None:
    conversion = convert(new_code_cell("!python download_models.py", metadata={"tags": ["prebake-setup"]}),
                         prepare=("apt-get install -y gcc",), check="test -d /opt/models", restore_source="https://x/p")
    recipe = parse(conversion.recipe_text)
    assert [s.run for s in recipe.install] == ["python download_models.py"]
    assert [s.run for s in recipe.prepare] == ["apt-get install -y gcc"]
    assert recipe.check == "test -d /opt/models"
    assert "restore('https://x/p')" in conversion.v1.cells[0].source


def test_tricky_text_survives_the_toml() -> None:
    body = "%%bash\ncat > /opt/x.sh <<'EOF'\necho \"it's '''quoted''' \\\\ here\"\nEOF\nchmod +x /opt/x.sh"
    conversion = convert(new_code_cell(body))
    assert steps(conversion) == [body.split("\n", 1)[1]]


def test_no_setup_cells_is_a_clear_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(UsageError, match="has no setup cells"):
        convert(new_code_cell("print(1)"), new_code_cell("!ls"))
    with pytest.raises(UsageError, match="mix setup with research"):
        convert(new_code_cell("!pip install x\nimport x"))
    path = tmp_path / "v0.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("print(1)")]), path)
    assert run_cli("notebook", str(path), "-o", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prebake: error: v0.ipynb has no setup cells") and "\n" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, message", [
    ('{"cells": [', "invalid JSON at line 1"),
    ("not json at all", "invalid JSON"),
    ('{"cells": 3}', "is not a notebook nbformat can read"),
])
def test_invalid_notebook_is_a_clear_error(tmp_path: Path, capsys, text: str, message: str) -> None:
    path = tmp_path / "bad.ipynb"
    path.write_text(text)
    assert run_cli("notebook", str(path), "-o", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("prebake: error:") and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_cli_writes_recipe_and_v1(tmp_path: Path, capsys) -> None:
    path = tmp_path / "My Analysis.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("!pip install x"), new_code_cell("!pip install y\nimport y"),
                                       new_code_cell("import x")]), path)
    assert run_cli("notebook", str(path), "-o", str(tmp_path / "out")) == 0
    out = capsys.readouterr().out
    assert "kept cell 2 as it was" in out and "wrote" in out
    recipe = parse((tmp_path / "out" / "pack.toml").read_text())
    assert recipe.name == "my-analysis"
    v1 = json.loads((tmp_path / "out" / "v1.ipynb").read_text())
    nbformat.validate(nbformat.reads(json.dumps(v1), 4))
    assert len(v1["cells"]) == 3

