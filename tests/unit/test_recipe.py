"""Recipes, the capture selection rules, the secret scan and the mirror image plan: no Docker."""

from __future__ import annotations

from pathlib import Path

import pytest
from prebake.capture import ADDED, CHANGED, DELETED, Change, scan_secrets, secret_values, select
from prebake.errors import UsageError
from prebake.mirror import known_runtimes, load_runtime, plan_image
from prebake.recipe import build_order, load, parse

REPO = Path(__file__).resolve().parents[2]
MINIMAL = 'name = "x"\nversion = "1"\nruntime = "2026.07"\ninstall = ["true"]\n'


def test_a_full_recipe_parses() -> None:
    recipe = parse(MINIMAL + """
prepare = ["apt-get install -y gcc", { name = "deps", run = "apt-get install -y make" }]
secrets = ["HF_TOKEN"]
depends = ["base"]
check = "x --version"
[[fetch]]
url = "https://example.org/m.tar.gz"
sha256 = "sha256:""" + "A" * 64 + """"
dest = "/opt/m"
unpack = true
[capture]
roots = ["/opt/x/"]
exclude = ["/opt/x/share/man"]
[env]
prepend = { PATH = "/opt/x/bin" }
set = { X_HOME = "/opt/x" }
""")
    assert [s.label for s in recipe.prepare] == ["prepare[0]", "prepare[1] deps"]
    assert recipe.fetches[0].sha256 == "a" * 64 and recipe.fetches[0].archive_kind == ".tar.gz"
    assert recipe.roots == ("/opt/x",)
    assert recipe.env.prepend == {"PATH": ("/opt/x/bin",)}
    assert recipe.depends == ("base",) and recipe.secrets == ("HF_TOKEN",)


@pytest.mark.parametrize(("text", "field"), [
    ('version = "1"\nruntime = "r"\ninstall = ["true"]', "name"),
    ('name = "Bad Name"\nversion = "1"\nruntime = "r"\ninstall = ["true"]', "name"),
    ('name = "x"\nversion = 1\nruntime = "r"\ninstall = ["true"]', "version"),
    (MINIMAL + 'colour = "red"', "colour"),
    (MINIMAL.replace('["true"]', '[""]'), "install[0]"),
    (MINIMAL.replace('["true"]', '[{ name = "a" }]'), "install[0].run"),
    (MINIMAL + '[[fetch]]\nurl = "ftp://x"\nsha256 = "' + "a" * 64 + '"\ndest = "/opt/a"', "fetch[0].url"),
    (MINIMAL + '[[fetch]]\nurl = "http://x/a"\nsha256 = "abc"\ndest = "/opt/a"', "fetch[0].sha256"),
    (MINIMAL + '[[fetch]]\nurl = "http://x/a"\nsha256 = "' + "a" * 64 + '"\ndest = "opt/a"', "fetch[0].dest"),
    (MINIMAL + '[[fetch]]\nurl = "http://x/a.bin"\nsha256 = "' + "a" * 64 + '"\ndest = "/opt/a"\nunpack = true', "fetch[0].unpack"),
    (MINIMAL + '[[fetch]]\nurl = "http://x/a"\nsha256 = "' + "a" * 64 + '"\ndest = "/opt/a"\nmode = "999"', "fetch[0].mode"),
    (MINIMAL + '[[file]]\nsrc = "a.txt"\ndest = "/opt/a"\nmode = 755', "file[0].mode"),
    (MINIMAL + '[capture]\nroots = ["/opt/../etc"]', "capture.roots[0]"),
    (MINIMAL + '[capture]\nroots = ["/"]', "capture.roots[0]"),
    (MINIMAL + '[capture]\nexclude = ["relative"]', "capture.exclude[0]"),
    (MINIMAL + '[env]\nprepend = { PATH = ["bin"] }', "env.prepend.PATH[0]"),
    (MINIMAL + '[env]\nset = { "1X" = "a" }', "env.set.1X"),
    (MINIMAL + 'depends = ["x"]', "depends[0]"),
    (MINIMAL + 'backend = "podman"', "backend"),
    ('name = "x"\nversion = "1"\nruntime = "r"', "install"),
    ("name = ", "not valid TOML"),
])
def test_invalid_recipes_name_the_field(text: str, field: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(text, "packs/x.toml")
    assert str(info.value).startswith("packs/x.toml")
    assert field in str(info.value)


def test_the_digest_follows_what_changes_the_build() -> None:
    a = parse(MINIMAL, "a.toml")
    assert parse("# a comment\n" + MINIMAL, "elsewhere.toml").digest == a.digest
    assert parse(MINIMAL.replace("true", "false")).digest != a.digest
    assert parse(MINIMAL + 'prepare = ["x"]').digest != a.digest


def test_build_order_puts_dependencies_first_and_refuses_cycles() -> None:
    base = parse(MINIMAL.replace('"x"', '"base"', 1))
    user = parse(MINIMAL + 'depends = ["base"]')
    assert [r.name for r in build_order([user, base])] == ["base", "x"]
    a = parse(MINIMAL.replace('"x"', '"a"', 1) + 'depends = ["b"]')
    b = parse(MINIMAL.replace('"x"', '"b"', 1) + 'depends = ["a"]')
    with pytest.raises(UsageError, match="cycle"):
        build_order([a, b])


def test_shipped_recipes_parse_and_name_known_runtimes() -> None:
    recipes = sorted((REPO / "packs").glob("*.toml"))
    assert recipes
    for path in recipes:
        assert load(path).runtime in known_runtimes()


def test_runtime_facts_and_the_image_plan() -> None:
    assert {"2026.07", "latest"} <= set(known_runtimes())
    runtime = load_runtime("2026.07")
    assert runtime.python == "3.12" and runtime.facts["os"] == "ubuntu 22.04"
    plan = plan_image(runtime)
    assert plan.base_image == "ubuntu:22.04"
    assert "numpy==2.0.2" in plan.buildargs["PIP_PINS"].split() and "numpy==2.0.2" in plan.buildargs["INSTALL"].split()
    assert "torch" not in plan.buildargs["PIP_PINS"]
    assert "torch==2.11.0+cu128" in plan_image(runtime, gpu=True).buildargs["PIP_PINS"].split()
    test_plan = plan_image(runtime, base_image="debian:bookworm", python="3.11", install_pins=False)
    assert test_plan.buildargs["PYTHON"] == "3.11" and test_plan.buildargs["INSTALL"] == ""
    assert plan.tag("sha256:1", b"ctx") != test_plan.tag("sha256:1", b"ctx")
    assert plan.tag("sha256:1", b"ctx") != plan.tag("sha256:2", b"ctx")
    assert load_runtime("latest").python == "3.13"
    with pytest.raises(UsageError, match="known runtimes"):
        load_runtime("1999.01")


def test_selection_keeps_roots_drops_caches_and_credentials() -> None:
    changes = [
        Change(CHANGED, "/usr"), Change(CHANGED, "/usr/local"), Change(ADDED, "/usr/local/bin/x"),
        Change(ADDED, "/usr/bin/gcc"), Change(ADDED, "/root/.cache/pip/http/1"), Change(ADDED, "/tmp/build/a.o"),
        Change(ADDED, "/opt/app/.ssh"), Change(ADDED, "/opt/app/.ssh/id_rsa"), Change(ADDED, "/opt/app/credentials.json"),
        Change(DELETED, "/opt/old"), Change(DELETED, "/opt/old/inner"), Change(ADDED, "/opt/app/share/man/x.1"),
        Change(ADDED, "/opt/app/lib/a.pyc.140234"),
    ]
    selection = select(changes, ("/usr/local", "/opt", "/root", "/tmp/build"), ("/opt/app/share/man",))
    assert selection.copy == ["/tmp/build/a.o", "/usr/local", "/usr/local/bin/x"]
    assert selection.whiteouts == ["/opt/old"]
    assert selection.credentials == ["/opt/app/.ssh", "/opt/app/credentials.json"]
    assert "/root/.cache/pip/http/1" in selection.excluded and "/opt/app/share/man/x.1" in selection.excluded


def test_secret_scan_refuses_keys_tokens_and_secret_values(tmp_path: Path) -> None:
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt" / "fine.txt").write_text("nothing to see; BEGIN CERTIFICATE is public\n")
    scan_secrets(tmp_path, {})
    env = secret_values({"HF_TOKEN": "abcdefgh12345678", "PATH": "/usr/bin", "MY_API_KEY": "short"})
    assert env == {"HF_TOKEN": "abcdefgh12345678"}
    (tmp_path / "opt" / "conf").write_text("token=abcdefgh12345678\n")
    with pytest.raises(UsageError, match=r"/opt/conf holds the value of \$HF_TOKEN"):
        scan_secrets(tmp_path, env)
    (tmp_path / "opt" / "conf").unlink()
    (tmp_path / "opt" / "k.pem").write_text("-----BEGIN EC PRIVATE KEY-----\nMHc\n")
    with pytest.raises(UsageError, match="private key"):
        scan_secrets(tmp_path, {})
    scan_secrets(tmp_path, {}, allow=("/opt/k.pem",))
    (tmp_path / "opt" / "k.pem").unlink()
    (tmp_path / "opt" / "t").write_bytes(b"\x00ghp_" + b"A" * 36 + b"\x00")
    with pytest.raises(UsageError, match="a token"):
        scan_secrets(tmp_path, {})


def test_every_shipped_recipe_builds_by_its_own_name():
    from prebake.shipped import recipe_path, shipped_recipes

    found = shipped_recipes()
    assert {"hello", "opensmile", "pose", "face", "gpu-extractors", "opensmile-source"} <= {r.name for r in found}
    for shipped in found:
        assert load(recipe_path(shipped.name)).name == shipped.name
        assert shipped.summary and "\n" not in shipped.summary


def test_a_path_wins_over_a_shipped_name_and_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    from prebake.shipped import recipe_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello").mkdir()
    with pytest.raises(UsageError, match=r"hello/ here has no pack.toml, and it hides the shipped recipe 'hello'"):
        recipe_path("hello")
    (tmp_path / "hello" / "pack.toml").write_text(MINIMAL)
    assert recipe_path("hello") == Path("hello")
    with pytest.raises(UsageError, match=r"'nope' is neither a file nor a shipped recipe; .*hello.*opensmile"):
        recipe_path("nope")


def test_the_level_help_states_the_real_default():
    from prebake.cli import cli
    from prebake.pack import DEFAULT_LEVEL

    for command in (cli.commands["pack"], cli.commands["build"]):
        [level] = [p for p in command.params if p.name == "level"]
        assert f"default {DEFAULT_LEVEL};" in level.help


# ---------------------------------------------------------------- [conda]

CONDA_BASE = 'name = "md"\nversion = "1"\nruntime = "2026.07"\n'


def test_a_conda_section_defaults_its_prefix_and_channel_and_captures_only_the_environment() -> None:
    recipe = parse(CONDA_BASE + '[conda]\npackages = ["rdkit", "openmm=8.1"]\n')
    assert recipe.conda is not None
    assert (recipe.conda.prefix, recipe.conda.channels, recipe.conda.packages) == ("/opt/envs/md", ("conda-forge",), ("rdkit", "openmm=8.1"))
    assert recipe.roots == ("/opt/envs/md",)


def test_a_conda_environment_file_ships_with_the_recipe_and_counts_in_the_digest(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text("dependencies: [rdkit]\n")
    text = CONDA_BASE + '[conda]\nfile = "environment.yml"\n'
    first = parse(text, base=tmp_path)
    assert first.conda is not None and first.conda.file is not None and first.conda.file.dest == "/tmp/prebake-conda/environment.yml"
    (tmp_path / "environment.yml").write_text("dependencies: [rdkit, openmm]\n")
    assert parse(text, base=tmp_path).digest != first.digest


@pytest.mark.parametrize(("table", "field", "problem"), [
    ('prefix = "/usr/local"\npackages = ["x"]', "conda.prefix", "is a system folder"),
    ('prefix = "envs/md"\npackages = ["x"]', "conda.prefix", "absolute"),
    ('channels = []\npackages = ["x"]', "conda.channels", "is empty"),
    ("channels = ['conda-forge']", "conda", "lists no packages and no file"),
    ('packages = ["x"]\npython = "3.12"', "conda", "python"),
])
def test_a_bad_conda_section_is_refused_naming_the_field(table: str, field: str, problem: str) -> None:
    with pytest.raises(UsageError, match=field) as caught:
        parse(CONDA_BASE + "[conda]\n" + table + "\n")
    assert problem in str(caught.value)


def test_capture_roots_beside_conda_are_refused() -> None:
    with pytest.raises(UsageError, match="a recipe with \\[conda\\] packs its environment only"):
        parse(CONDA_BASE + '[capture]\nroots = ["/opt"]\n[conda]\npackages = ["x"]\n')


def test_recipes_without_conda_keep_their_digest() -> None:
    """The digest prebake gave this recipe before [conda] existed: packs built then stay cache hits."""
    text = 'name = "a"\nversion = "1"\nruntime = "2026.07"\ninstall = ["true"]\n'
    assert parse(text).digest == "sha256:9333bd4b3b4f6095a02e90d0ce4500a9f83aa3a8cdd183379e760a78d7f69dbb"


# ---------------------------------------------------------------- [tool]


def test_a_tool_recipe_captures_its_folder_and_keeps_older_digests_apart() -> None:
    text = 'name = "t"\nversion = "1"\nruntime = "2026.07"\ninstall = ["true"]\n'
    recipe = parse(text + '[tool]\nprefix = "/opt/t"\n')
    assert recipe.tool is not None and recipe.tool.prefix == "/opt/t" and recipe.roots == ("/opt/t",)
    assert recipe.digest != parse(text).digest


@pytest.mark.parametrize(("table", "problem"), [
    ("", "tool.prefix"),
    ('prefix = "/usr/local"', "is a system folder"),
    ('prefix = "opt/t"', "absolute"),
    ('prefix = "/opt/t"\npython = "3.12"', "python"),
])
def test_a_bad_tool_section_is_refused_naming_the_field(table: str, problem: str) -> None:
    with pytest.raises(UsageError, match="tool") as caught:
        parse('name = "t"\nversion = "1"\nruntime = "2026.07"\ninstall = ["true"]\n[tool]\n' + table + "\n")
    assert problem in str(caught.value)
