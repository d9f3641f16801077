"""Conda environment packs: packed with conda-pack's records, restored at any prefix in-process.

Every environment here is real: packages built offline with py-rattler-build, installed with
py-rattler (tests/conda_env.py). Restores go into real prefixes below tmp_path with root /, so the
programs run where their rewritten paths point.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prebake.conda import pack_conda
from prebake.errors import ConflictError, UnsafePackError, UsageError
from prebake.manifest import CondaPrefix, loads
from prebake.pack import PackOptions
from prebake.relocate import _binary, moved
from prebake.restore import installed, restore

from tests.conftest import craft_pack, member, run_cli

pytest_plugins = ["tests.conda_env"]

PROGRAMS = ("pb-config", "pb-greet", "pb-longbin", "pb-pyhello")


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Restores go to real paths (root /); their state stays in the test's folder."""
    state = tmp_path / "state"
    monkeypatch.setenv("PREBAKE_STATE_DIR", str(state))
    return state


@pytest.fixture
def conda_pack_dir(make_conda_env, tmp_path: Path) -> tuple[Path, Path, str]:
    """(the environment as installed, its pack, the prefix it was packed for)."""
    env = make_conda_env(tmp_path / "built" / "env")
    to = str(tmp_path / "opt" / "envs" / "demo")
    pack_conda(env, tmp_path / "pack", PackOptions(name="demo", version="1", target=to))
    return env, tmp_path / "pack", to


def run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True, env=env).stdout


def files_holding(folder: Path, text: str) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and not p.is_symlink() and text.encode() in p.read_bytes())


def expected_output(prefix: Path) -> dict[str, str]:
    return {
        "pb-config": f"datadir={prefix}/share/pb-config\n",
        "pb-greet": "hello from pb-greet\n",
        "pb-longbin": (f"{prefix}\n{prefix}/lib/pb-longbin/a/rather/long/suffix/that/follows/the/prefix/in/one/string/"
                       f"libpblong.so.1.2.3\n{prefix}/lib:{prefix}/share\n"),
        "pb-pyhello": "hello from pb_pyhello\n",
    }


@pytest.mark.parametrize("where", ["packed", "longer", "shorter"])
def test_an_environment_restores_and_runs_at_its_own_a_longer_and_a_shorter_prefix(conda_pack_dir, tmp_path: Path, where: str) -> None:
    env, pack_dir, to = conda_pack_dir
    prefix = {"packed": Path(to), "longer": tmp_path / ("a-much-longer-folder-name-" * 4) / "env",
              "shorter": tmp_path / "e"}[where]
    [result] = restore(pack_dir, prefix=None if where == "packed" else str(prefix), progress=False, apply_env=False)
    assert result.files > 10
    for program, output in expected_output(prefix).items():
        assert run(prefix / "bin" / program) == output, program
    # Entry points get the new prefix's own python, by absolute path.
    assert (prefix / "bin/pb-pyhello").read_text().splitlines()[0] == f"#!{prefix}/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    code = "import sys, pb_pyhello; print(sys.prefix, pb_pyhello.hello())"
    assert run(prefix / "bin/python", "-c", code) == f"{prefix} hello from pb_pyhello\n"
    # Nothing holds the folder it was installed at, nor (once moved) the one it was packed for.
    assert files_holding(prefix, str(env)) == []
    if where != "packed":
        assert files_holding(prefix, to) == []
    assert installed(Path("/"), "demo")["prefix"] == str(prefix)


def test_binaries_keep_their_length_and_text_files_take_any_length(conda_pack_dir, tmp_path: Path) -> None:
    env, pack_dir, _ = conda_pack_dir
    prefix = tmp_path / "x"
    restore(pack_dir, prefix=str(prefix), progress=False, apply_env=False)
    for binary in ("bin/pb-greet", "bin/pb-longbin"):
        assert (prefix / binary).stat().st_size == (env / binary).stat().st_size
    assert (prefix / "etc/pb-config.conf").stat().st_size < (env / "etc/pb-config.conf").stat().st_size


def test_a_restored_environment_is_usable_in_the_running_kernel(conda_pack_dir, tmp_path: Path, state_dir: Path) -> None:
    """PATH for !commands and subprocesses, site-packages importable (the env's python is the kernel's)."""
    _, pack_dir, _ = conda_pack_dir
    prefix = tmp_path / "kernel-env"
    script = (
        "import shutil, subprocess, prebake\n"
        f"prebake.restore({str(pack_dir)!r}, prefix={str(prefix)!r}, progress=False)\n"
        "import pb_pyhello\n"
        "print(pb_pyhello.__file__)\n"
        "print(shutil.which('pb-config'))\n"
        "print(subprocess.run(['pb-greet'], capture_output=True, text=True).stdout, end='')\n"
    )
    env = {**os.environ, "PREBAKE_STATE_DIR": str(state_dir)}
    lines = run(sys.executable, "-c", script, env=env).splitlines()
    site_packages = prefix / f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    assert lines == [str(site_packages / "pb_pyhello/__init__.py"), str(prefix / "bin/pb-config"), "hello from pb-greet"]


def test_an_environment_with_another_python_says_how_to_run_it_and_adds_no_imports(make_conda_env, tmp_path: Path, state_dir: Path) -> None:
    env = make_conda_env(tmp_path / "old-env", ["python 3.8.*", "pb-pyhello", "pb-config"])
    pack_conda(env, tmp_path / "pack", PackOptions(name="old", version="1", target=str(tmp_path / "old")))
    script = (
        "import sys, prebake\n"
        "before = list(sys.path)\n"
        f"prebake.restore({str(tmp_path / 'pack')!r}, progress=False)\n"
        "print(sys.path == before)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "PREBAKE_STATE_DIR": str(state_dir)})
    assert done.stdout == "True\n"
    [warning] = [line for line in done.stderr.splitlines() if "Python 3.8" in line]
    assert f"run them with its own python: !{tmp_path / 'old'}/bin/python script.py" in warning
    assert run(tmp_path / "old/bin/pb-config") == f"datadir={tmp_path / 'old'}/share/pb-config\n"


def test_a_prefix_longer_than_the_placeholders_is_refused_before_anything_is_written(conda_pack_dir, tmp_path: Path, state_dir: Path) -> None:
    _, pack_dir, _ = conda_pack_dir
    prefix = tmp_path / ("p" * 250)
    with pytest.raises(UsageError, match=r"bytes; the binaries of pack demo hold room for \d+: choose a shorter prefix"):
        restore(pack_dir, prefix=str(prefix), progress=False)
    assert not prefix.exists() and not state_dir.joinpath("installed").exists()
    with pytest.raises(UsageError, match="prefix 'relative/env' must be a normalised absolute path") as caught:
        restore(pack_dir, prefix="relative/env", progress=False)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("prefix", ["/usr/local", "/opt", "/", "/content"])
def test_a_system_folder_is_never_an_environment_prefix(conda_pack_dir, prefix: str) -> None:
    _, pack_dir, _ = conda_pack_dir
    with pytest.raises(UsageError, match="is a system folder; a conda environment gets a folder of its own"):
        restore(pack_dir, prefix=prefix, progress=False)


def test_a_folder_holding_other_files_is_refused_and_left_as_it_was(conda_pack_dir, tmp_path: Path) -> None:
    _, pack_dir, _ = conda_pack_dir
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ConflictError, match="already holds files that are not a conda environment"):
        restore(pack_dir, prefix=str(busy), progress=False)
    assert sorted(os.listdir(busy)) == ["notes.txt"]


def test_restoring_again_is_a_no_op_at_the_same_prefix_and_a_restore_at_another(conda_pack_dir, tmp_path: Path) -> None:
    _, pack_dir, _ = conda_pack_dir
    first, second = tmp_path / "one", tmp_path / "two"
    assert not restore(pack_dir, prefix=str(first), progress=False, apply_env=False)[0].skipped
    assert restore(pack_dir, prefix=str(first), progress=False, apply_env=False)[0].skipped
    assert not restore(pack_dir, prefix=str(second), progress=False, apply_env=False)[0].skipped
    assert run(second / "bin/pb-config") == f"datadir={second}/share/pb-config\n"


def test_prefix_is_refused_for_a_pack_that_is_not_an_environment(tmp_path: Path) -> None:
    craft_pack(tmp_path / "pack", [member("opt/app/x")])
    with pytest.raises(UsageError, match="is not a conda environment; prefix moves conda environment packs only"):
        restore(tmp_path / "pack", prefix=str(tmp_path / "env"), progress=False)


def test_a_killed_restore_is_redone_whole_by_the_next_one(conda_pack_dir, tmp_path: Path, state_dir: Path) -> None:
    """Killed between two rewrites: the part was verified but not done, so the rerun undoes and redoes it."""
    _, pack_dir, _ = conda_pack_dir
    prefix = tmp_path / "killed"
    script = (
        "import os, signal\n"
        "from prebake.relocate import Relocation\n"
        "rewrite = Relocation.rewrite\n"
        "def once_then_die(self, fd, path):\n"
        "    rewrite(self, fd, path)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "Relocation.rewrite = once_then_die\n"
        "from prebake.restore import restore\n"
        f"restore({str(pack_dir)!r}, prefix={str(prefix)!r}, progress=False, workers='threads', apply_env=False)\n"
    )
    child = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PREBAKE_STATE_DIR": str(state_dir)})
    assert child.returncode == -9
    assert not installed(Path("/"), "demo")
    [result] = restore(pack_dir, prefix=str(prefix), progress=False, apply_env=False)
    assert not result.skipped
    for program, output in expected_output(prefix).items():
        assert run(prefix / "bin" / program) == output


def test_only_files_the_pack_itself_writes_are_rewritten(tmp_path: Path, state_dir: Path) -> None:
    """A hostile manifest naming a file it does not ship (one already in the environment) changes nothing there."""
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    theirs = prefix / "etc" / "theirs.conf"
    theirs.parent.mkdir()
    theirs.write_text("/placeholder/path stays\n")
    conda = CondaPrefix(prefix=str(prefix), placeholders=("/placeholder/path",), text={"etc/theirs.conf": 0, "etc/ours.conf": 0})
    craft_pack(tmp_path / "pack", [member(f"{str(prefix)[1:]}/etc/ours.conf", data=b"at /placeholder/path\n")],
               prefixes=(str(prefix),), conda=conda)
    restore(tmp_path / "pack", progress=False, apply_env=False)
    assert theirs.read_text() == "/placeholder/path stays\n"
    assert (prefix / "etc/ours.conf").read_text() == f"at {prefix}\n"


def test_a_missing_package_cache_is_one_line_naming_the_packages(make_conda_env, tmp_path: Path, conda_channel) -> None:
    from tests.conda_env import install_env

    env = install_env(conda_channel, tmp_path / "env", ["pb-config", "pb-greet"], tmp_path / "own-cache")
    shutil.rmtree(tmp_path / "own-cache")
    with pytest.raises(UsageError) as caught:
        pack_conda(env, tmp_path / "pack", PackOptions(name="x", version="1", target=str(tmp_path / "to")))
    message = str(caught.value)
    assert "\n" not in message and "pb-config 1.0" in message and "pb-greet 1.0" in message
    assert "conda-pack reads which files hold the prefix from there" in message
    assert not (tmp_path / "pack").exists()


def test_pack_refuses_what_is_not_an_environment_and_system_folders(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(UsageError, match="is not a conda environment"):
        pack_conda(tmp_path / "plain", tmp_path / "pack", PackOptions(name="x", version="1", target=str(tmp_path / "to")))
    assert run_cli("pack", "--conda", str(tmp_path / "plain"), "--to", "/usr/local", "-o", str(tmp_path / "p")) == 2


def test_the_cli_packs_and_restores_an_environment_at_another_prefix(make_conda_env, tmp_path: Path) -> None:
    env = make_conda_env(tmp_path / "env")
    to, moved_to = tmp_path / "to", tmp_path / "moved"
    assert run_cli("pack", "--conda", str(env), "--to", str(to), "-o", str(tmp_path / "pack"), "--name", "cli") == 0
    manifest = loads((tmp_path / "pack/manifest.json").read_bytes())
    assert manifest.conda is not None and manifest.platform is not None and manifest.platform.python is None
    assert manifest.env.prepend["PATH"] == (f"{to}/bin",)
    assert run_cli("restore", str(tmp_path / "pack"), "--prefix", str(moved_to), "-q") == 0
    assert run(moved_to / "bin/pb-longbin") == expected_output(moved_to)["pb-longbin"]


def test_absolute_links_into_the_environment_move_with_it(make_conda_env, tmp_path: Path) -> None:
    env = make_conda_env(tmp_path / "env")
    (env / "share/greeting-link").symlink_to(env / "share/pb-greet/greeting.txt")
    pack_conda(env, tmp_path / "pack", PackOptions(name="links", version="1", target=str(tmp_path / "to")))
    restore(tmp_path / "pack", prefix=str(tmp_path / "moved"), progress=False, apply_env=False)
    link = tmp_path / "moved/share/greeting-link"
    assert os.readlink(link) == "pb-greet/greeting.txt"
    assert link.read_text() == (env / "share/pb-greet/greeting.txt").read_text()


# ---------------------------------------------------------------- properties

placeholders = st.binary(min_size=8, max_size=40).filter(lambda b: b"\0" not in b)
text_pieces = st.binary(max_size=30).map(lambda b: b.replace(b"\0", b"x"))


@given(placeholder=placeholders, data=st.data())
def test_binary_rewrite_keeps_every_offset_and_every_c_string_reads_with_the_prefix(placeholder: bytes, data) -> None:
    prefix = data.draw(st.binary(min_size=1, max_size=len(placeholder)).filter(lambda b: b"\0" not in b))
    strings = data.draw(st.lists(st.lists(st.one_of(st.just(placeholder), text_pieces), max_size=4), max_size=6))
    blob = b"".join(b"".join(pieces) + b"\0" * data.draw(st.integers(1, 3)) for pieces in strings)
    out = _binary(blob, placeholder, prefix)
    assert len(out) == len(blob)
    assert [s for s in out.split(b"\0") if s] == [s.replace(placeholder, prefix) for s in blob.split(b"\0") if s]


@given(prefix=st.from_regex(r"/[a-z]{1,8}(/[a-z0-9._-]{1,8}){1,4}", fullmatch=True))
def test_a_moved_manifest_keeps_every_path_under_the_new_prefix(prefix: str) -> None:
    conda = CondaPrefix(prefix="/opt/envs/demo", placeholders=("/" + "p" * 80,), binary={"bin/x": 0})
    manifest = craft_manifest(conda)
    try:
        result = moved(manifest, prefix)
    except UsageError:
        return  # a system folder: refused
    assert result.prefixes == (prefix,) and result.conda is not None and result.conda.prefix == prefix
    for path in (*result.symlinks, *result.whiteouts, *result.env.prepend["PATH"]):
        assert path == prefix or path.startswith(prefix + "/")
    loads(result.dumps())  # still a valid manifest


def craft_manifest(conda: CondaPrefix):
    from prebake.manifest import Env, Manifest

    return Manifest(name="demo", version="1", target=conda.prefix, prefixes=(conda.prefix,), parts=(), conda=conda,
                    symlinks=(f"{conda.prefix}/lib/libx.so",), whiteouts=(f"{conda.prefix}/old",),
                    env=Env({"PATH": (f"{conda.prefix}/bin",)}))


def test_a_hard_linked_member_moves_with_the_prefix(tmp_path: Path) -> None:
    prefix = "/opt/envs/hl"
    conda = CondaPrefix(prefix=prefix, placeholders=("/placeholder",), text={"bin/b": 0, "bin/a": 0})
    info, data = member("opt/envs/hl/bin/a", data=b"/placeholder\n")
    link = tarfile.TarInfo("opt/envs/hl/bin/b")
    link.type, link.linkname = tarfile.LNKTYPE, "opt/envs/hl/bin/a"
    craft_pack(tmp_path / "pack", [(info, data), (link, b"")], prefixes=(prefix,), conda=conda)
    target = tmp_path / "placeholder" / "moved"  # holds the placeholder: a second rewrite would show
    restore(tmp_path / "pack", prefix=str(target), progress=False, apply_env=False)
    assert (target / "bin/b").read_text() == f"{target}\n"  # once, though both names are recorded
    assert (target / "bin/a").stat().st_ino == (target / "bin/b").stat().st_ino


# ---------------------------------------------------------------- hostile packs and machines (from the review)


def crafted_conda(tmp_path: Path, prefix: str, data: bytes = b"at /placeholder/path\n", **fields) -> Path:
    conda = CondaPrefix(prefix=prefix, placeholders=("/placeholder/path",), text={"etc/conf": 0}, **fields)
    craft_pack(tmp_path / "pack", [member(f"{prefix[1:]}/etc/conf", data=data)], prefixes=(prefix,), conda=conda)
    return tmp_path / "pack"


def test_parts_verified_at_one_prefix_are_not_taken_as_done_at_another(make_conda_env, tmp_path: Path, state_dir: Path) -> None:
    env = make_conda_env(tmp_path / "env")
    pack_conda(env, tmp_path / "pack", PackOptions(name="parts", version="1", target=str(tmp_path / "to"), part_size=8_000, min_parts=1))
    assert len(loads((tmp_path / "pack/manifest.json").read_bytes()).parts) > 2
    first, second = tmp_path / "first", tmp_path / "second"
    script = (
        "import os, signal\n"
        "import importlib\n"
        "r = importlib.import_module('prebake.restore')\n"
        "add = r._Finished.add\n"
        "def add_then_die(self, part):\n"
        "    add(self, part)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "r._Finished.add = add_then_die\n"
        f"r.restore({str(tmp_path / 'pack')!r}, prefix={str(first)!r}, progress=False, workers='threads', jobs=1, apply_env=False)\n"
    )
    assert subprocess.run([sys.executable, "-c", script], env={**os.environ, "PREBAKE_STATE_DIR": str(state_dir)}).returncode == -9
    restore(tmp_path / "pack", prefix=str(second), progress=False, apply_env=False)
    for program, output in expected_output(second).items():
        assert run(second / "bin" / program) == output


@pytest.mark.parametrize(("fields", "prefix", "problem"), [
    ({}, "/opt/envs/a:/tmp", "without ':'"),
    ({"site_packages": "lib:/tmp"}, "/opt/envs/a", "conda.site_packages"),
    ({"python": "3.12\nERROR fake"}, "/opt/envs/a", "must be X.Y or empty"),
    ({"pinned": "line one\nTraceback"}, "/opt/envs/a", "one line of text"),
    ({}, "/usr/local", "is a system folder"),
])
def test_hostile_conda_fields_are_refused_before_anything_is_written(tmp_path: Path, fields: dict, prefix: str, problem: str) -> None:
    pack_dir = crafted_conda(tmp_path, prefix, **fields)
    with pytest.raises(UsageError, match=problem):
        restore(pack_dir, root=tmp_path / "root", progress=False)
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").rglob("conf"))


def test_a_short_placeholder_cannot_multiply_the_bytes_written(tmp_path: Path) -> None:
    prefix = str(tmp_path / "env")
    craft_pack(tmp_path / "short", [member(f"{prefix[1:]}/etc/conf")], prefixes=(prefix,),
               conda=CondaPrefix(prefix=prefix, placeholders=("/a",), text={"etc/conf": 0}))
    with pytest.raises(UsageError, match="8 bytes or more"):
        restore(tmp_path / "short", progress=False)
    pack_dir = crafted_conda(tmp_path, prefix, data=b"/placeholder/path" * 200_000)
    with pytest.raises(UnsafePackError, match="would grow from"):
        restore(pack_dir, prefix=str(tmp_path / ("long-" * 40)), progress=False, apply_env=False)
    assert not (tmp_path / ("long-" * 40) / "etc/conf").exists()


def test_a_prefix_that_is_a_file_or_leads_to_a_system_folder_is_refused(tmp_path: Path) -> None:
    pack_dir = crafted_conda(tmp_path, str(tmp_path / "env"))
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(ConflictError, match="exists and is not a folder"):
        restore(pack_dir, prefix=str(notes), progress=False)
    assert notes.read_text() == "mine"
    (tmp_path / "to-usr").symlink_to("/usr")
    with pytest.raises(UsageError, match="leads to the system folder /usr"):
        restore(pack_dir, prefix=str(tmp_path / "to-usr"), progress=False)


def test_a_read_only_file_is_rewritten_and_keeps_its_mode(tmp_path: Path) -> None:
    prefix = str(tmp_path / "env")
    info, data = member(f"{prefix[1:]}/etc/conf", data=b"at /placeholder/path\n", mode=0o444)
    craft_pack(tmp_path / "pack", [(info, data)], prefixes=(prefix,),
               conda=CondaPrefix(prefix=prefix, placeholders=("/placeholder/path",), text={"etc/conf": 0}))
    restore(tmp_path / "pack", progress=False, apply_env=False)
    conf = tmp_path / "env/etc/conf"
    assert conf.read_text() == f"at {prefix}\n" and conf.stat().st_mode & 0o777 == 0o444


def test_a_file_where_the_manifest_lists_a_symlink_is_refused(tmp_path: Path) -> None:
    craft_pack(tmp_path / "pack", [member("opt/app/link")], symlinks=("/opt/app/link",))
    with pytest.raises(UnsafePackError, match="listed as a symlink in the manifest but is not one"):
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
