"""Hostile manifests and parts, one finding each: what the restore refuses, and with what line."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard
from prebake.errors import ConflictError, IntegrityError, PrebakeError, UnsafePackError, UsageError
from prebake.manifest import Env, loads
from prebake.restore import RestoreOptions, marker_path, restore
from prebake.verify import verify_installed

from ..conftest import craft_pack, member, pack


def _manifest_json(tmp_path: Path, **changes) -> bytes:
    manifest = craft_pack(tmp_path / "pack", [member("opt/app/a")])
    raw = json.loads(manifest.dumps())
    raw.update(changes)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"name": "../../x"}, "name '../../x'"),
        ({"prefixes": ["//"]}, "prefix '//'"),
        ({"prefixes": ["/opt/app/"]}, "normalised"),
        ({"prefixes": ["/opt", "/opt/app"]}, "lies inside prefix /opt"),
        ({"whiteouts": ["/opt/app/../../etc"]}, "whiteout"),
        ({"symlinks": ["/opt/app"]}, "strictly below"),
        ({"env": {"prepend": {"PATH": ["bin"]}, "set": {}}}, "env.prepend.PATH entry 'bin'"),
        ({"env": {"prepend": {"PATH": [""]}, "set": {}}}, "env.prepend.PATH"),
        ({"env": {"prepend": {"PATH": ["/usr/bin"]}, "set": {}}}, "under the pack's prefixes"),
        ({"env": ["PATH"]}, "env must be an object"),
        ({"parts": [{"name": "part-000.tar.zst", "size": "abc", "sha256": "0" * 64, "members": 1, "bytes": 1}]}, "parts[0].size must be a whole number"),
        ({"parts": [{"name": "part-000.tar.zst", "size": True, "sha256": "0" * 64, "members": 1, "bytes": 1}]}, "parts[0].size"),
        ({"parts": [{"name": "../x", "size": 1, "sha256": "0" * 64, "members": 1, "bytes": 1}]}, "not a plain file name"),
        ({"parts": "nope"}, "parts must be a list"),
        ({"extra": 1}, "unknown fields"),
    ],
)
def test_a_hostile_manifest_is_refused_whole_with_one_line(tmp_path: Path, changes: dict, says: str) -> None:
    data = _manifest_json(tmp_path, **changes)
    with pytest.raises(PrebakeError) as caught:
        loads(data, "manifest.json")
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)
    (tmp_path / "pack" / "manifest.json").write_bytes(data)
    root = tmp_path / "root"
    with pytest.raises(PrebakeError):
        restore(tmp_path / "pack", root=root, progress=False)
    assert not (root / "opt").exists(), "nothing may be written for a refused manifest"


def test_an_oversized_manifest_is_refused_unparsed(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="larger than"):
        loads(b" " * (16 * 2**20 + 1))


def test_a_part_that_decompresses_past_its_bytes_is_refused(tmp_path: Path) -> None:
    """A 64 KB part must not write 2 GiB: decompression stops at the manifest's `bytes`."""
    big = tarfile.TarInfo("opt/app/bomb")
    big.size = 50_000_000
    bomb_tar = big.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * big.size + b"\0" * 1024
    manifest = craft_pack(tmp_path / "pack", [], raw_tar=bomb_tar)
    compressed_size = (tmp_path / "pack" / "part-000.tar.zst").stat().st_size
    assert compressed_size < 100_000
    # The manifest claims the part is small once unpacked.
    raw_manifest = json.loads(manifest.dumps())
    raw_manifest["parts"][0]["bytes"] = 4096
    (tmp_path / "pack" / "manifest.json").write_text(json.dumps(raw_manifest))
    root = tmp_path / "root"
    with pytest.raises(IntegrityError, match="decompresses to more than the 4096 bytes"):
        restore(tmp_path / "pack", root=root, progress=False)
    assert not (root / "opt/app/bomb").exists()


def test_a_name_twice_in_one_part_is_refused(tmp_path: Path) -> None:
    craft_pack(tmp_path / "pack", [member("opt/app/a", data=b"one"), member("opt/app/a", data=b"two")])
    with pytest.raises(UnsafePackError, match="appears twice"):
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert not (tmp_path / "root/opt/app/a").exists()


def test_more_members_than_the_manifest_says_are_refused(tmp_path: Path) -> None:
    manifest = craft_pack(tmp_path / "pack", [member("opt/app/a"), member("opt/app/b")])
    raw = json.loads(manifest.dumps())
    raw["parts"][0]["members"] = 1
    (tmp_path / "pack" / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(UnsafePackError, match="more than the 1 members"):
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False)


@pytest.mark.parametrize("variable", ["LD_PRELOAD", "PYTHONSTARTUP", "http_proxy", "HTTPS_PROXY", "PREBAKE_STATE_DIR", "PATH",
                                      "GIT_CONFIG_COUNT", "GIT_PROXY_COMMAND", "JDK_JAVA_OPTIONS", "OPENSSL_CONF",
                                      "PIP_CONFIG_FILE", "SSLKEYLOGFILE", "PAGER", "PYTHONHOME", "SSL_CERT_DIR"])
def test_a_pack_may_not_set_a_denied_variable_unless_allowed(tmp_path: Path, variable: str, monkeypatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "lib.so").write_bytes(b"x")
    pack(src, tmp_path / "pack", env=Env(set={variable: "/opt/app/lib.so"}))
    before = str(tmp_path / "before")  # PREBAKE_STATE_DIR among them: keep it in tmp_path
    monkeypatch.setenv(variable, before)
    with pytest.raises(UsageError, match=rf"sets {variable}, which a pack may not do.*allow_env=\['{variable}'\]"):
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert os.environ[variable] == before
    assert not (tmp_path / "root/opt").exists()
    if variable != "PATH":
        restore(tmp_path / "pack", root=tmp_path / "root", progress=False, allow_env=(variable,))
        assert os.environ[variable] == "/opt/app/lib.so"


def test_a_pack_may_set_plain_configuration_variables(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "src"
    (src / "models").mkdir(parents=True)
    pack(src, tmp_path / "pack", env=Env(set={"TORCH_HOME": "/opt/app/models", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}))
    for name in ("TORCH_HOME", "MPLBACKEND", "PYTHONUNBUFFERED"):
        monkeypatch.setenv(name, "before")
    restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert [os.environ[n] for n in ("TORCH_HOME", "MPLBACKEND", "PYTHONUNBUFFERED")] == ["/opt/app/models", "Agg", "1"]


def test_ld_library_path_may_be_prepended_with_the_packs_own_folder(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    pack(src, tmp_path / "pack", env=Env(prepend={"LD_LIBRARY_PATH": ("/opt/app/lib",)}))
    monkeypatch.setenv("LD_LIBRARY_PATH", "")
    restore(tmp_path / "pack", root=tmp_path / "root", progress=False)
    assert os.environ["LD_LIBRARY_PATH"].split(os.pathsep)[0] == str(tmp_path / "root/opt/app/lib")


def test_the_python_api_takes_str_and_pathlike_and_names_a_bad_argument(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    pack(src, tmp_path / "pack")
    [result] = restore(str(tmp_path / "pack"), root=str(tmp_path / "root"), progress=False)
    assert (tmp_path / "root/opt/app/f").exists() and not result.skipped
    with pytest.raises(UsageError, match="root must be a path"):
        restore(tmp_path / "pack", root=5)
    with pytest.raises(UsageError, match="unknown argument.*rooot"):
        restore(tmp_path / "pack", rooot=tmp_path)
    with pytest.raises(UsageError, match="source must be a path or URL"):
        restore(42, root=tmp_path / "root")
    assert RestoreOptions(root="relative").root == Path("relative")


def test_verify_installed_checks_folders_and_links(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("x")
    (src / "link").symlink_to("d/f")
    os.chmod(src / "d", 0o750)
    pack(src, tmp_path / "pack")
    root = tmp_path / "root"
    restore(tmp_path / "pack", root=root, progress=False)
    from prebake.locate import fetch_manifest
    from prebake.stores import open_store

    source = fetch_manifest(open_store(tmp_path / "pack"))
    assert verify_installed(source, root) == []
    os.chmod(root / "opt/app/d", 0o777)
    (root / "opt/app/link").unlink()
    (root / "opt/app/link").symlink_to("elsewhere")
    problems = [str(p) for p in verify_installed(source, root)]
    assert any("/opt/app/d: folder mode 777, the pack says 750" in p for p in problems), problems
    assert any("/opt/app/link: links to 'elsewhere'" in p for p in problems), problems


def test_folders_get_their_metadata_after_a_resumed_restore(tmp_path: Path) -> None:
    """A part verified in an earlier, interrupted run still has its folders finished by the next."""
    src = tmp_path / "src"
    for i in range(6):
        (src / f"d{i}").mkdir(parents=True)
        (src / f"d{i}" / "blob").write_bytes(os.urandom(300_000))
        os.chmod(src / f"d{i}", 0o700 + i)
        os.utime(src / f"d{i}", (1_600_000_000 + i, 1_600_000_000 + i))
    manifest = pack(src, tmp_path / "pack", part_size=200_000)
    assert len(manifest.parts) >= 3
    root = tmp_path / "root"
    last = manifest.parts[-1].name
    damaged = (tmp_path / "pack" / last).read_bytes()
    (tmp_path / "pack" / last).write_bytes(b"\0" * len(damaged))
    with pytest.raises(IntegrityError):
        restore(tmp_path / "pack", root=root, progress=False, workers="threads", jobs=1)
    (tmp_path / "pack" / last).write_bytes(damaged)
    restore(tmp_path / "pack", root=root, progress=False)
    for i in range(6):
        st = (root / f"opt/app/d{i}").stat()
        assert (oct(st.st_mode & 0o7777), int(st.st_mtime)) == (oct(0o700 + i), 1_600_000_000 + i)
    assert json.loads(marker_path(root, "app").read_text())["folders"]


def test_a_failed_part_stops_the_parts_queued_behind_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        (src / f"blob-{i}").write_bytes(os.urandom(200_000))
    manifest = pack(src, tmp_path / "pack", part_size=150_000)
    biggest = max(manifest.parts, key=lambda p: p.size).name
    (tmp_path / "pack" / biggest).write_bytes(zstandard.ZstdCompressor().compress(b"not a tar" * 1000))
    root = tmp_path / "root"
    with pytest.raises(IntegrityError):
        restore(tmp_path / "pack", root=root, progress=False, workers="threads", jobs=1, retries=0)
    partial = root / "var/lib/prebake/partial"
    assert not partial.exists() or not list(partial.rglob("*.done")), "parts queued behind the failure must not run"


@pytest.mark.parametrize(
    ("members", "whiteouts"),
    [
        ([member("var/lib/prebake/installed/other.json", data=b'{"digest": "forged"}')], ()),
        ([member("var/lib/prebake/partial/0000/gate.json", data=b'{"prefixes": ["/etc"], "symlinks": []}')], ()),
        ([member("var/lib/x")], ("/var/lib/prebake",)),
        ([member("var/lib/x")], ("/var/lib/prebake/lock",)),
    ],
)
def test_no_pack_touches_prebakes_own_state_folder(tmp_path: Path, members, whiteouts) -> None:
    """A pack whose prefix covers the state folder could forge a journal that makes the next run
    delete outside its prefixes, or a marker that skips another pack: refused."""
    craft_pack(tmp_path / "pack", members, prefixes=("/var/lib",), whiteouts=whiteouts)
    root = tmp_path / "root"
    with pytest.raises(UnsafePackError, match="prebake's own state folder"):
        restore(tmp_path / "pack", root=root, progress=False)
    assert not (root / "var/lib/prebake/installed").exists() or not list((root / "var/lib/prebake/installed").iterdir())
    assert not list((root / "var/lib/prebake").glob("partial/*/gate.json"))


def test_a_link_left_by_one_pack_does_not_open_the_state_folder_to_the_next(tmp_path: Path) -> None:
    """Pack A leaves a link to prebake's state folder; pack B's prefix is that link. B must not
    write there (a forged .done record would have made a third restore chmod a folder outside)."""
    root = tmp_path / "root"
    craft_pack(tmp_path / "a", [member("opt/a/l", tarfile.SYMTYPE, linkname="../../var/lib/prebake")],
               prefixes=("/opt/a",), symlinks=("/opt/a/l",))
    restore(tmp_path / "a", root=root, progress=False)
    assert (root / "opt/a/l").resolve() == (root / "var/lib/prebake").resolve()
    craft_pack(tmp_path / "b", [member("opt/a/l/installed/other.json", data=b'{"digest": "forged"}')], prefixes=("/opt/a/l",))
    with pytest.raises(UnsafePackError, match="prebake's own state folder"):
        restore(tmp_path / "b", root=root, progress=False)
    assert not (root / "var/lib/prebake/installed/other.json").exists()


def test_a_zero_length_long_name_record_is_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("././@LongLink")
    link.type = tarfile.GNUTYPE_LONGLINK
    raw = link.tobuf(format=tarfile.USTAR_FORMAT).replace(b"ustar\x0000", b"ustar  \x00")
    header = bytearray(raw)
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    body = bytes(header) + tarfile.TarInfo("opt/app/d").tobuf(format=tarfile.GNU_FORMAT)
    craft_pack(tmp_path / "pack", [], raw_tar=body + b"\0" * 1024)
    root = tmp_path / "root"
    with pytest.raises(UnsafePackError, match="malformed GNU long name record"):
        restore(tmp_path / "pack", root=root, progress=False)
    assert not (root / "opt").exists(), "the folders made on the way to the prefix are undone too"


def test_an_mtime_past_what_utime_takes_is_refused_with_one_line(tmp_path: Path) -> None:
    info, data = member("opt/app/f")
    info.mtime = 2**80  # GNU tar writes it in base-256
    craft_pack(tmp_path / "pack", [member("opt/app/first"), (info, data)])
    root = tmp_path / "root"
    with pytest.raises(UnsafePackError, match="has mtime"):
        restore(tmp_path / "pack", root=root, progress=False)
    assert not (root / "opt").exists()


def test_a_whiteout_that_fails_after_every_part_leaves_none_of_the_pack(tmp_path: Path) -> None:
    craft_pack(tmp_path / "pack", [member("opt/app/f"), member("opt/app/g")], whiteouts=("/opt/app/f/x",))
    root = tmp_path / "root"
    with pytest.raises(PrebakeError):
        restore(tmp_path / "pack", root=root, progress=False)
    assert not (root / "opt").exists()
    assert not marker_path(root, "crafted").exists()


@pytest.mark.parametrize("text", ['"name": "a\\udc61"', '"version": "1", "stats": {"n": 1' + "0" * 5000 + "}"])
def test_manifest_text_that_python_cannot_use_is_refused_with_one_line(tmp_path: Path, text: str) -> None:
    data = _manifest_json(tmp_path).replace(b'"name": "crafted"', text.encode(), 1)
    with pytest.raises(PrebakeError) as caught:
        loads(data)
    assert "\n" not in str(caught.value)


def test_a_refusal_of_the_file_system_gives_the_fix_that_fits_who_we_are(tmp_path: Path) -> None:
    from prebake.restore import _os_error

    refused = PermissionError(1, "Operation not permitted", str(tmp_path / "f"))
    text = str(_os_error(refused, tmp_path))
    if os.geteuid() == 0:
        assert "immutable" in text and "run as root" not in text
    else:
        assert "run as root" in text
    assert str(tmp_path / "f") in text


def test_a_whiteout_may_remove_a_file_that_is_its_own_prefix_but_never_a_prefix_folder(tmp_path: Path) -> None:
    """A build that deletes one file names that file as a capture root (the pack's prefix); a
    whiteout equal to a prefix folder would wipe everything in it (an existing dist-packages/torch)."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "EXTERNALLY-MANAGED").write_text("pip, keep off\n")
    (root / "opt/app/torch").mkdir(parents=True)
    (root / "opt/app/torch/keep.py").write_text("precious\n")
    craft_pack(tmp_path / "file", [member("opt/app/a")],
               prefixes=("/opt/app", "/etc/EXTERNALLY-MANAGED"), whiteouts=("/etc/EXTERNALLY-MANAGED",))
    restore(tmp_path / "file", root=root, progress=False)
    assert not (root / "etc/EXTERNALLY-MANAGED").exists()
    assert (root / "etc").is_dir()
    # Into a root without that file's folder (a fresh container): nothing to remove, no error.
    restore(tmp_path / "file", root=tmp_path / "fresh", progress=False)
    assert (tmp_path / "fresh/opt/app/a").exists() and not (tmp_path / "fresh/etc").exists()

    craft_pack(tmp_path / "folder", [member("opt/app/torch/b")], prefixes=("/opt/app/torch",), whiteouts=("/opt/app/torch",))
    with pytest.raises(UnsafePackError, match="would remove one of the pack's prefixes"):
        restore(tmp_path / "folder", root=root, progress=False)
    assert (root / "opt/app/torch/keep.py").read_text() == "precious\n"
    assert not (root / "opt/app/torch/b").exists()


def test_a_file_prefix_whiteout_never_reaches_through_a_link_out_of_the_root(tmp_path: Path) -> None:
    """A whiteout equal to a file prefix is removed relative to its folder as it resolves: a link
    of this machine (or one an earlier pack left) that leaves the root is refused, not followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("must survive\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "m").symlink_to(outside)
    craft_pack(tmp_path / "pack", [member("opt/app/f")], prefixes=("/opt/app", "/m/victim"), whiteouts=("/m/victim",))
    with pytest.raises(ConflictError, match="leaves"):
        restore(tmp_path / "pack", root=root, progress=False)
    assert (outside / "victim").read_text() == "must survive\n"
    assert not (root / "opt").exists()


def test_a_file_prefix_whiteout_below_a_file_of_this_machine_fails_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc2").write_text("a file where the pack expects a folder\n")
    craft_pack(tmp_path / "pack", [member("opt/app/f")], prefixes=("/opt/app", "/etc2/f"), whiteouts=("/etc2/f",))
    with pytest.raises(ConflictError, match="cannot be opened as a folder"):
        restore(tmp_path / "pack", root=root, progress=False)
    assert not (root / "opt").exists()


def test_another_packs_verified_parts_stay_recorded_until_that_pack_is_restored(tmp_path: Path) -> None:
    """Restoring pack Q must not forget pack P's verified parts (their files would stay with no
    record to resume or undo them): P's next restore resumes from them."""
    src = tmp_path / "p-src"
    src.mkdir()
    for i in range(8):
        (src / f"blob-{i}").write_bytes(os.urandom(200_000))
    manifest = pack(src, tmp_path / "p", part_size=300_000)
    last = sorted(manifest.parts, key=lambda part: part.weight, reverse=True)[-1].name  # a one-job restore reaches it last
    good = (tmp_path / "p" / last).read_bytes()
    (tmp_path / "p" / last).write_bytes(b"\0" * len(good))
    root = tmp_path / "root"
    with pytest.raises(IntegrityError):
        restore(tmp_path / "p", root=root, progress=False, workers="threads", jobs=1, retries=0)
    partial = root / "var/lib/prebake/partial"
    assert list(partial.rglob("*.done")), "P's verified parts are recorded"
    craft_pack(tmp_path / "q", [member("opt/q/f")], prefixes=("/opt/q",))
    restore(tmp_path / "q", root=root, progress=False)
    assert list(partial.rglob("*.done")), "restoring Q kept P's records"
    (tmp_path / "p" / last).write_bytes(good)
    [result] = restore(tmp_path / "p", root=root, progress=False)
    assert not result.skipped
    assert all((root / f"opt/app/blob-{i}").read_bytes() == (src / f"blob-{i}").read_bytes() for i in range(8))


def test_a_release_restored_over_another_releases_verified_parts_makes_them_restore_again(tmp_path: Path) -> None:
    """Release 1 stops with some parts verified; release 2 (same paths, new bytes) is restored over
    them; a lock rolled back to release 1 must restore release 1's bytes, not skip the parts whose
    files release 2 has since written over."""
    sources = []
    for release in (1, 2):
        src = tmp_path / f"src-{release}"
        src.mkdir()
        for i in range(8):
            (src / f"blob-{i}").write_bytes(os.urandom(200_000))
        sources.append(src)
    first = pack(sources[0], tmp_path / "p1", part_size=300_000)
    pack(sources[1], tmp_path / "p2", part_size=300_000)
    last = sorted(first.parts, key=lambda part: part.weight, reverse=True)[-1].name
    good = (tmp_path / "p1" / last).read_bytes()
    (tmp_path / "p1" / last).write_bytes(b"\0" * len(good))
    root = tmp_path / "root"
    with pytest.raises(IntegrityError):
        restore(tmp_path / "p1", root=root, progress=False, workers="threads", jobs=1, retries=0)
    assert list((root / "var/lib/prebake/partial").rglob("*.done")), "release 1's verified parts are recorded"
    restore(tmp_path / "p2", root=root, progress=False)
    (tmp_path / "p1" / last).write_bytes(good)
    [result] = restore(tmp_path / "p1", root=root, progress=False)
    assert not result.skipped
    changed = [i for i in range(8) if (root / f"opt/app/blob-{i}").read_bytes() != (sources[0] / f"blob-{i}").read_bytes()]
    assert changed == [], f"files still holding release 2's bytes after restoring release 1: {changed}"


def test_verified_parts_whose_files_another_pack_replaced_through_a_link_are_restored_again(tmp_path: Path) -> None:
    """Pack A (at /lib/app) stops with a part verified; pack B (at /usr/lib/app, the same folder on
    a merged-/usr machine where /lib links to usr/lib) writes over A's file. A's next restore must
    put A's bytes back, whatever path reached the file: it checks the files, not the prefixes."""
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    src_a, src_b = tmp_path / "a", tmp_path / "b"
    src_a.mkdir()
    src_b.mkdir()
    for i in range(8):
        (src_a / f"blob-{i}").write_bytes(os.urandom(200_000))
        (src_b / f"blob-{i}").write_bytes(b"B" * 10)
    manifest = pack(src_a, tmp_path / "pa", target="/lib/app", name="a", part_size=300_000)
    pack(src_b, tmp_path / "pb", target="/usr/lib/app", name="b")
    last = sorted(manifest.parts, key=lambda part: part.weight, reverse=True)[-1].name
    good = (tmp_path / "pa" / last).read_bytes()
    (tmp_path / "pa" / last).write_bytes(b"\0" * len(good))
    with pytest.raises(IntegrityError):
        restore(tmp_path / "pa", root=root, progress=False, workers="threads", jobs=1, retries=0)
    restore(tmp_path / "pb", root=root, progress=False)
    (tmp_path / "pa" / last).write_bytes(good)
    [result] = restore(tmp_path / "pa", root=root, progress=False)
    assert not result.skipped
    assert all((root / f"usr/lib/app/blob-{i}").read_bytes() == (src_a / f"blob-{i}").read_bytes() for i in range(8))


def test_names_that_are_not_ascii_restore_as_their_bytes_in_a_c_locale(tmp_path: Path) -> None:
    """A Python whose file system encoding is ASCII (a C locale, UTF-8 mode and locale coercion
    off) restores a member named in UTF-8 as those very bytes, journaled as the name it created."""
    import subprocess
    import sys

    craft_pack(tmp_path / "pack", [member("opt/app/caf\u00e9", data=b"x")])
    script = ("import sys\nfrom prebake.restore import restore\n"
              "assert sys.getfilesystemencoding() == 'ascii', sys.getfilesystemencoding()\n"
              f"restore({str(tmp_path / 'pack')!r}, root={str(tmp_path / 'root')!r}, progress=False, workers='threads')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONUTF8", "PYTHONCOERCECLOCALE"))}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**env, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"})
    assert done.returncode == 0, done.stderr
    assert os.listdir(os.fsencode(tmp_path / "root/opt/app")) == [b"caf\xc3\xa9"]
