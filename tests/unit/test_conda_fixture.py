"""The conda test fixture makes real envs: programs run from the env and hold its prefix where expected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import conda_pack

pytest_plugins = ["tests.conda_env"]  # the conda_channel, conda_cache and make_conda_env fixtures

PREFIXED = {"bin/pb-config": "text", "etc/pb-config.conf": "text", "bin/pb-greet": "binary", "bin/pb-longbin": "binary"}


def run(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True).stdout


def test_env_programs_run_with_the_env_prefix(make_conda_env, tmp_path: Path) -> None:
    prefix = make_conda_env(tmp_path / "env")
    assert run(prefix / "bin/pb-config") == f"datadir={prefix}/share/pb-config\n"
    assert run(prefix / "bin/pb-greet") == "hello from pb-greet\n"
    assert run(prefix / "bin/pb-longbin").splitlines() == [
        f"{prefix}",
        f"{prefix}/lib/pb-longbin/a/rather/long/suffix/that/follows/the/prefix/in/one/string/libpblong.so.1.2.3",
        f"{prefix}/lib:{prefix}/share",
    ]
    assert run(prefix / "bin/pb-pyhello") == "hello from pb_pyhello\n"
    assert (prefix / "bin/pb-pyhello").read_text().startswith(f"#!{prefix}/bin/python{sys.version_info.major}.")
    code = "import sys, pb_pyhello; print(sys.prefix); print(pb_pyhello.hello())"
    assert run(prefix / "bin/python", "-c", code) == f"{prefix}\nhello from pb_pyhello\n"


def test_env_records_and_conda_pack_see_text_and_binary_prefixes(make_conda_env, tmp_path: Path) -> None:
    prefix = make_conda_env(tmp_path / "env")
    recorded = {}
    for record in (prefix / "conda-meta").glob("*.json"):
        for entry in json.loads(record.read_text())["paths_data"]["paths"]:
            if "prefix_placeholder" in entry:
                recorded[entry["_path"]] = entry["file_mode"]
                placeholder = entry["prefix_placeholder"].encode()
                data = (prefix / entry["_path"]).read_bytes()
                assert placeholder not in data and str(prefix).encode() in data
    assert recorded == PREFIXED
    # A binary prefix is rewritten in place: the string keeps its length, padded with NULs.
    assert f"{prefix}/share/pb-greet/greeting.txt\0\0".encode() in (prefix / "bin/pb-greet").read_bytes()

    modes = {f.target: f.file_mode for f in conda_pack.CondaEnv.from_prefix(str(prefix)).files}
    assert {path: modes[path] for path in PREFIXED} == PREFIXED


def test_env_with_another_python_version(make_conda_env, tmp_path: Path) -> None:
    prefix = make_conda_env(tmp_path / "env", ["python 3.8.*", "pb-pyhello"])
    assert run(prefix / "bin/python") == "Python 3.8.99\n"
    assert (prefix / "lib/python3.8/site-packages/pb_pyhello/__init__.py").is_file()
    assert (prefix / "bin/pb-pyhello").read_text().startswith(f"#!{prefix}/bin/python3.8\n")
