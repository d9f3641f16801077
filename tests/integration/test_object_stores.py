"""S3 and GCS as stores, against real protocol servers on 127.0.0.1: moto's S3 server driven by
s3fs, and gcp-storage-emulator driven by gcsfs (tests/object_servers.py). Push and restore go
through the command line as users type them; endpoints and credentials come from the variables
each ecosystem reads (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, STORAGE_EMULATOR_HOST, ...).

A FaultProxy between the client and the server cuts connections and plays refusals the servers do
not make (GCS's 401 and 403, S3's wrong-region answer, an expired token)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from prebake.errors import StoreAuthError, StoreError, StoreNotFound, TransientStoreError, UsageError
from prebake.lock import load
from prebake.manifest import loads
from prebake.pack import PackOptions, pack_tree
from prebake.push import push
from prebake.stores import open_destination, open_store
from prebake.stores.fsspec import BLOCK, FsspecStore, _mapped

from ..conftest import run_cli
from ..object_servers import FaultProxy, GcsEmulator, MotoServer, gcs_error, s3_error

pytest.importorskip("s3fs")
pytest.importorskip("gcsfs")
pytest.importorskip("moto.server")
pytest.importorskip("gcp_storage_emulator")

# gcsfs hands aiohttp a resumable upload's piece as bytes, which aiohttp warns about (a
# ResourceWarning); the suite turns warnings into errors, and this one is the library's own.
pytestmark = pytest.mark.filterwarnings("ignore:Sending a large body directly with raw bytes:ResourceWarning")

MiB = 2**20
SDKS = ("s3fs", "gcsfs", "fsspec", "botocore", "boto3", "aiobotocore", "aiohttp", "google")


# ---------------------------------------------------------------- servers, environments, a pack


@pytest.fixture(scope="module")
def moto():
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def gcs():
    with GcsEmulator() as server:
        yield server


@pytest.fixture(scope="module")
def strict_moto():
    """A second moto server with IAM checks on: an admin, a user with no rights, a reader."""
    with MotoServer() as server:
        server.client().create_bucket(Bucket="guarded")
        server.users = {
            "writer": server.user("writer", ["s3:*"]),
            "nobody": server.user("nobody", []),
            "reader": server.user("reader", ["s3:GetObject", "s3:ListBucket"]),
            "pusher": server.user("pusher", ["s3:PutObject", "s3:GetObject", "s3:ListBucket"]),
            "getter": server.user("getter", ["s3:GetObject"]),
        }
        server.user("admin", ["s3:*", "iam:*"])
        server.enforce_auth()
        yield server


def _no_cloud_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """None of the developer's AWS or Google settings reach the test."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "GOOGLE_", "GCE_", "CLOUDSDK_")) or name in ("STORAGE_EMULATOR_HOST", "BOTO_CONFIG"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "true")


def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str, key: tuple[str, str] = ("testing", "testing")) -> None:
    _no_cloud_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key[1])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def gcs_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str) -> None:
    _no_cloud_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)


@dataclass
class Backend:
    """One object store as a test drives it: its server, its URL scheme and the variables its
    library reads, for the tests that hold for S3 and GCS alike."""

    name: str
    server: MotoServer | GcsEmulator
    scheme: str
    env: Callable[[pytest.MonkeyPatch, Path, str], None]
    cuts: int
    """Connections cut under a restore that must still succeed: GCS keeps the two its own test
    always had (a third failed once in CI against the emulator, not again in four runs here)."""

    def new_bucket(self) -> str:
        bucket = bucket_name()
        if self.name == "s3":
            self.server.client().create_bucket(Bucket=bucket)
        else:
            self.server.make_bucket(bucket)
        return bucket

    def has_bucket(self, bucket: str) -> bool:
        if self.name == "s3":
            return bucket in [b["Name"] for b in self.server.client().list_buckets()["Buckets"]]
        import requests

        return requests.get(f"{self.server.url}/storage/v1/b/{bucket}", timeout=10).status_code != 404


@pytest.fixture(params=["s3", "gcs"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "s3":
        return Backend("s3", request.getfixturevalue("moto"), "s3", s3_env, cuts=3)
    return Backend("gcs", request.getfixturevalue("gcs"), "gs", gcs_env, cuts=2)


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 16 MiB in 3+ parts: one 12 MiB part (a single file: files are never split), so large
    parts are read as parallel ranges and uploaded in pieces, and a few small ones."""
    root = tmp_path_factory.mktemp("object-pack")
    rng = random.Random(16)
    src = root / "src"
    (src / "lib").mkdir(parents=True)
    (src / "lib" / "big.bin").write_bytes(rng.randbytes(12 * MiB))
    for i in range(3):
        (src / "lib" / f"mid-{i}.bin").write_bytes(rng.randbytes(MiB))
    (src / "bin").mkdir()
    (src / "bin" / "tool").write_text("#!/bin/sh\necho tool\n")
    (src / "README").write_text("object stores\n")
    for path in src.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    pack_tree(src, root / "pack", PackOptions(name="objects", version="1", target="/opt/objects", part_size=3 * MiB, level=1))
    return root / "pack"


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def source_tree(pack: Path) -> dict[str, str]:
    return tree(pack.parent / "src")


def bucket_name() -> str:
    return f"prebake-{uuid.uuid4().hex[:12]}"


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The command's error output: exactly one `prebake: error:` line and no traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("prebake: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err, err
    return errors[0]


def refused_restore(server, env, answer: bytes, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of `prebake restore SOURCE` when every request gets `answer` (a refusal
    the server itself does not make, played by the proxy in front of it); exit status 4."""
    with FaultProxy(("127.0.0.1", server.port)) as proxy:
        env(monkeypatch, tmp_path, proxy.url)
        proxy.canned = answer
        assert run_cli("restore", source, "--root", str(tmp_path / "root")) == 4
    return one_line_error(capsys)


def lock_location(lock: Path) -> tuple[str, str]:
    [entry] = load(lock).packs
    return entry.locations[0], entry.digest


def manifest_url(lock: Path) -> str:
    folder, digest = lock_location(lock)
    return f"{folder}/manifest-{digest.removeprefix('sha256:')}.json"


def big_part(pack: Path) -> str:
    manifest = loads((pack / "manifest.json").read_bytes())
    return max(manifest.parts, key=lambda part: part.size).name


# ---------------------------------------------------------------- S3 and GCS alike: push, restore, ranges, cuts, a missing bucket;
# S3: multipart uploads, s3fs's retries, cut uploads


def test_push_then_restore_from_the_lock_and_from_the_manifest_url(backend, pack, tmp_path, monkeypatch, capsys):
    bucket = backend.new_bucket()
    dest = f"{backend.scheme}://{bucket}/packs"
    with FaultProxy(("127.0.0.1", backend.server.port)) as proxy:
        backend.env(monkeypatch, tmp_path, proxy.url)
        lock = tmp_path / "prebake.lock"
        assert run_cli("push", str(pack), "--to", dest, "-o", str(lock)) == 0
        folder, _ = lock_location(lock)
        assert folder.startswith(f"{dest}/")
        proxy.requests.clear()
        assert run_cli("restore", str(lock), "--root", str(tmp_path / "root"), "-q") == 0
        assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)
        # The 12 MiB part came as several ranged GETs (parallel ranges), none of them a HEAD first.
        big = big_part(pack)
        ranges = [r.headers.get("range") for r in proxy.requests if r.method == "GET" and big in r.path.split("?")[0]]
        assert len(ranges) >= 2 and all(ranges), ranges
        spans = [int(end) + 1 - int(start) for start, end in (r.removeprefix("bytes=").split("-") for r in ranges)]
        assert max(spans) <= BLOCK, f"a read of {max(spans)} bytes: each request reads a block at most, so a part streams"
        assert not [r for r in proxy.requests if r.method == "HEAD" and big in r.path]
        assert run_cli("restore", manifest_url(lock), "--root", str(tmp_path / "again"), "-q") == 0
        assert tree(tmp_path / "again" / "opt" / "objects") == source_tree(pack)
        capsys.readouterr()
        assert run_cli("push", str(pack), "--to", dest, "--no-lock") == 0
        assert " 0 part(s) uploaded" in capsys.readouterr().out


def test_s3_a_large_part_goes_up_as_a_multipart_upload(moto, pack, tmp_path, monkeypatch):
    bucket = bucket_name()
    moto.client().create_bucket(Bucket=bucket)
    s3_env(monkeypatch, tmp_path, moto.url)
    monkeypatch.setattr(FsspecStore, "upload_chunk", 5 * MiB)  # S3's smallest piece; s3fs's default is 50 MiB
    sent: list[int] = []
    with open_destination(f"s3://{bucket}/packs", "parts") as store:
        manifest = loads((pack / "manifest.json").read_bytes())
        part = max(manifest.parts, key=lambda p: p.size)
        store.put_part(part, pack / part.name, sent.append)
    assert sum(sent) == part.size and len(sent) >= 3  # progress as the pieces went up
    head = moto.client().head_object(Bucket=bucket, Key=f"packs/parts/{part.name}")
    assert head["ContentLength"] == part.size
    assert head["ETag"].strip('"').endswith(f"-{-(-part.size // (5 * MiB))}")  # a multipart object's ETag
    assert head["Metadata"] == {"sha256": part.sha256}  # the stamp push trusts, kept by a multipart upload


def test_restore_resumes_after_cut_connections(backend, pack, tmp_path, monkeypatch):
    bucket = backend.new_bucket()
    with FaultProxy(("127.0.0.1", backend.server.port)) as proxy:
        backend.env(monkeypatch, tmp_path, proxy.url)
        lock = tmp_path / "prebake.lock"
        assert run_cli("push", str(pack), "--to", f"{backend.scheme}://{bucket}/packs", "-o", str(lock)) == 0
        proxy.cut(after=1 * MiB, times=backend.cuts)  # transfers of part bytes dropped mid-body
        assert run_cli("restore", str(lock), "--root", str(tmp_path / "root"), "-q") == 0
        assert proxy.cuts_done == backend.cuts
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)


def test_s3_restore_resumes_the_part_when_s3fs_gives_up(moto, pack, tmp_path, monkeypatch, capsys):
    """s3fs retries a cut read 5 times; past that the store reports a transient error and the
    restore resumes the part at the byte it reached (here 0: the cut range was the first). One
    connection, one range at a time."""
    bucket = bucket_name()
    moto.client().create_bucket(Bucket=bucket)
    with FaultProxy(("127.0.0.1", moto.port)) as proxy:
        s3_env(monkeypatch, tmp_path, proxy.url)
        lock = tmp_path / "prebake.lock"
        assert run_cli("push", str(pack), "--to", f"s3://{bucket}/packs", "-o", str(lock)) == 0
        monkeypatch.setenv("PREBAKE_CONNECTIONS", "1")
        capsys.readouterr()
        proxy.cut(after=1 * MiB, times=5)
        assert run_cli("restore", str(lock), "--root", str(tmp_path / "root"), "-j", "1") == 0
        assert proxy.cuts_done == 5
    err = capsys.readouterr().err
    assert "the connection failed" in err and "resuming at byte 0 (retry 1 of" in err, err
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)


def test_s3_a_push_cut_mid_upload_finishes(moto, pack, tmp_path, monkeypatch):
    """A connection dropped while a part goes up: the upload is retried (botocore), or the push
    fails in one line and the same command finishes it without sending the parts already there."""
    bucket = bucket_name()
    moto.client().create_bucket(Bucket=bucket)
    with FaultProxy(("127.0.0.1", moto.port)) as proxy:
        s3_env(monkeypatch, tmp_path, proxy.url)
        proxy.cut(after=2 * MiB, times=1, direction="up")
        lock = tmp_path / "prebake.lock"
        first = run_cli("push", str(pack), "--to", f"s3://{bucket}/packs", "-o", str(lock))
        assert proxy.cuts_done == 1
        if first != 0:
            assert first == 4
            assert run_cli("push", str(pack), "--to", f"s3://{bucket}/packs", "-o", str(lock)) == 0
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    assert run_cli("restore", str(lock), "--root", str(tmp_path / "root"), "-q") == 0
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)


def test_a_push_to_a_missing_bucket_is_refused_and_creates_nothing(backend, pack, tmp_path, monkeypatch, capsys):
    backend.env(monkeypatch, tmp_path, backend.server.url)
    bucket = bucket_name()
    mirror = tmp_path / "mirror"
    dest = f"{backend.scheme}://{bucket}/packs"
    assert run_cli("push", str(pack), "--to", str(mirror), "--to", dest, "--no-lock") == 4
    line = one_line_error(capsys)
    assert f"the bucket '{bucket}' does not exist; create it first (prebake never creates buckets)" in line
    assert not backend.has_bucket(bucket)
    assert not mirror.exists()  # refused before anything went anywhere
    assert run_cli("restore", f"{dest}/parts/manifest.json", "--root", str(tmp_path / "root")) == 4
    assert "does not exist" in one_line_error(capsys)


# ---------------------------------------------------------------- S3: refusals, one line each


@pytest.mark.parametrize(("user", "command", "expected"), [
    ("nobody", "push", "access refused (AccessDenied: Access Denied); the credentials in use (AWS_PROFILE / AWS_ACCESS_KEY_ID) need s3:PutObject"),
    ("reader", "push", "access refused (AccessDenied: Access Denied)"),
    ("nobody", "restore", "need s3:GetObject on this bucket and prefix"),
    ("bogus", "push", "the credentials are not valid (InvalidAccessKeyId"),
])
def test_s3_refusals_say_what_to_fix_in_one_line(strict_moto, pack, tmp_path, monkeypatch, capsys, user, command, expected):
    key = ("AKIAIOSFODNN7EXAMPLE", "not-a-real-secret-at-all") if user == "bogus" else strict_moto.users[user]
    if command == "restore":  # a pack the writer pushed
        s3_env(monkeypatch, tmp_path, strict_moto.url, strict_moto.users["writer"])
        assert run_cli("push", str(pack), "--to", "s3://guarded/restore", "-o", str(tmp_path / "prebake.lock")) == 0
        capsys.readouterr()
    s3_env(monkeypatch, tmp_path, strict_moto.url, key)
    if command == "push":
        code = run_cli("push", str(pack), "--to", f"s3://guarded/{user}", "--no-lock")
    else:
        code = run_cli("restore", str(tmp_path / "prebake.lock"), "--root", str(tmp_path / "root"))
    assert code == 4
    line = one_line_error(capsys)
    assert expected in line and key[1] not in line


def test_s3_push_and_restore_need_only_the_documented_permissions(strict_moto, pack, tmp_path, monkeypatch):
    """docs/stores.md: push needs s3:PutObject, s3:GetObject and s3:ListBucket; restore s3:GetObject."""
    s3_env(monkeypatch, tmp_path, strict_moto.url, strict_moto.users["pusher"])
    lock = tmp_path / "prebake.lock"
    assert run_cli("push", str(pack), "--to", "s3://guarded/minimal", "-o", str(lock)) == 0
    assert run_cli("push", str(pack), "--to", "s3://guarded/minimal", "-o", str(lock)) == 0  # finds its parts there
    s3_env(monkeypatch, tmp_path, strict_moto.url, strict_moto.users["getter"])
    assert run_cli("restore", str(lock), "--root", str(tmp_path / "root"), "-q") == 0
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)


def test_s3_without_credentials_says_where_they_are_read_from(moto, tmp_path, monkeypatch, capsys):
    _no_cloud_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert run_cli("restore", "s3://somewhere/packs/parts/manifest.json", "--root", str(tmp_path / "root")) == 4
    line = one_line_error(capsys)
    assert "no credentials found" in line and "AWS_ACCESS_KEY_ID" in line and "AWS_PROFILE" in line


@pytest.mark.parametrize(("answer", "expected"), [
    (s3_error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the region 'us-east-1' is wrong; "
              "expecting 'eu-west-1'", Region="eu-west-1"),
     "the bucket is in region eu-west-1 (AuthorizationHeaderMalformed: The authorization header is malformed; the region "
     "'us-east-1' is wrong; expecting 'eu-west-1'); set AWS_REGION=eu-west-1"),
    (s3_error(400, "ExpiredToken", "The provided token has expired."),
     "the credentials have expired or were revoked (ExpiredToken: The provided token has expired.); renew them (`aws sso login`"),
], ids=["wrong-region", "expired-token"])
def test_s3_wrong_region_and_expired_credentials(moto, tmp_path, monkeypatch, capsys, answer, expected):
    line = refused_restore(moto, s3_env, answer, "s3://packs-eu/packs/parts/manifest.json", tmp_path, monkeypatch, capsys)
    assert line.startswith("prebake: error: s3://packs-eu/packs/parts/manifest.json: ")
    assert expected in line


# ---------------------------------------------------------------- S3: URLs that need no SDK


BLOCKED_SDKS = f"""
import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {SDKS!r}:
            raise ImportError(name + ' is not installed here (blocked by the test)')
sys.meta_path.insert(0, Blocked())
from prebake.cli import main
main(sys.argv[1:])
"""


def restore_without_sdks(source: str, root: Path) -> subprocess.CompletedProcess:
    """`prebake restore SOURCE` in a fresh Python where s3fs, gcsfs, fsspec, botocore, google and
    aiohttp cannot be imported: a collaborator's machine with no cloud SDK."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOOGLE_", "STORAGE_EMULATOR", "PREBAKE_"))}
    return subprocess.run([sys.executable, "-c", BLOCKED_SDKS, "restore", source, "--root", str(root), "-q"],
                          capture_output=True, text=True, env=env, timeout=300)


def test_s3_public_folder_url_restores_with_no_sdk(moto, pack, tmp_path, monkeypatch):
    bucket = bucket_name()
    moto.client().create_bucket(Bucket=bucket)
    s3_env(monkeypatch, tmp_path, moto.url)
    lock = tmp_path / "prebake.lock"
    assert run_cli("push", str(pack), "--to", f"s3://{bucket}/packs", "-o", str(lock)) == 0
    folder, digest = lock_location(lock)
    public = open_store(folder).public_url()
    assert public == f"{moto.url}/{bucket}/packs/parts"  # path style on a custom endpoint
    source = f"{public}/manifest-{digest.removeprefix('sha256:')}.json"

    refused = restore_without_sdks(source, tmp_path / "private")
    assert refused.returncode == 4, refused.stderr
    assert "access refused (HTTP 403)" in refused.stderr and "Traceback" not in refused.stderr

    moto.public_read(bucket, "packs/parts")
    done = restore_without_sdks(source, tmp_path / "root")
    assert done.returncode == 0, done.stderr
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)


def test_s3_a_presigned_url_opens_one_object(moto, pack, tmp_path, monkeypatch):
    """A presigned URL names one object. (A folder cannot be presigned: the HTTP store joins part
    names to a folder URL's path and keeps its query, a signature made for another path, which S3
    refuses; moto does not check such signatures, so that refusal is not played here.)"""
    import requests

    bucket = bucket_name()
    moto.client().create_bucket(Bucket=bucket)
    s3_env(monkeypatch, tmp_path, moto.url)
    lock = tmp_path / "prebake.lock"
    assert run_cli("push", str(pack), "--to", f"s3://{bucket}/packs", "-o", str(lock)) == 0
    folder, digest = lock_location(lock)
    name = f"manifest-{digest.removeprefix('sha256:')}.json"
    with open_store(folder) as store:
        signed = store.public_url(name, expires=600)
        assert "Signature=" in signed or "X-Amz-Signature=" in signed
        assert requests.get(signed, timeout=10).status_code == 200
        assert requests.get(store.public_url(name), timeout=10).status_code == 403  # not public
        with pytest.raises(UsageError, match="a folder cannot be presigned: each object needs its own signature"):
            store.public_url(expires=600)


def test_s3_push_public_writes_a_lock_that_restores_with_no_sdk(moto, pack, tmp_path, monkeypatch, capsys):
    bucket = bucket_name()
    moto.client().create_bucket(Bucket=bucket)
    s3_env(monkeypatch, tmp_path, moto.url)
    lock = tmp_path / "prebake.lock"
    assert run_cli("push", str(pack), "--to", f"s3://{bucket}/packs", "--public", "-o", str(lock)) == 4
    line = one_line_error(capsys)
    assert "--public: " in line and "is not readable without credentials (HTTP 403)" in line and "s3:GetObject" in line
    assert not lock.exists()
    moto.public_read(bucket, "packs/parts")
    assert run_cli("push", str(pack), "--to", f"s3://{bucket}/packs", "--public", "-o", str(lock)) == 0
    folder, _ = lock_location(lock)
    assert folder == f"{moto.url}/{bucket}/packs/parts"  # https://BUCKET.s3.amazonaws.com/packs/parts on AWS
    done = restore_without_sdks(str(lock), tmp_path / "root")
    assert done.returncode == 0, done.stderr
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)


def test_gcs_push_public_writes_a_lock_that_restores_with_no_sdk(gcs, pack, tmp_path, monkeypatch):
    bucket = bucket_name()
    gcs.make_bucket(bucket)
    gcs_env(monkeypatch, tmp_path, gcs.url)
    lock = tmp_path / "prebake.lock"
    assert run_cli("push", str(pack), "--to", f"gs://{bucket}/packs", "--public", "-o", str(lock)) == 0
    assert lock_location(lock)[0] == f"{gcs.url}/{bucket}/packs/parts"  # the emulator serves objects to anyone
    done = restore_without_sdks(str(lock), tmp_path / "root")
    assert done.returncode == 0, done.stderr
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)


def test_s3_push_public_pins_the_https_folder_once_anyone_can_read_it(moto, pack, tmp_path, monkeypatch):
    bucket = bucket_name()
    moto.client().create_bucket(Bucket=bucket)
    s3_env(monkeypatch, tmp_path, moto.url)
    with open_destination(f"s3://{bucket}/pub", "demo", public=True) as store:
        with pytest.raises(StoreAuthError, match=r"--public: .* is not readable without credentials \(HTTP 403\); make the prefix public"):
            store.put_manifest((pack / "manifest.json").read_bytes())
        moto.public_read(bucket, "pub/demo")
        assert store.put_manifest((pack / "manifest.json").read_bytes()) == f"{moto.url}/{bucket}/pub/demo"
    with open_destination(f"s3://{bucket}/pub", "demo") as store:
        assert store.put_manifest((pack / "manifest.json").read_bytes()) == f"s3://{bucket}/pub/demo"



def test_s3_push_presign_writes_a_lock_whose_every_file_carries_its_own_signature(moto, pack, tmp_path, monkeypatch, capsys):
    """A private bucket: the lock names the manifest's presigned URL, the manifest records each
    part's own query, and a collaborator with no SDK and no credentials restores from the lock,
    asking for each object with the signature made for it (moto accepts any signature, so the
    requests are checked here against what the SDK signs)."""
    import urllib.parse

    bucket = bucket_name()
    moto.client().create_bucket(Bucket=bucket)
    with FaultProxy(("127.0.0.1", moto.port)) as proxy:
        s3_env(monkeypatch, tmp_path, proxy.url)
        lock = tmp_path / "prebake.lock"
        assert run_cli("push", str(pack), "--to", f"s3://{bucket}/packs", "--presign", "2h", "-o", str(lock)) == 0
        out = capsys.readouterr().out
        [entry] = load(lock).packs
        [location] = entry.locations
        signed = urllib.parse.urlsplit(location)
        assert signed.path == f"/{bucket}/packs/parts/manifest-{entry.digest.removeprefix('sha256:')}.json"
        query = dict(urllib.parse.parse_qsl(signed.query))
        assert query["X-Amz-Expires"] == "7200" and query["X-Amz-Signature"]
        assert query["X-Amz-Signature"] not in out, "push prints locations redacted"
        manifest = loads(open_store(f"s3://{bucket}/packs/parts").read_bytes(signed.path.rsplit("/", 1)[1]))
        queries = {part.name: part.store_ids[f"signed:{proxy.url}/{bucket}/packs/parts"] for part in manifest.parts}
        assert len({dict(urllib.parse.parse_qsl(q))["X-Amz-Signature"] for q in queries.values()}) == len(queries)

        proxy.requests.clear()
        done = restore_without_sdks(str(lock), tmp_path / "root")
        assert done.returncode == 0, done.stderr
        gets = [urllib.parse.urlsplit(r.path) for r in proxy.requests if r.method == "GET"]
        for name, part_query in queries.items():
            asked = [get for get in gets if get.path == f"/{bucket}/packs/parts/{name}"]
            assert asked and all(get.query == part_query for get in asked), name
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)


@pytest.mark.parametrize(("args", "expected"), [
    (["--to", "{folder}", "--presign", "1h"], "--presign: {folder} is not an s3:// or gs:// URL, and only S3 and GCS presign URLs"),
    (["--to", "s3://{bucket}/packs", "--presign", "8d"], "presigned URLs last 1 s to 7 days"),
    (["--to", "s3://{bucket}/packs", "--presign", "soon"], "--presign 'soon': give a duration like 3600, 90m, 12h or 7d"),
    (["--to", "s3://{bucket}/packs", "--presign", "1h", "--public"], "--public and --presign both say how readers get in"),
])
def test_push_presign_refusals_say_what_to_do_in_one_line(moto, pack, tmp_path, monkeypatch, capsys, args, expected):
    bucket = bucket_name()
    moto.client().create_bucket(Bucket=bucket)
    s3_env(monkeypatch, tmp_path, moto.url)
    fill = {"folder": str(tmp_path / "mirror"), "bucket": bucket}
    assert run_cli("push", str(pack), *[arg.format(**fill) for arg in args], "-o", str(tmp_path / "prebake.lock")) == 2
    assert expected.format(**fill) in one_line_error(capsys)
    assert not (tmp_path / "prebake.lock").exists() and not (tmp_path / "mirror").exists()
    assert "Contents" not in moto.client().list_objects_v2(Bucket=bucket), "nothing uploaded"


# ---------------------------------------------------------------- GCS: resumable uploads, refusals, URLs that need no SDK


def test_gcs_a_large_part_goes_up_as_a_resumable_upload(gcs, pack, tmp_path, monkeypatch):
    bucket = bucket_name()
    gcs.make_bucket(bucket)
    monkeypatch.setattr(FsspecStore, "upload_chunk", 4 * MiB)  # a multiple of GCS's 256 KiB
    with FaultProxy(("127.0.0.1", gcs.port)) as proxy:
        gcs_env(monkeypatch, tmp_path, proxy.url)
        manifest = loads((pack / "manifest.json").read_bytes())
        part = max(manifest.parts, key=lambda p: p.size)
        sent: list[int] = []
        with open_destination(f"gs://{bucket}/packs", "parts") as store:
            store.put_part(part, pack / part.name, sent.append)
            assert b"".join(store.open_read(part.name, 0, part.size)) == (pack / part.name).read_bytes()
            assert store.stamped_sha256(part.name) == part.sha256  # kept by a resumable upload
    assert sum(sent) == part.size
    started = [r for r in proxy.requests if "uploadType=resumable" in r.path and "upload_id=" not in r.path]
    pieces = [r for r in proxy.requests if "upload_id=" in r.path]
    assert len(started) == 1 and len(pieces) == -(-part.size // (4 * MiB)), proxy.requests


@pytest.mark.parametrize(("answer", "expected"), [
    (gcs_error(403, "caller does not have storage.objects.get access to the Google Cloud Storage object.", "forbidden"),
     "access refused (HTTP 403: caller does not have storage.objects.get access"),
    (gcs_error(401, "Anonymous caller does not have storage.objects.get access to the Google Cloud Storage object.", "required"),
     "Google refused the request (HTTP 401: Anonymous caller does not have storage.objects.get access"),
], ids=["403", "401-anonymous"])
def test_gcs_refusals_say_what_to_fix_in_one_line(gcs, tmp_path, monkeypatch, capsys, answer, expected):
    line = refused_restore(gcs, gcs_env, answer, "gs://guarded/packs/parts/manifest.json", tmp_path, monkeypatch, capsys)
    assert line.startswith("prebake: error: gs://guarded/packs/parts/manifest.json: ") and expected in line
    assert "GOOGLE_APPLICATION_CREDENTIALS" in line or "roles/storage.objectViewer" in line


def test_gcs_public_folder_url_restores_with_no_sdk(gcs, pack, tmp_path, monkeypatch):
    bucket = bucket_name()
    gcs.make_bucket(bucket)
    gcs_env(monkeypatch, tmp_path, gcs.url)
    lock = tmp_path / "prebake.lock"
    assert run_cli("push", str(pack), "--to", f"gs://{bucket}/packs", "-o", str(lock)) == 0
    folder, digest = lock_location(lock)
    public = open_store(folder).public_url()
    assert public == f"{gcs.url}/{bucket}/packs/parts"  # https://storage.googleapis.com/BUCKET/... without the emulator
    done = restore_without_sdks(f"{public}/manifest-{digest.removeprefix('sha256:')}.json", tmp_path / "root")
    assert done.returncode == 0, done.stderr
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)


def test_gcs_presigning_needs_a_key_that_can_sign(gcs, tmp_path, monkeypatch):
    gcs_env(monkeypatch, tmp_path, gcs.url)
    with open_store("gs://any-bucket/packs/parts") as store, pytest.raises(StoreAuthError, match="cannot sign URLs"):
        store.public_url("manifest.json", expires=600)


# ---------------------------------------------------------------- both: what a push trusts, odd keys


def _put_foreign(store: FsspecStore, name: str, data: bytes, sha256: str | None) -> None:
    """Write object `name` as another tool would: no metadata, or a sha256 stamp of its own choosing."""
    metadata = {} if sha256 is None else {("Metadata" if store.backend == "s3" else "metadata"): {"sha256": sha256}}
    store.fs.pipe_file(store._path(name), data, **metadata)


@pytest.mark.parametrize("stamp", ["none", "foreign"])
def test_an_object_of_a_parts_name_and_size_but_other_bytes_is_uploaded_again(backend, pack, tmp_path, monkeypatch, stamp):
    """A part's name is its sha256, but an object of that name and size may hold other bytes (bit
    rot, a botched copy, another tool): push trusts only the sha256 it stored with the object, so it
    replaces the object (and a damaged manifest-HEX.json) and the restore then succeeds."""
    bucket = backend.new_bucket()
    backend.env(monkeypatch, tmp_path, backend.server.url)
    dest = f"{backend.scheme}://{bucket}/packs"
    lock = tmp_path / "prebake.lock"
    manifest = loads((pack / "manifest.json").read_bytes())
    victim = min(manifest.parts, key=lambda part: part.size)
    with open_destination(dest, "parts") as store:
        assert isinstance(store, FsspecStore)
        _put_foreign(store, victim.name, b"\0" * victim.size, None if stamp == "none" else "0" * 64)
    [first] = push([pack], [dest], lock)
    assert first.uploaded_parts == len(manifest.parts) and first.reused_parts == 0
    _, digest = lock_location(lock)
    listed = f"manifest-{digest.removeprefix('sha256:')}.json"
    with open_destination(dest, "parts") as store:
        assert isinstance(store, FsspecStore)
        assert {store.stamped_sha256(part.name) for part in manifest.parts} == {part.sha256 for part in manifest.parts}
        assert store.stamped_sha256(listed) == digest.removeprefix("sha256:")
        # Damaged after the push: the same size, other bytes, the stamp gone or another one.
        size = len(store.read_bytes(listed))
        _put_foreign(store, victim.name, b"\0" * victim.size, None if stamp == "none" else "0" * 64)
        _put_foreign(store, listed, b" " * size, None if stamp == "none" else "0" * 64)
    [second] = push([pack], [dest], lock)
    assert (second.uploaded_parts, second.reused_parts) == (1, len(manifest.parts) - 1)
    [third] = push([pack], [dest], lock)
    assert third.uploaded_parts == 0
    assert run_cli("restore", str(lock), "--root", str(tmp_path / "root"), "-q") == 0
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)


def test_a_prefix_with_hash_query_and_percent_characters_is_a_prefix(backend, pack, tmp_path, monkeypatch):
    """'#', '?', '%', '+' and spaces are legal in S3 and GCS keys: DEST/parts is under DEST as typed,
    and the lock names it so that a restore reads it back."""
    bucket = backend.new_bucket()
    prefix = "re l#v1?x=1&y=%41+b"
    backend.env(monkeypatch, tmp_path, backend.server.url)
    dest = f"{backend.scheme}://{bucket}/{prefix}"
    lock = tmp_path / "prebake.lock"
    assert run_cli("push", str(pack), "--to", dest, "-o", str(lock)) == 0
    folder, digest = lock_location(lock)
    assert folder == f"{dest}/parts"
    names = {part.name for part in loads((pack / "manifest.json").read_bytes()).parts} | {manifest_url(lock).rsplit("/", 1)[1]}
    with open_store(folder) as store:
        assert isinstance(store, FsspecStore)
        assert set(store.fs.find(f"{bucket}/")) == {f"{bucket}/{prefix}/parts/{name}" for name in names}
    assert run_cli("restore", str(lock), "--root", str(tmp_path / "root"), "-q") == 0
    assert tree(tmp_path / "root" / "opt" / "objects") == source_tree(pack)
    assert run_cli("restore", manifest_url(lock), "--root", str(tmp_path / "again"), "-q") == 0
    assert tree(tmp_path / "again" / "opt" / "objects") == source_tree(pack)


# ---------------------------------------------------------------- the mapping, on the libraries' own errors


def test_the_backends_errors_map_to_prebakes():
    """What botocore and gcsfs raise for refusals no local server makes (gcsfs retries a 401
    'Invalid Credentials' for half a minute before raising it)."""
    from botocore.exceptions import ClientError, NoCredentialsError, ReadTimeoutError
    from gcsfs.retry import HttpError
    from google.auth.exceptions import RefreshError

    def client_error(code: str, status: int, **error: str) -> Exception:
        wrapped = OSError(5, code)
        wrapped.__cause__ = ClientError({"Error": {"Code": code, "Message": "m", **error},
                                         "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}}}, "GetObject")
        return wrapped

    what = "s3://b/p/x"
    cases = [
        (client_error("PermanentRedirect", 301, Endpoint="b.s3.eu-west-1.amazonaws.com"), "s3", StoreError, "in another region"),
        (client_error("SlowDown", 503), "s3", TransientStoreError, "keeps failing (SlowDown: m)"),
        (client_error("NoSuchKey", 404), "s3", StoreNotFound, "does not exist; check the URL"),
        (client_error("SignatureDoesNotMatch", 403), "s3", StoreAuthError, "not valid"),
        (NoCredentialsError(), "s3", StoreAuthError, "no credentials found"),
        (ReadTimeoutError(endpoint_url="http://x"), "s3", TransientStoreError, "the connection failed"),
        (HttpError({"code": 401, "message": "Invalid Credentials"}), "gcs", StoreAuthError, "HTTP 401: Invalid Credentials"),
        (HttpError({"code": 503, "message": "backend error"}), "gcs", TransientStoreError, "keeps failing"),
        (RefreshError("invalid_grant: Token has been expired or revoked."), "gcs", StoreAuthError, "gcloud auth application-default login"),
        (OSError("Forbidden: b/p/x\nno access"), "gcs", StoreAuthError, "roles/storage.objectViewer"),
    ]
    for error, backend, kind, text in cases:
        mapped = _mapped(error, what, backend)
        assert type(mapped) is kind and text in str(mapped), (error, mapped)
        assert "\n" not in str(mapped)
