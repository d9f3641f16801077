"""One lock for two runtimes, for real: Debian bookworm (Python 3.11) and Debian trixie (3.13).

prebake is installed from this checkout's wheel into a virtualenv in a container of each image
(once per session, committed to a throwaway tag), and each container packs real Python content
(MarkupSafe with its compiled extension, for that Python, and a file naming the runtime) with
`prebake pack --platform auto`, so each manifest records its own runtime. One lock pins both
variants under one name; a fresh container of each image restores its own variant and
`prebake doctor` agrees. A lock whose variants are all for other runtimes stops the restore before
anything is written, in one line that names the variants and the build that would make the missing
one (exit 6, and the same exit from doctor).
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from prebake.lock import LockedPack, load, write_lock
from prebake.manifest import Env, Manifest, Platform, digest_of, loads
from prebake.pack import PackOptions, pack_tree

from .conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.docker]

VENV = "/opt/prebake"  # prebake inside the containers
TARGET = "/opt/variant"  # where every variant of the test pack restores


@dataclass(frozen=True)
class Runtime:
    suite: str
    image: str
    """The test base image with prebake installed (a throwaway tag, removed after the session)."""
    os: str
    python: str

    @property
    def words(self) -> str:
        """How the variant names itself in its files: 'debian 12 py3.11'."""
        return f"{self.os} py{self.python}"


def _run(argv: list[str], timeout: int = 300, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def runtimes(base_image: str, trixie_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Runtime]]:
    """Each test image with prebake (this checkout's wheel and its dependencies from PyPI) in a venv
    of the image's own python3, keyed by suite."""
    wheels = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)], timeout=600)
    [wheel] = wheels.glob("prebake-*.whl")
    session = uuid.uuid4().hex[:8]

    def install(suite: str, image: str) -> Runtime:
        name = f"prebake-test-variants-{suite}-{session}"
        script = (f"python3 -m venv {VENV} && {VENV}/bin/pip install -q --disable-pip-version-check /wheels/{wheel.name}\n"
                  f"{VENV}/bin/prebake --version\n"
                  ". /etc/os-release\n"
                  'echo "facts $(python3 -c \'import sys; print(*sys.version_info[:2], sep=".")\') $ID $VERSION_ID"\n')
        try:
            out = _run(["docker", "run", "--name", name, "--network", "host", "-v", f"{wheels}:/wheels:ro", image,
                        "sh", "-ec", script], timeout=600).stdout
            tag = f"prebake-test-variants:{suite}-{session}"
            _run(["docker", "commit", name, tag])
        finally:
            _run(["docker", "rm", "-f", name], check=False)
        [facts] = [line.split()[1:] for line in out.splitlines() if line.startswith("facts ")]
        return Runtime(suite, tag, os=" ".join(facts[1:]), python=facts[0])

    with ThreadPoolExecutor(2) as pool:
        made = list(pool.map(install, ("bookworm", "trixie"), (base_image, trixie_image)))
    try:
        yield {r.suite: r for r in made}
    finally:
        _run(["docker", "rmi", *(r.image for r in made)], check=False)


def test_the_images_are_two_runtimes(runtimes: dict[str, Runtime]) -> None:
    assert (runtimes["bookworm"].os, runtimes["bookworm"].python) == ("debian 12", "3.11")
    assert (runtimes["trixie"].os, runtimes["trixie"].python) == ("debian 13", "3.13")


PACK_SCRIPT = f"""
set -e
tree=/tmp/tree
mkdir -p $tree/lib
{VENV}/bin/pip install -q --disable-pip-version-check --target $tree/lib markupsafe==3.0.2
echo "$WORDS" > $tree/variant.txt
echo "VARIANT = '$WORDS'" > $tree/lib/variant_info.py
{VENV}/bin/prebake pack $tree --to {TARGET} -o /out/$SUITE --name variant --version 1.0 --platform auto \\
    --prepend PYTHONPATH={TARGET}/lib --check "python3 -c 'import markupsafe._speedups, variant_info'"
"""


@dataclass(frozen=True)
class Share:
    """The folder every restore container mounts at /share: packs/ and the locks."""

    path: Path
    manifests: dict[str, Manifest]


def _pinned(folder: Path) -> tuple[Manifest, LockedPack]:
    data = (folder / "manifest.json").read_bytes()
    manifest = loads(data)
    return manifest, LockedPack.pinning(manifest, digest_of(data), (str(folder),))


@pytest.fixture(scope="module")
def share(runtimes: dict[str, Runtime], tmp_path_factory: pytest.TempPathFactory) -> Share:
    """A variant of pack `variant` packed in each runtime, one made here for the Colab 2026.07
    runtime (Ubuntu, Python 3.12: a platform neither container is), and the locks:
    both.lock (bookworm + trixie), not-<suite>.lock (the two variants that do not fit <suite>),
    only-<suite>.lock (that one variant); images/ holds runtime facts that mirror each runtime."""
    root = tmp_path_factory.mktemp("share")
    packs = root / "packs"
    packs.mkdir()

    def pack(runtime: Runtime) -> None:
        _run(["docker", "run", "--rm", "--network", "host", "-v", f"{packs}:/out", "-e", f"SUITE={runtime.suite}",
              "-e", f"WORDS={runtime.words}", runtime.image, "sh", "-c", PACK_SCRIPT])

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(pack, runtimes.values()))

    colab = root / "colab-tree"
    (colab / "lib").mkdir(parents=True)
    (colab / "variant.txt").write_text("ubuntu 22.04 py3.12\n")
    (colab / "lib/variant_info.py").write_text("VARIANT = 'ubuntu 22.04 py3.12'\n")
    colab_platform = Platform(os="ubuntu 22.04", arch=platform.machine(), python="3.12",
                              abi=f"cpython-312-{platform.machine()}-linux-gnu", glibc="2.35")
    pack_tree(colab, packs / "colab", PackOptions(name="variant", version="1.0", target=TARGET, platform=colab_platform,
                                                  env=Env(prepend={"PYTHONPATH": (f"{TARGET}/lib",)})))

    pinned = {suite: _pinned(packs / suite) for suite in ("bookworm", "trixie", "colab")}
    write_lock(root / "both.lock", [pinned["bookworm"][1], pinned["trixie"][1]])
    for suite, other in (("bookworm", "trixie"), ("trixie", "bookworm")):
        write_lock(root / f"not-{suite}.lock", [pinned[other][1], pinned["colab"][1]])
        write_lock(root / f"only-{other}.lock", [pinned[other][1]])

    for runtime in runtimes.values():  # what `prebake image capture` would write in each, trimmed
        facts = root / "images" / runtime.suite / "runtime.toml"
        facts.parent.mkdir(parents=True)
        facts.write_text(f'runtime = "{runtime.suite}"\nbase_image = "prebake-test-base:{runtime.suite}"\n'
                         f'os = "{runtime.os}"\npython = "{runtime.python}"\n')
    return Share(root, {suite: manifest for suite, (manifest, _) in pinned.items()})


@contextmanager
def container(runtime: Runtime, share: Share) -> Iterator[Callable[..., subprocess.CompletedProcess]]:
    """A fresh container of `runtime` with /share mounted read-only and no network; yields
    exec(command, env) -> CompletedProcess (not checked)."""
    name = f"prebake-test-variants-{uuid.uuid4().hex[:10]}"
    _run(["docker", "run", "-d", "--name", name, "--network", "none", "-v", f"{share.path}:/share:ro",
          runtime.image, "sleep", "infinity"])
    try:
        def exec_(command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
            flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
            return _run(["docker", "exec", *flags, name, "sh", "-c", command], check=False)

        yield exec_
    finally:
        _run(["docker", "rm", "-f", name], check=False)


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_each_pack_records_the_runtime_it_was_packed_in(runtimes: dict[str, Runtime], share: Share) -> None:
    for suite, runtime in runtimes.items():
        recorded = share.manifests[suite].platform
        assert recorded is not None and (recorded.os, recorded.python) == (runtime.os, runtime.python)
        assert recorded.abi == f"cpython-{runtime.python.replace('.', '')}-{platform.machine()}-linux-gnu"
        assert recorded.glibc and recorded.arch == platform.machine()
    lock = load(share.path / "both.lock")
    assert [p.name for p in lock.packs] == ["variant", "variant"]
    assert {p.platform.python for p in lock.packs if p.platform} == {"3.11", "3.13"}
    assert lock.packs[0].digest != lock.packs[1].digest
    assert [p.locations for p in lock.packs] == [("packs/bookworm",), ("packs/trixie",)]  # relative: the folder can move


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_each_runtime_restores_its_own_variant_of_one_lock(runtimes: dict[str, Runtime], share: Share, suite: str) -> None:
    runtime = runtimes[suite]
    with container(runtime, share) as exec_:
        chosen = f"variant 1.0 for {runtime.os.replace(' ', '')} {platform.machine()} py{runtime.python} "
        before = _ok(exec_(f"{VENV}/bin/prebake doctor /share/both.lock")).splitlines()
        assert [line.split()[0] for line in before if chosen in line] == ["restores"]
        assert before[-1] == "all 1 pack(s) restore here"

        restored = _ok(exec_(f"{VENV}/bin/prebake restore /share/both.lock -q"))
        assert restored.startswith("restored variant 1.0")

        assert _ok(exec_(f"cat {TARGET}/variant.txt")).strip() == runtime.words
        # the compiled extension is the one for this Python, so it imports (the other variant's would not)
        imported = _ok(exec_(f"PYTHONPATH={TARGET}/lib python3 -c 'import markupsafe._speedups as s, variant_info, sys; "
                             "print(variant_info.VARIANT); print(s.__file__); print(s._escape_inner(\"<a>\"))'"))
        words, speedups, escaped = imported.strip().splitlines()
        assert words == runtime.words
        assert speedups.startswith(f"{TARGET}/lib/markupsafe/_speedups.cpython-{runtime.python.replace('.', '')}-")
        assert escaped == "&lt;a&gt;"

        after = _ok(exec_(f"{VENV}/bin/prebake doctor /share/both.lock")).splitlines()
        assert [line.split()[0] for line in after if chosen in line] == ["restored"]


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_a_runtime_the_lock_has_no_variant_for_gets_one_line_and_exit_6(runtimes: dict[str, Runtime], share: Share,
                                                                        suite: str) -> None:
    runtime = runtimes[suite]
    other = runtimes["trixie" if suite == "bookworm" else "bookworm"]
    here = f"{runtime.os.replace(' ', '')} {platform.machine()} py{runtime.python} "
    with container(runtime, share) as exec_:
        # two variants, neither for this runtime: refused before a manifest is read, in one line
        refused = exec_(f"{VENV}/bin/prebake restore /share/not-{suite}.lock")
        assert refused.returncode == 6, refused
        [line] = refused.stderr.strip().splitlines()
        assert line.startswith(f"prebake: error: no variant of variant fits this runtime ({here}")
        assert f"the lock has {other.os.replace(' ', '')} {platform.machine()} py{other.python} " in line
        assert f"ubuntu22.04 {platform.machine()} py3.12 glibc2.35 (1.0)" in line
        assert "build one with `prebake build variant --backend scan -o packs`" in line  # no runtime of images/ is Debian
        assert _ok(exec_(f"test -e {TARGET} && echo written || echo nothing")).strip() == "nothing"

        # with runtime facts that mirror this runtime, the build named is that runtime's
        mirrored = exec_(f"{VENV}/bin/prebake restore /share/not-{suite}.lock", env={"PREBAKE_IMAGES_DIR": "/share/images"})
        assert mirrored.returncode == 6, mirrored
        [line] = mirrored.stderr.strip().splitlines()
        assert f"build one with `prebake build variant --runtime {suite} -o packs`" in line

        doctor = exec_(f"{VENV}/bin/prebake doctor /share/not-{suite}.lock")
        assert doctor.returncode == 6, doctor
        assert "  rebuild   variant: no variant for this runtime" in doctor.stdout
        assert "`prebake build variant --backend scan -o packs`" in doctor.stdout

        # a lock whose only entry is another runtime's: the manifest's platform check refuses it, in one line
        only = exec_(f"{VENV}/bin/prebake restore /share/only-{other.suite}.lock")
        assert only.returncode == 6, only
        [line] = only.stderr.strip().splitlines()
        assert f"os {other.os} (this runtime has {runtime.os})" in line and f"python {other.python}" in line
        assert "build it for this runtime with `prebake build variant --backend scan -o packs` or pass --force" in line
        assert exec_(f"{VENV}/bin/prebake doctor /share/only-{other.suite}.lock").returncode == 6
        assert _ok(exec_(f"test -e {TARGET} && echo written || echo nothing")).strip() == "nothing"
