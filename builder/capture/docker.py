"""The docker backend: a container that always cleans up and is a build `Site` (exec with streamed
output, the layer's changes, tar in and out of the container).

Every container uses host networking (the engines prebake runs on may have no bridge) and gets a
`prebake-<uuid>` name; set PREBAKE_KEEP_CONTAINER=1 to keep it for inspection after a failure.
"""

from __future__ import annotations

import collections
import io
import json
import logging
import os
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .. import settings
from .._proc import TAIL_LINES, Output, Ran
from ..errors import ContainerEngineError
from ..manifest import Platform
from . import ADDED, CHANGED, DELETED, Change

log = logging.getLogger(__name__)

MIN_API = (1, 41)
_KINDS = {0: CHANGED, 1: ADDED, 2: DELETED}
_FACTS = r"""
import json, os, platform, sys, sysconfig
def osr():
    for p in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            f = dict(l.split("=", 1) for l in open(p).read().splitlines() if "=" in l and not l.startswith("#"))
        except OSError:
            continue
        return (f.get("ID", "").strip('"') + " " + f.get("VERSION_ID", "").strip('"')).strip() or None
libc, ver = platform.libc_ver()
print(json.dumps({"os": osr(), "arch": platform.machine(), "python": "%d.%d" % sys.version_info[:2],
                  "abi": sysconfig.get_config_var("SOABI"), "glibc": ver if libc == "glibc" else None,
                  "cuda": os.environ.get("CUDA_VERSION") or None}))
"""


# Where no engine runs (a Colab session), the way to build anyway, and what it gives up.
SCAN_HINT = ("or build in this runtime with `--backend scan` (a recipe's `backend = \"scan\"`): it runs the steps "
             "on this machine and packs what they change under the recipe's capture roots, but cannot isolate "
             "them (the steps change this machine, and what it already has is neither packed nor checked)")


def client():
    """A connected Docker client, or one line saying what is missing and how to build without it."""
    try:
        import docker
        from docker.errors import DockerException
    except ModuleNotFoundError as e:
        msg = f"the docker build backend needs the docker SDK: pip install 'prebake[build]', {SCAN_HINT}"
        raise ContainerEngineError(msg) from e
    socket = (os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock").removeprefix("unix://")
    if "://" not in socket and not os.path.exists(socket):
        msg = f"cannot reach a Docker engine (no socket at {socket}): start dockerd (or set DOCKER_HOST), {SCAN_HINT}"
        raise ContainerEngineError(msg)
    try:
        engine = docker.from_env(timeout=600)
        version = engine.version()
    except DockerException as e:
        reason = " ".join(str(e).split())
        msg = f"cannot reach a Docker engine ({reason}): start dockerd (or set DOCKER_HOST), {SCAN_HINT}"
        raise ContainerEngineError(msg) from e
    api = tuple(int(x) for x in str(version.get("ApiVersion", "0.0")).split(".")[:2])
    if api < MIN_API:
        msg = f"the Docker engine speaks API {version.get('ApiVersion')}; prebake needs {'.'.join(map(str, MIN_API))} or newer (Docker 20.10+)"
        raise ContainerEngineError(msg)
    return engine


def _engine_error(what: str, e: Exception) -> ContainerEngineError:
    return ContainerEngineError(f"{what}: {e}")


def _exec_frames(api, exec_id: str):
    """(stream, bytes) frames of a started exec (1 stdout, 2 stderr); closes its socket at the end
    (the SDK's stream=True leaves it open)."""
    from docker.utils.socket import frames_iter

    sock = api.exec_start(exec_id, socket=True)
    raw = getattr(sock, "_sock", None)
    try:
        yield from frames_iter(sock, tty=False)
    finally:
        sock.close()
        if raw is not None:
            raw.close()


class Container:
    """`with Container(engine, image) as c:` starts an idle container and always removes it."""

    workdir = "/content"

    def __init__(self, engine, image: str, *, label: str = "build") -> None:
        self.engine, self.image = engine, image
        self.name = f"prebake-{uuid.uuid4().hex[:12]}"
        self.label = label
        self.where = f"in {image}"
        self._container = None

    @property
    def id(self) -> str:
        assert self._container is not None
        return self._container.id

    def __enter__(self) -> Container:
        from docker.errors import DockerException, ImageNotFound

        try:
            self._container = self.engine.containers.create(
                self.image, ["sleep", "infinity"], name=self.name, network_mode="host", detach=True,
                labels={"prebake": self.label}, entrypoint=[],
            )
            self._container.start()
        except ImageNotFound as e:
            self._remove()
            msg = f"image {self.image!r} is not in the engine; build or load it first (no registry is pulled from)"
            raise ContainerEngineError(msg) from e
        except DockerException as e:
            self._remove()
            raise _engine_error(f"cannot start a container of {self.image}", e) from e
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if settings.KEEP_CONTAINER.get() and exc[0] is not None:
            log.warning("keeping container %s for inspection (PREBAKE_KEEP_CONTAINER)", self.name)
            return
        self._remove()

    def _remove(self) -> None:
        from docker.errors import DockerException

        if self._container is None:
            try:
                self._container = self.engine.containers.get(self.name)
            except DockerException:
                return
        try:
            self._container.remove(force=True)
        except DockerException as e:
            log.warning("could not remove container %s: %s", self.name, e)
        self._container = None

    # ------------------------------------------------------------ running things

    def exec(self, argv: list[str], *, env: dict[str, str] | None = None, workdir: str | None = None,
             on_line: Callable[[str], None] | None = None, mask: Iterable[str] = ()) -> Ran:
        """Run `argv`, passing each output line (stdout and stderr, masked) to `on_line`."""
        from docker.errors import DockerException

        api = self.engine.api
        output = Output(on_line, mask)
        pending = ""
        try:
            exec_id = api.exec_create(self.id, argv, environment=env or None, workdir=workdir, stdout=True, stderr=True)["Id"]
            for _stream, chunk in _exec_frames(api, exec_id):
                pending += chunk.decode(errors="replace")
                *lines, pending = pending.split("\n")
                for line in lines:
                    output.line(line.rstrip("\r"))
            if pending:
                output.line(pending)
            code = api.exec_inspect(exec_id)["ExitCode"]
        except DockerException as e:
            raise _engine_error(f"cannot run {argv[0]} in container {self.name}", e) from e
        return output.ran(code if code is not None else -1)

    def output(self, argv: list[str]) -> str:
        """Stdout of a short command that must succeed."""
        try:
            code, out = self._container.exec_run(argv, demux=True)
        except Exception as e:  # docker maps several unrelated errors here
            raise _engine_error(f"cannot run {argv[0]} in container {self.name}", e) from e
        stdout, stderr = out
        if code != 0:
            msg = f"{' '.join(argv)[:80]} failed in {self.image} (exit {code}): {(stderr or b'').decode(errors='replace').strip()[-500:]}"
            raise ContainerEngineError(msg)
        return (stdout or b"").decode()

    def platform(self) -> Platform:
        """The container's runtime facts (OS, arch, Python, ABI, glibc, CUDA)."""
        for python in ("python", "python3"):
            try:
                return Platform(**json.loads(self.output([python, "-c", _FACTS])))
            except ContainerEngineError:
                continue
        return Platform(os=None)

    def environment(self) -> dict[str, str]:
        config = self.engine.api.inspect_image(self.image)["Config"]
        return dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)

    # ------------------------------------------------------------ files

    def changes(self) -> list[Change]:
        """What the container's layer changed: added, changed and deleted paths."""
        try:
            raw = self._container.diff() or []
        except Exception as e:
            raise _engine_error(f"cannot list the changes of container {self.name}", e) from e
        return [Change(_KINDS[item["Kind"]], item["Path"]) for item in raw]

    def put_tree(self, src: Path, dest: str = "/") -> None:
        """Copy the tree at `src` (modes, mtimes and symlinks kept) into the container at `dest`."""
        if dest != "/":
            self.output(["mkdir", "-p", dest])
        with tempfile.TemporaryFile() as archive:
            subprocess.run(["tar", "-C", str(src), "--numeric-owner", "--owner=0", "--group=0", "-cf", "-", "."],
                           stdout=archive, check=True)
            archive.seek(0)
            self._put(dest, archive)

    def put_file(self, path: str, data_path: Path, mode: int = 0o644) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
            info = tar.gettarinfo(str(data_path), arcname=path.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = mode
            with open(data_path, "rb") as f:
                tar.addfile(info, f)
        buffer.seek(0)
        self.output(["mkdir", "-p", str(Path(path).parent)])
        self._put("/", buffer.getvalue())

    def _put(self, dest: str, data: Any) -> None:
        try:
            ok = self._container.put_archive(dest, data)
        except Exception as e:
            raise _engine_error(f"cannot copy files into container {self.name}:{dest}", e) from e
        if not ok:
            msg = f"the engine refused to copy files into {self.name}:{dest}"
            raise ContainerEngineError(msg)

    def export(self, paths: list[str], staging: Path) -> None:
        """Copy `paths` (absolute, not recursing into folders) out of the container into `staging`,
        which mirrors /, keeping modes, mtimes, symlinks and hard links (GNU tar on both sides)."""
        if not paths:
            return
        listing = "\0".join(p.lstrip("/") for p in paths) + "\0"
        with tempfile.NamedTemporaryFile() as f:
            f.write(listing.encode("utf-8", "surrogateescape"))
            f.flush()
            list_path = f"/tmp/.prebake-capture-{uuid.uuid4().hex[:8]}"
            self.put_file(list_path, Path(f.name))
        api = self.engine.api
        staging.mkdir(parents=True, exist_ok=True)
        untar = subprocess.Popen(["tar", "-x", "-f", "-", "-C", str(staging), "--numeric-owner", "--preserve-permissions"],
                                 stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert untar.stdin is not None
        errors = bytearray()
        try:
            exec_id = api.exec_create(self.id, ["tar", "-c", "-f", "-", "-C", "/", "--no-recursion", "--numeric-owner",
                                                "--null", "-T", list_path], stdout=True, stderr=True)["Id"]
            for stream, chunk in _exec_frames(api, exec_id):
                if stream == 1:
                    untar.stdin.write(chunk)
                else:
                    errors += chunk
            code = api.exec_inspect(exec_id)["ExitCode"]
        except BrokenPipeError:
            code = -1
        except Exception as e:
            untar.kill()
            raise _engine_error(f"cannot export the build's files from {self.name}", e) from e
        finally:
            untar.stdin.close()
            untar_err = untar.stderr.read() if untar.stderr else b""
            untar.wait()
        if code != 0 or untar.returncode != 0:
            msg = (f"copying the build's files out of the container failed (tar exit {code}, "
                   f"{(bytes(errors) + untar_err).decode(errors='replace').strip()[-500:]})")
            raise ContainerEngineError(msg)

    def remove_paths(self, paths: list[str]) -> None:
        if paths:
            self.output(["rm", "-rf", "--", *paths])

    def commit(self, repository: str, tag: str, labels: dict[str, str]) -> str:
        changes = ['CMD ["/bin/bash"]', *(f"LABEL {k}={json.dumps(v)}" for k, v in labels.items())]
        try:
            image = self._container.commit(repository=repository, tag=tag, changes=changes)
        except Exception as e:
            raise _engine_error(f"cannot commit container {self.name}", e) from e
        return image.id


def image_id(engine, ref: str) -> str | None:
    from docker.errors import ImageNotFound

    try:
        return engine.api.inspect_image(ref)["Id"]
    except ImageNotFound:
        return None


def build_image(engine, context: Path, dockerfile: str, tag: str, buildargs: dict[str, str], labels: dict[str, str],
                on_line: Callable[[str], None] | None = None) -> str:
    """`docker build --network host` of `context`; streams its output; returns the image id."""
    from docker.errors import DockerException

    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        for item in engine.api.build(path=str(context), dockerfile=dockerfile, tag=tag, buildargs=buildargs,
                                     labels=labels, network_mode="host", rm=True, forcerm=True, decode=True):
            if "error" in item:
                tail.append(str(item["error"]).rstrip())
                msg = f"building image {tag} failed: " + "\n".join(tail)
                raise ContainerEngineError(msg)
            for line in str(item.get("stream", "")).splitlines():
                tail.append(line)
                if on_line is not None:
                    on_line(line)
    except DockerException as e:
        raise _engine_error(f"cannot build image {tag}", e) from e
    found = image_id(engine, tag)
    if found is None:
        msg = f"building image {tag} ended without an image: " + "\n".join(tail)
        raise ContainerEngineError(msg)
    return found

