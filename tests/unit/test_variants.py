"""One lock for every runtime: variants of a pack per platform, written by the one lock writer,
chosen by the restore, shown by inspect and doctor. Real packs, restored under a temporary root."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prebake.cli._build import runtime_builds
from prebake.doctor import doctor
from prebake.errors import PlatformMismatch, UsageError
from prebake.locate import fetch_manifest, lock_matrix, resolve
from prebake.lock import Lock, LockedPack, load, loads, write_lock
from prebake.manifest import Platform
from prebake.push import push
from prebake.recipe import parse
from prebake.restore import installed_digest, marker_path, restore
from prebake.runtime import current_platform, drift, mismatches, short
from prebake.stores import open_store
from prebake.variants import fitting

from ..conftest import pack, run_cli

HERE = current_platform(with_cuda=False)
OLD_PYTHON = dataclasses.replace(HERE, python="2.7", abi="cpython-27-x86_64-linux-gnu")
OTHER_OS = dataclasses.replace(HERE, os="plan9 4")


def build_variant(tmp_path: Path, platform: Platform | None, content: str, name: str = "app") -> tuple[Path, LockedPack]:
    """A real pack `name` whose one file says `content`, built for `platform`, and its lock entry."""
    folder = tmp_path / f"{name}-{content}"
    src = folder / "src"
    src.mkdir(parents=True)
    (src / "which").write_text(content)
    manifest = pack(src, folder / "pack", target=f"/opt/{name}", name=name, platform=platform)
    return folder / "pack", LockedPack.pinning(manifest, manifest.digest, (str(folder / "pack"),))


def restored(root: Path, name: str = "app") -> str:
    return (root / "opt" / name / "which").read_text()


# ---------------------------------------------------------------- the restore picks the variant that fits


@pytest.mark.parametrize("order", [0, 1], ids=["fitting-first", "fitting-last"])
def test_the_restore_picks_the_variant_for_this_runtime(tmp_path: Path, order: int) -> None:
    entries = [build_variant(tmp_path, HERE, "here")[1], build_variant(tmp_path, OLD_PYTHON, "old")[1]]
    lock = tmp_path / "prebake.lock"
    write_lock(lock, entries if order == 0 else entries[::-1])
    assert [p.platform for p in load(lock).packs] == [e.platform for e in (entries if order == 0 else entries[::-1])]
    [result] = restore(lock, root=tmp_path / "root", progress=False)
    assert restored(tmp_path / "root") == "here"
    assert result.digest == entries[0].digest


def test_of_several_that_fit_the_most_specific_wins(tmp_path: Path) -> None:
    loose = dataclasses.replace(Platform(), os=HERE.os, arch=HERE.arch)
    older_glibc = dataclasses.replace(HERE, glibc="1.0")
    lock = tmp_path / "prebake.lock"
    write_lock(lock, [build_variant(tmp_path, None, "any")[1], build_variant(tmp_path, loose, "loose")[1],
                      build_variant(tmp_path, older_glibc, "older")[1], build_variant(tmp_path, HERE, "here")[1]])
    assert len(load(lock).packs) == 3  # the entry for any runtime was the name's only one: the next replaced it
    restore(lock, root=tmp_path / "root", progress=False)
    assert restored(tmp_path / "root") == "here"


def test_no_fitting_variant_is_one_line_naming_them_and_the_build(tmp_path: Path, monkeypatch, capsys) -> None:
    lock = tmp_path / "prebake.lock"
    write_lock(lock, [build_variant(tmp_path, OLD_PYTHON, "old")[1], build_variant(tmp_path, OTHER_OS, "plan9")[1]])
    with pytest.raises(PlatformMismatch) as caught:
        restore(lock, root=tmp_path / "root", progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert short(OLD_PYTHON) in message and short(OTHER_OS) in message and short(HERE) in message
    assert "`prebake build app --backend scan -o packs`" in message  # no runtime of images/ mirrors this machine
    assert not marker_path(tmp_path / "root", "app").exists()

    images = tmp_path / "images" / "this-one"
    images.mkdir(parents=True)
    (images / "runtime.toml").write_text(f'runtime = "this-one"\npython = "{HERE.python}"\nos = "{HERE.os}"\nbase_image = "x"\n')
    monkeypatch.setenv("PREBAKE_IMAGES_DIR", str(tmp_path / "images"))
    assert run_cli("restore", str(lock), "--root", str(tmp_path / "root"), "-q") == 6
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("prebake: error: no variant of app fits this runtime")
    assert "`prebake build app --runtime this-one -o packs`" in line


def test_an_old_lock_without_platforms_still_restores(tmp_path: Path) -> None:
    folder, entry = build_variant(tmp_path, HERE, "here")
    lock = tmp_path / "old.lock"
    lock.write_text(f'version = 1\n[[pack]]\nname = "app"\nversion = "1.0"\ndigest = "{entry.digest}"\nlocations = ["{folder}"]\n')
    [wanted] = resolve(lock)
    assert wanted.platform is None
    restore(lock, root=tmp_path / "root", progress=False)
    assert restored(tmp_path / "root") == "here"


def test_a_lock_entry_whose_platform_is_not_its_manifests_is_refused(tmp_path: Path, capsys) -> None:
    folder, entry = build_variant(tmp_path, HERE, "here")
    claimed = Platform(os=HERE.os, python=HERE.python)  # fits here too, so the restore would choose by it
    lock = tmp_path / "prebake.lock"
    write_lock(lock, [dataclasses.replace(entry, platform=claimed)])
    [wanted] = resolve(lock)
    with pytest.raises(UsageError, match="its lock entry says"), open_store(wanted.locations[0]) as store:
        fetch_manifest(store, wanted.digest, wanted.platform)
    assert run_cli("verify", str(lock)) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"is built for {short(HERE)}, but its lock entry says {short(claimed)}" in line


def test_a_lone_entry_for_another_runtime_still_honours_force(tmp_path: Path) -> None:
    lock = tmp_path / "prebake.lock"
    write_lock(lock, [build_variant(tmp_path, OLD_PYTHON, "old")[1]])
    with pytest.raises(PlatformMismatch, match="python 2.7"):
        restore(lock, root=tmp_path / "root", progress=False)
    restore(lock, root=tmp_path / "root", progress=False, force=True)
    assert restored(tmp_path / "root") == "old"


# ---------------------------------------------------------------- push and the one lock writer


def test_pushing_variants_puts_them_under_one_name(tmp_path: Path) -> None:
    here, _ = build_variant(tmp_path, HERE, "here")
    old, _ = build_variant(tmp_path, OLD_PYTHON, "old")
    lock = tmp_path / "prebake.lock"
    push([here], [str(tmp_path / "mirror")], lock)
    push([old], [str(tmp_path / "mirror")], lock)
    assert [p.name for p in (tmp_path / "mirror").iterdir()] == ["parts"]  # one folder of parts for every pack
    assert len(list((tmp_path / "mirror" / "parts").glob("manifest-*.json"))) == 2
    assert [(p.name, p.platform) for p in load(lock).packs] == [("app", HERE), ("app", OLD_PYTHON)]
    [again] = push([here], [str(tmp_path / "mirror")], lock)  # the same platform again: replaced, not added
    assert again.uploaded_parts == 0 and len(load(lock).packs) == 2
    restore(lock, root=tmp_path / "root", progress=False)
    assert restored(tmp_path / "root") == "here"


def entry(name: str, platform: Platform | None, digest: str = "a", **fields) -> LockedPack:
    return LockedPack(name, "1", "sha256:" + digest * 64, (f"/packs/{name}-{digest}",), platform=platform, **fields)


def test_write_lock_merges_by_name_and_platform(tmp_path: Path) -> None:
    lock = tmp_path / "prebake.lock"
    write_lock(lock, [entry("app", None, "a", allow_env=("LD_PRELOAD",)), entry("other", HERE, "b")])
    write_lock(lock, [entry("app", HERE, "c")])  # replaces the entry for any runtime, in its place
    assert [(p.name, p.digest[7], p.allow_env) for p in load(lock).packs] == [("app", "c", ("LD_PRELOAD",)), ("other", "b", ())]
    write_lock(lock, [entry("app", OLD_PYTHON, "d")])  # another runtime: joins its name's variants
    assert [(p.name, p.digest[7]) for p in load(lock).packs] == [("app", "c"), ("app", "d"), ("other", "b")]
    assert load(lock).packs[1].allow_env == ("LD_PRELOAD",)  # the maintainer's leave is the name's
    write_lock(lock, [entry("app", HERE, "e")])  # the same runtime: replaced in place
    assert [(p.name, p.digest[7]) for p in load(lock).packs] == [("app", "e"), ("app", "d"), ("other", "b")]
    write_lock(lock, [entry("app", None, "e")])  # the same manifest pinned without its platform keeps it
    assert [(p.digest[7], p.platform) for p in load(lock).packs if p.name == "app"] == [("e", HERE)]
    write_lock(lock, [entry("other", None, "f")])  # a pack for any runtime is its name's only entry
    assert [(p.name, p.digest[7], p.platform) for p in load(lock).packs] == [("app", "e", HERE), ("other", "f", None)]
    assert "version = 2" in lock.read_text() and "platform = {" in lock.read_text()


platforms = st.builds(Platform, os=st.sampled_from([None, "ubuntu 22.04", "debian 12"]), arch=st.sampled_from([None, "x86_64"]),
                      python=st.sampled_from([None, "3.12", "3.13"]), glibc=st.sampled_from([None, "2.35", "2.39"]),
                      cuda=st.sampled_from([None, "12.2", "12.8"]))


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), platforms.filter(lambda p: any(vars(p).values()))),
                unique=True, max_size=6), st.randoms(use_true_random=False), st.integers(1, 3))
def test_variants_written_in_any_order_and_batches_give_the_same_lock(keys, random, batches) -> None:
    entries = [entry(name, platform, "0123456789abcdef"[i]) for i, (name, platform) in enumerate(keys)]
    shuffled = random.sample(entries, len(entries))
    lock = Lock(())
    for i in range(batches):
        lock = lock.merged(Lock(tuple(shuffled[i::batches])))
    assert set(lock.packs) == set(entries)
    if entries:
        assert loads(lock.dumps()) == lock  # and the TOML keeps every variant as it was


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.one_of(st.none(), platforms)), max_size=8))
def test_after_any_writes_a_name_has_one_entry_for_any_runtime_or_distinct_platforms(keys) -> None:
    lock = Lock(())
    for i, (name, platform) in enumerate(keys):
        lock = lock.merged(Lock((entry(name, platform, "0123456789abcdef"[i % 16]),)))
    for name in {p.name for p in lock.packs}:
        mine = [p.platform for p in lock.packs if p.name == name]
        assert mine == [None] or (None not in mine and len(set(mine)) == len(mine))


@given(st.lists(st.one_of(st.none(), platforms), min_size=1, max_size=6), platforms)
def test_the_variant_chosen_never_mismatches_and_none_only_when_all_do(chosen_from, here) -> None:
    variants = [entry("app", platform, "0123456789abcdef"[i]) for i, platform in enumerate(chosen_from)]
    chosen = fitting(variants, here)
    if chosen is None:
        assert all(v.platform is not None and mismatches(v.platform, here) for v in variants)
    else:
        assert chosen.platform is None or not mismatches(chosen.platform, here)


@pytest.mark.parametrize(("text", "problem"), [
    ('version = 3\n[[pack]]\nname = "a"', "upgrade prebake"),
    ('version = 2\n[[pack]]\nname = "a"\nversion = "1"\ndigest = "sha256:' + "a" * 64 + '"\nlocations = ["x"]\nplatform = { python = 3.12 }',
     "table of short one-line strings"),
    ('version = 2\n[[pack]]\nname = "a"\nversion = "1"\ndigest = "sha256:' + "a" * 64 + '"\nlocations = ["x"]\nplatform = { libc = "musl" }',
     "does not know"),
    ('version = 2\n' + ('[[pack]]\nname = "a"\nversion = "1"\ndigest = "sha256:' + "a" * 64 + '"\nlocations = ["x"]\nplatform = { python = "3.12" }\n') * 2,
     "keep one"),
    ('version = 2\n[[pack]]\nname = "a"\nversion = "1"\ndigest = "sha256:' + "a" * 64 + '"\nlocations = ["x"]\nplatform = { os = "x\\nprebake: error: forged" }',
     "table of short one-line strings"),
])
def test_a_malformed_variant_entry_is_one_line(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem) as caught:
        loads(text)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- inspect, doctor, drift


def test_inspect_shows_the_matrix(tmp_path: Path) -> None:
    lock = tmp_path / "prebake.lock"
    here, old = build_variant(tmp_path, HERE, "here")[1], build_variant(tmp_path, OLD_PYTHON, "old")[1]
    tool = build_variant(tmp_path, OTHER_OS, "plan9", name="tool")[1]
    write_lock(lock, [old, here, tool])
    lines = lock_matrix(lock)
    assert lines[0] == f"{lock}: 3 variant(s) of 2 pack(s); this runtime is {short(HERE)}"
    assert lines[1] == "app" and lines[4] == "tool"
    assert lines[2].startswith(f"     {short(OLD_PYTHON)}") and lines[2].endswith(f"1.0        {old.digest[:19]}")
    assert lines[3].startswith(f"  -> {short(HERE)}") and here.digest[:19] in lines[3]
    assert lines[6] == "     none fits this runtime: build one with `prebake build tool --backend scan -o packs`"


def test_doctor_says_what_restores_what_needs_a_build_and_what_is_restored(tmp_path: Path, capsys) -> None:
    lock = tmp_path / "prebake.lock"
    root = tmp_path / "root"
    _, here = build_variant(tmp_path, HERE, "here")
    write_lock(lock, [here, build_variant(tmp_path, OLD_PYTHON, "old")[1]])
    assert run_cli("doctor", str(lock), "--root", str(root)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"this runtime: {short(HERE)}; {lock}:"
    assert out[1] == f"  restores  app 1.0 for {short(HERE)} ({here.digest[:19]})"
    assert out[2] == "all 1 pack(s) restore here"
    restore(lock, root=root, progress=False)
    assert doctor(lock, root).packs[0].line().startswith("  restored  app 1.0")

    write_lock(lock, [build_variant(tmp_path, OTHER_OS, "plan9", name="tool")[1]])
    assert run_cli("doctor", str(lock), "--root", str(root)) == 6
    captured = capsys.readouterr()
    assert captured.out.splitlines()[2] == (f"  rebuild   tool: no variant for this runtime (the lock has {short(OTHER_OS)}); "
                                            "build one with `prebake build tool --backend scan -o packs`")
    assert captured.out.splitlines()[3] == "1 of 2 pack(s) need a build for this runtime: tool"
    assert captured.err.strip() == f"prebake: error: no variant for this runtime of tool in {lock}; build one with the command above"


def test_doctor_reads_the_platform_of_an_old_locks_entries_from_their_manifests(tmp_path: Path) -> None:
    folder, old = build_variant(tmp_path, OLD_PYTHON, "old")
    lock = tmp_path / "old.lock"
    lock.write_text(f'version = 1\n[[pack]]\nname = "app"\nversion = "1.0"\ndigest = "{old.digest}"\nlocations = ["{folder}"]\n')
    diagnosis = doctor(lock, tmp_path / "root")
    assert not diagnosis.ok and diagnosis.missing == ["app"]
    assert short(OLD_PYTHON) in diagnosis.packs[0].line()
    lock.write_text(lock.read_text().replace(str(folder), str(tmp_path / "gone")))
    [health] = doctor(lock, tmp_path / "root").packs
    assert health.chosen is not None and "could not be read" in health.line()
    assert installed_digest(tmp_path / "root", "app") is None


def test_drift_is_said_when_the_runtime_moved_past_the_packs_facts_in_an_accepted_way() -> None:
    built = Platform(os="ubuntu 22.04", python="3.12", glibc="2.35", cuda="12.2")
    assert drift(built, built) is None
    assert drift(built, dataclasses.replace(built, python="3.13")) is None  # no fit: the mismatch says why
    moved = drift(built, dataclasses.replace(built, glibc="2.39", cuda="12.8"))
    assert moved == ("this runtime has a newer glibc 2.39 (built for 2.35) and a newer cuda 12.8 (built for 12.2); "
                     "accepted, but if the pack misbehaves rebuild it for this runtime")
    assert "glibc" not in drift(built, dataclasses.replace(built, cuda="12.10"))


def test_short_forms() -> None:
    assert short(None) == short(Platform()) == "any"
    assert short(Platform(os="ubuntu 22.04", arch="x86_64", python="3.13", abi="cpython-313-x86_64-linux-gnu", glibc="2.35",
                          cuda="12.8")) == "ubuntu22.04 x86_64 py3.13 glibc2.35 cuda12.8"
    assert short(Platform(python="3.13", abi="cpython-313t-x86_64-linux-gnu")) == "py3.13 cpython-313t-x86_64-linux-gnu"


# ---------------------------------------------------------------- build --runtime


def test_build_plans_one_pack_per_runtime(tmp_path: Path) -> None:
    from prebake.bake import BuildOptions

    recipe = parse('name = "x"\nversion = "1"\nruntime = "2026.07"\ninstall = ["true"]\n')
    options = BuildOptions(out=tmp_path / "out")
    assert runtime_builds([recipe], (), options) == [([recipe], options)]
    plans = runtime_builds([recipe], ("2026.07", "latest", "2026.07"), options)
    assert [(r.runtime, o.out) for (r,), o in plans] == [("2026.07", tmp_path / "out/2026.07"), ("latest", tmp_path / "out/latest")]
    assert len({r.digest for (r,), _ in plans}) == 2  # the runtime is in the recipe digest: each is cached on its own
    with pytest.raises(UsageError, match="known runtimes: 2026.07, latest"):
        runtime_builds([recipe], ("nope",), options)
    with pytest.raises(UsageError, match="scan backend"):
        runtime_builds([dataclasses.replace(recipe, backend="scan")], ("latest",), options)


def test_build_with_an_unknown_runtime_fails_before_building(tmp_path: Path, capsys) -> None:
    recipe = tmp_path / "pack.toml"
    recipe.write_text('name = "x"\nversion = "1"\nruntime = "2026.07"\ninstall = ["true"]\n')
    assert run_cli("build", str(recipe), "-o", str(tmp_path / "out"), "--runtime", "latest", "--runtime", "nope") == 2
    assert "runtime 'nope' has no facts file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_restore_refuses_a_lock_entry_whose_platform_is_not_its_manifests(tmp_path: Path) -> None:
    _, entry = build_variant(tmp_path, HERE, "here")
    write_lock(tmp_path / "prebake.lock", [dataclasses.replace(entry, platform=Platform(os=HERE.os, python=HERE.python))])
    with pytest.raises(UsageError, match="its lock entry says"):
        restore(tmp_path / "prebake.lock", root=tmp_path / "root", progress=False)
    assert not marker_path(tmp_path / "root", "app").exists()


def test_the_restore_warns_in_one_line_when_the_runtime_moved_past_the_pack(tmp_path: Path, caplog) -> None:
    folder, _ = build_variant(tmp_path, dataclasses.replace(HERE, glibc="2.0"), "older")
    with caplog.at_level(logging.WARNING, logger="prebake"):
        restore(folder, root=tmp_path / "root", progress=False)
    [line] = [r.getMessage() for r in caplog.records if "newer glibc" in r.getMessage()]
    assert line.startswith("pack app 1.0: this runtime has a newer glibc") and "\n" not in line


def test_inspect_and_lock_commands(tmp_path: Path, capsys) -> None:
    here, _ = build_variant(tmp_path, HERE, "here")
    old, _ = build_variant(tmp_path, OLD_PYTHON, "old")
    lock = tmp_path / "prebake.lock"
    assert run_cli("lock", str(here), str(old), "-o", str(lock)) == 0
    assert [p.platform for p in load(lock).packs] == [HERE, OLD_PYTHON]
    capsys.readouterr()
    assert run_cli("inspect", str(lock)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "app" and out[2].startswith(f"  -> {short(HERE)}")
