"""`prebake build` with the docker backend, end to end, against a real engine and real registries.

One recipe does everything the builder is for: a compiler toolchain in prepare (not captured), GNU
hello compiled from Debian's upstream source release into /opt/hello, MarkupSafe built from its
sdist (C extension) by pip, a model file fetched from a local HTTP server with its sha256, and a
file of the base image deleted. It is built once per module; the tests then look at the pack,
restore it into fresh containers and rebuild it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from contextlib import closing
from pathlib import Path

import pytest
import zstandard
from prebake.manifest import loads

from ..servers import FolderServer
from .conftest import leftover_containers, prebake

pytestmark = [pytest.mark.docker]

TOKEN = "hf_" + "TestTokenNeverPacked0123456789abcdef"
FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAAfake\\n-----END OPENSSH PRIVATE KEY-----"

E2E_RECIPE = """
name = "hello"
version = "2.10"
runtime = "2026.07"
secrets = ["HF_TOKEN"]
prepare = [
  "sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/src.list",
  "apt-get update -q",
  "apt-get install -y -q --no-install-recommends gcc make libc6-dev python3-dev",
]
install = [
  {{ name = "GNU hello from its upstream release", run = '''
     mkdir -p /tmp/build && cd /tmp/build
     apt-get source --download-only hello
     tar xf hello_*.orig.tar.gz && cd hello-2.10
     ./configure --prefix=/opt/hello -q && make -j2 -s && make install -s''' }},
  {{ name = "MarkupSafe from its sdist", run = "pip install --no-binary markupsafe markupsafe==3.0.2" }},
  {{ name = "delete a file of the base image", run = "rm {deleted}" }},
  {{ name = "credentials lying around", run = '''
     mkdir -p /root/.ssh /opt/hello/etc
     printf -- '{key}\\n' > /root/.ssh/id_rsa
     echo '{{"token": "x"}}' > /opt/hello/etc/credentials.json
     test -n "$HF_TOKEN" && echo "token is ${{#HF_TOKEN}} characters long" ''' }},
]
check = '''
hello | grep -q "Hello, world!"
python -c 'import markupsafe._speedups, markupsafe; assert markupsafe.escape("<b>") == "&lt;b&gt;"'
echo "{sha}  /opt/models/model.bin" | sha256sum -c -
test ! -e {deleted}
! command -v gcc
'''

[[fetch]]
url = "{url}/model.bin"
sha256 = "{sha}"
dest = "/opt/models/model.bin"

[capture]
roots = ["/usr/local", "/opt", "/root", "{deleted}"]

[env]
prepend = {{ PATH = ["/opt/hello/bin"] }}
set = {{ HELLO_HOME = "/opt/hello" }}
"""


def _members(pack: Path) -> dict[str, bytes]:
    """Every member of every part: name -> content (b'' for non-files)."""
    found = {}
    for part in sorted(pack.glob("part-*.tar.zst")):
        data = zstandard.ZstdDecompressor().decompress(part.read_bytes(), max_output_size=1 << 31)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                f = tar.extractfile(member) if member.isfile() else None
                found[member.name] = f.read() if f else b""
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    model = os.urandom(300_000)
    (www / "model.bin").write_bytes(model)
    with FolderServer(www) as server:
        yield server, hashlib.sha256(model).hexdigest()


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, served, build_args, base_python):
    server, sha = served
    work = tmp_path_factory.mktemp("e2e")
    recipe = work / "hello.toml"
    deleted = f"/usr/lib/python{base_python}/EXTERNALLY-MANAGED"
    recipe.write_text(E2E_RECIPE.format(url=server.url, sha=sha, deleted=deleted, key=FAKE_KEY))
    out = work / "out"
    started = time.perf_counter()
    proc = prebake("build", str(recipe), "-o", str(out), *build_args, env={"HF_TOKEN": TOKEN})
    seconds = time.perf_counter() - started
    return {"recipe": recipe, "out": out, "pack": out / "hello", "proc": proc, "seconds": seconds, "deleted": deleted,
            "work": work}


@pytest.mark.slow
def test_e2e_build_runs_check_in_a_fresh_container(e2e) -> None:
    proc = e2e["proc"]
    assert "built hello 2.10" in proc.stdout
    assert "check in a fresh container" in proc.stderr
    assert "Hello, world!" not in proc.stdout  # the check's output is streamed to stderr, the summary to stdout
    manifest = loads((e2e["pack"] / "manifest.json").read_bytes())
    assert manifest.created_by["recipe_digest"].startswith("sha256:")
    assert manifest.created_by["image"].startswith("prebake-colab:2026.07-")
    assert manifest.platform is not None and manifest.platform.os == "debian 12" and manifest.platform.glibc
    assert manifest.whiteouts == (e2e["deleted"],)
    assert leftover_containers() == []
    print(f"\n[numbers] e2e build {e2e['seconds']:.1f} s; pack {manifest.packed_size / 2**20:.2f} MiB "
          f"({manifest.stats['bytes'] / 2**20:.2f} MiB, {manifest.stats['members']} entries)\n{proc.stdout}")


@pytest.mark.slow
def test_the_pack_holds_what_install_added_and_nothing_else(e2e) -> None:
    members = _members(e2e["pack"])
    names = set(members)
    assert "opt/hello/bin/hello" in names
    assert "opt/models/model.bin" in names
    assert any(n.endswith("markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so") or "_speedups.cpython-" in n for n in names)
    assert any("__pycache__" in n and n.endswith(".pyc") for n in names)
    # no toolchain, no caches, no scratch space
    assert not [n for n in names if n.startswith(("usr/bin", "usr/lib/gcc", "usr/libexec", "var/", "tmp/"))]
    assert not [n for n in names if "/.cache/" in n or n.startswith("root/.cache")]
    assert not [n for n in names if n.startswith("usr/") and not n.startswith("usr/local")]


@pytest.mark.slow
def test_credentials_and_tokens_never_reach_the_pack(e2e) -> None:
    members = _members(e2e["pack"])
    assert not [n for n in members if ".ssh" in n or n.endswith("credentials.json")]
    everything = b"".join(members.values()) + (e2e["pack"] / "manifest.json").read_bytes()
    assert TOKEN.encode() not in everything
    assert b"PRIVATE KEY" not in everything
    assert TOKEN not in e2e["proc"].stderr, "step output must mask secrets"
    assert "credential path(s)" in e2e["proc"].stdout


@pytest.mark.slow
def test_rebuild_with_nothing_changed_is_a_cache_hit_under_5_s(e2e, build_args) -> None:
    before = (e2e["pack"] / "manifest.json").read_bytes()
    started = time.perf_counter()
    proc = prebake("build", str(e2e["recipe"]), "-o", str(e2e["out"]), *build_args, env={"HF_TOKEN": TOKEN})
    seconds = time.perf_counter() - started
    assert "is up to date" in proc.stdout
    assert (e2e["pack"] / "manifest.json").read_bytes() == before
    assert seconds < 5, f"a rebuild with nothing changed took {seconds:.1f} s"
    print(f"\n[numbers] rebuild (cache hit) {seconds:.2f} s")


@pytest.mark.slow
def test_check_command_restores_into_a_fresh_container(e2e, base_image) -> None:
    """`prebake check` against the bare base image (not the mirror): `python` is not there, so the
    recipe's check fails there, which proves the check really runs in the image it is given."""
    manifest = loads((e2e["pack"] / "manifest.json").read_bytes())
    mirror = manifest.created_by["image"]
    ok = prebake("check", str(e2e["pack"]), "--image", mirror)
    assert "passed" in ok.stdout
    bare = prebake("check", str(e2e["pack"]), "--image", base_image, check=False)
    assert bare.returncode == 7, bare.stderr
    assert "exited with status" in bare.stderr
    assert leftover_containers() == []


@pytest.mark.slow
def test_restore_time_and_pyc_stay_valid(e2e) -> None:
    """First import after a restore uses the packed .pyc (no recompilation): python -v says the
    bytecode matches its source, the .pyc is not rewritten, and the first import is not slower
    than the second by more than noise."""
    from prebake.bake import restore_into
    from prebake.capture import docker as backend
    from prebake.restore import restore

    root = e2e["work"] / "restored"
    started = time.perf_counter()
    [result] = restore(str(e2e["pack"]), root=root, progress=False, force=True, apply_env=False)
    restore_seconds = time.perf_counter() - started
    assert result.members > 0

    manifest = loads((e2e["pack"] / "manifest.json").read_bytes())
    with closing(backend.client()) as engine, backend.Container(engine, manifest.created_by["image"], label="test") as container:
        started = time.perf_counter()
        restore_into(container, e2e["pack"])
        into_container = time.perf_counter() - started
        script = (
            "import glob, os, subprocess, sys, time\n"
            "pyc = glob.glob('/usr/local/lib/python3*/dist-packages/markupsafe/__pycache__/__init__.*.pyc')[0]\n"
            "before = (os.stat(pyc).st_mtime_ns, open(pyc, 'rb').read())\n"
            "def once():\n"
            "    t = time.perf_counter()\n"
            "    p = subprocess.run([sys.executable, '-v', '-c', 'import markupsafe'], capture_output=True, text=True)\n"
            "    return time.perf_counter() - t, p.stderr\n"
            "first, log = once()\n"
            "second, _ = once()\n"
            "after = (os.stat(pyc).st_mtime_ns, open(pyc, 'rb').read())\n"
            "lines = [l for l in log.splitlines() if 'markupsafe/__init__' in l]\n"
            "print(first, second, before == after, any('matches' in l for l in lines), any('stale' in l or 'bad mtime' in l for l in lines))\n"
        )
        ran = container.exec(["python", "-c", script])
    assert ran.code == 0, ran.tail
    first, second, unchanged, matches, stale = ran.tail[-1].split()
    assert unchanged == "True", "the first import rewrote the .pyc: it was stale after the restore"
    assert matches == "True" and stale == "False", ran.tail
    assert float(first) < float(second) * 3 + 0.2
    print(f"\n[numbers] restore {restore_seconds:.2f} s on the host ({result.packed_bytes / 2**20:.2f} MiB packed); "
          f"restore into a fresh container {into_container:.2f} s; first import {float(first) * 1000:.0f} ms, "
          f"second {float(second) * 1000:.0f} ms")


# ---------------------------------------------------------------- failures


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_a_failing_step_names_step_code_and_tail_and_writes_no_pack(tmp_path: Path, build_args) -> None:
    recipe = _recipe(tmp_path, """
name = "fails"
version = "1"
runtime = "2026.07"
install = [
  "mkdir -p /opt/fails && echo ok > /opt/fails/ok",
  { name = "compile", run = "echo 'checking for foo... no'; echo 'error: foo.h not found' >&2; exit 3" },
]
""")
    proc = prebake("build", str(recipe), "-o", str(tmp_path / "out"), *build_args, check=False)
    assert proc.returncode == 7, proc.stderr
    assert "install[1] compile" in proc.stderr
    assert "status 3" in proc.stderr
    assert "error: foo.h not found" in proc.stderr
    assert not (tmp_path / "out" / "fails").exists()
    assert leftover_containers() == []


def test_a_bad_sha256_fails_before_install_and_writes_no_pack(tmp_path: Path, served, build_args) -> None:
    server, sha = served
    wrong = hashlib.sha256(b"something else").hexdigest()
    recipe = _recipe(tmp_path, f"""
name = "badsum"
version = "1"
runtime = "2026.07"
install = ["touch /opt/should-not-run"]
[[fetch]]
url = "{server.url}/model.bin"
sha256 = "{wrong}"
dest = "/opt/models/model.bin"
""")
    proc = prebake("build", str(recipe), "-o", str(tmp_path / "out"), *build_args, check=False)
    assert proc.returncode == 5, proc.stderr
    assert f"has sha256 {sha}" in proc.stderr and wrong in proc.stderr
    assert "fetch[0]" in proc.stderr
    assert not (tmp_path / "out" / "badsum").exists()
    assert leftover_containers() == []


def test_an_invalid_recipe_is_refused_naming_the_field(tmp_path: Path, build_args) -> None:
    recipe = _recipe(tmp_path, 'name = "x"\nversion = "1"\nruntime = "2026.07"\ninstall = ["true"]\n[[fetch]]\nurl = "http://x/y"\nsha256 = "abc"\ndest = "/opt/y"\n')
    proc = prebake("build", str(recipe), "-o", str(tmp_path / "out"), *build_args, check=False)
    assert proc.returncode == 2
    assert "fetch[0].sha256" in proc.stderr


def test_a_token_written_into_the_capture_refuses_the_build(tmp_path: Path, build_args) -> None:
    recipe = _recipe(tmp_path, """
name = "leaky"
version = "1"
runtime = "2026.07"
secrets = ["HF_TOKEN"]
install = ["mkdir -p /opt/leaky && echo \\"token = $HF_TOKEN\\" > /opt/leaky/config.ini"]
""")
    proc = prebake("build", str(recipe), "-o", str(tmp_path / "out"), *build_args, env={"HF_TOKEN": TOKEN}, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "/opt/leaky/config.ini holds the value of $HF_TOKEN" in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout
    assert not (tmp_path / "out" / "leaky").exists()
    assert leftover_containers() == []


def test_a_dependency_is_present_in_the_build_and_not_captured_again(tmp_path: Path, build_args) -> None:
    base = _recipe(tmp_path, """
name = "tool"
version = "1"
runtime = "2026.07"
install = ["mkdir -p /opt/tool/bin && printf '#!/bin/sh\\necho tool-ran\\n' > /opt/tool/bin/tool && chmod +x /opt/tool/bin/tool"]
check = "/opt/tool/bin/tool"
""")
    user = tmp_path / "user.toml"
    user.write_text("""
name = "user"
version = "1"
runtime = "2026.07"
depends = ["tool"]
install = ["mkdir -p /opt/user && /opt/tool/bin/tool > /opt/user/out.txt"]
""")
    out = tmp_path / "out"
    prebake("build", str(user), str(base), "-o", str(out), *build_args)
    user_manifest = json.loads((out / "user" / "manifest.json").read_text())
    assert user_manifest["created_by"]["depends"].startswith("tool@sha256:")
    names = set(_members(out / "user"))
    assert "opt/user/out.txt" in names
    assert not [n for n in names if n.startswith("opt/tool")]
    assert _members(out / "user")["opt/user/out.txt"] == b"tool-ran\n"
