"""The loader: fetch -> sha256 -> zstd -> checked extraction, parts in parallel, marker last.

Each part is restored by one worker, a process (or, with workers="threads", a thread): its bytes
are hashed and decompressed as they arrive and the tar stream goes through extract.PartWriter,
which checks each header and writes the member, so download, verification, decompression and
extraction overlap. A dropped connection resumes at the byte it stopped at; a part whose size or
sha256 does not match has its files removed and is fetched again. Finished parts are recorded, so
a restore that was killed resumes where it stopped; the install marker (with the pack's digest)
is written only after every part and whiteout is done, and makes the next restore a no-op.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import importlib
import json
import logging
import multiprocessing
import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from ._fs import atomic_write
from .errors import IntegrityError, PlatformMismatch, PrebakeError, StoreError, TransientStoreError, UnsafePackError, UsageError
from .extract import Destination, PartWriter
from .manifest import MANIFEST_NAME, Manifest, Part, digest_of, loads
from .runtime import current_platform, mismatches
from .stores import Store, open_store

log = logging.getLogger(__name__)

STATE_DIR = "var/lib/prebake"
_BACKOFF = 0.5


@dataclass(frozen=True)
class RestoreOptions:
    root: Path = Path("/")
    jobs: int = 0
    force: bool = False
    allow_setuid: bool = False
    progress: bool | None = None
    apply_env: bool = True
    retries: int = 2
    workers: str = ""
    """Run parts in worker "processes" or "threads"; empty means $PREBAKE_WORKERS, else processes."""


@dataclass
class RestoreResult:
    name: str
    version: str
    digest: str
    location: str
    skipped: bool = False
    seconds: float = 0.0
    packed_bytes: int = 0
    bytes: int = 0
    members: int = 0
    phases: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        if self.skipped:
            return f"{self.name} {self.version} is already restored ({self.digest[:19]}); nothing to do"
        rate = self.packed_bytes / self.seconds / 2**20 if self.seconds else 0.0
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items())
        return (
            f"restored {self.name} {self.version}: {self.members:,} entries, "
            f"{self.packed_bytes / 2**20:.1f} MiB -> {self.bytes / 2**20:.1f} MiB in {self.seconds:.2f} s "
            f"({rate:.0f} MiB/s; stages overlap, summed over parts: {phases}; decompress includes sha256)"
        )


class Restored(list):
    """The results of one restore call; shows as its summary lines in a notebook."""

    def __repr__(self) -> str:
        return "\n".join(result.summary() for result in self)


@dataclass(frozen=True)
class PackSource:
    """A manifest fetched from a store and checked against the digest a lock pins, if any."""

    store: Store
    manifest: Manifest
    digest: str


class _CorruptPart(IntegrityError):
    """The part's bytes are not the ones the manifest names: worth fetching again."""


def default_jobs() -> int:
    """One part per core, at least two and at most four (on 2 cores, more workers measured slower)."""
    return max(2, min(4, os.cpu_count() or 2))


# ---------------------------------------------------------------- where packs come from


def fetch_manifest(store: Store, expected_digest: str | None = None) -> PackSource:
    data = store.read_bytes(MANIFEST_NAME)
    digest = digest_of(data)
    where = store.describe(MANIFEST_NAME)
    if expected_digest and digest != expected_digest:
        msg = f"{where} has digest {digest}, the lock pins {expected_digest}; the pack there changed: update the lock or fix the location"
        raise IntegrityError(msg)
    return PackSource(store, loads(data, where), digest)


def resolve(source: str | Path) -> list[tuple[str, list[str], str | None]]:
    """(pack label, locations to try in order, pinned digest) for a pack folder or URL, or a lock
    file (a path or an http(s) URL ending in .lock)."""
    text = str(source)
    if not (text.endswith(".lock") or (Path(text).is_file() and not text.endswith(".json"))):
        if text.endswith("/" + MANIFEST_NAME) or text == MANIFEST_NAME:
            text = text[: -len(MANIFEST_NAME)].rstrip("/") or "."
        return [(text, [text], None)]
    # Only a lock needs the lock module (and tomlkit): a pack restore starts sooner without it.
    from . import lock as lockfile

    if "://" in text:
        folder, name = text.rsplit("/", 1)
        with open_store(folder) as store:
            lock = lockfile.loads(store.read_bytes(name).decode(), text)
        return [(p.name, [_relative_to(folder, loc) for loc in p.locations], p.digest) for p in lock.packs]
    lock_path = Path(text)
    lock = lockfile.load(lock_path)
    base = str(lock_path.resolve().parent)
    return [(p.name, [_relative_to(base, loc) for loc in p.locations], p.digest) for p in lock.packs]


def _relative_to(base: str, location: str) -> str:
    """A lock's location; relative ones are relative to the lock's own folder or URL."""
    if "://" in location or location.startswith("/"):
        return location
    return f"{base.rstrip('/')}/{location}"


# ---------------------------------------------------------------- one part


def read_part(store: Store, part: Part, retries: int) -> Iterator[bytes]:
    """The part's bytes; a transfer cut short resumes at the byte it reached."""
    offset, failures = 0, 0
    while True:
        try:
            for chunk in store.open_read(part.name, offset, part.size, part.store_ids):
                offset += len(chunk)
                yield chunk
            return
        except StoreError as e:
            if not isinstance(e, TransientStoreError) or failures >= retries:
                raise
            failures += 1
            log.warning("%s: %s; resuming at byte %d (retry %d of %d)", part.name, e, offset, failures, retries)
            time.sleep(_BACKOFF * failures)


class _TimedSink:
    """Where zstd writes decompressed blocks: the part's writer, with the time spent in it."""

    def __init__(self, writer: PartWriter) -> None:
        self.writer = writer
        self.seconds = 0.0

    def write(self, data: bytes) -> int:
        started = time.perf_counter()
        self.writer.feed(data)
        self.seconds += time.perf_counter() - started
        return len(data)


class _PartRun:
    """Fetches, verifies and extracts one part; the timings it spent in each phase."""

    def __init__(self, store: Store, part: Part, destination: Destination, retries: int, on_bytes: Callable[[int], None]):
        self.store, self.part, self.destination = store, part, destination
        self.retries, self.on_bytes = retries, on_bytes
        self.phases = {"download": 0.0, "decompress": 0.0, "extract": 0.0}

    def run(self) -> None:
        for attempt in range(self.retries + 1):
            writer = PartWriter(self.destination, self.part.name)
            try:
                self._once(writer)
                return
            except _CorruptPart as e:
                writer.abort()
                if attempt == self.retries:
                    msg = f"{e} (fetched {attempt + 1} times from {self.store.describe(self.part.name)}); the copy there is damaged: push the pack again or use another location"
                    raise IntegrityError(msg) from None
                log.warning("%s; its files were removed, fetching it again", e)
            except BaseException:
                writer.abort()
                raise

    def _once(self, writer: PartWriter) -> None:
        part, clock = self.part, time.perf_counter
        hasher = hashlib.sha256()
        sink = _TimedSink(writer)
        # stream_writer hands each decompressed block straight to the writer: no joined copies.
        decompressor = zstandard.ZstdDecompressor().stream_writer(sink, write_return_read=True)
        received = 0
        stream = read_part(self.store, part, self.retries)
        try:
            while True:
                t0 = clock()
                chunk = next(stream, None)
                t1 = clock()
                self.phases["download"] += t1 - t0
                if chunk is None:
                    break
                received += len(chunk)
                self.on_bytes(len(chunk))
                if received > part.size:
                    raise _CorruptPart(f"{part.name} is larger than the {part.size} bytes the manifest says")
                hasher.update(chunk)
                try:
                    decompressor.write(chunk)
                except zstandard.ZstdError as e:
                    raise IntegrityError(f"{part.name}: zstd cannot decompress it ({e})") from e
                self.phases["decompress"] += clock() - t1
        except IntegrityError as e:
            if isinstance(e, _CorruptPart):
                raise
            for chunk in stream:
                received += len(chunk)
                hasher.update(chunk)
            if received != part.size or hasher.hexdigest() != part.sha256:
                raise _CorruptPart(f"{part.name} is corrupt ({received} of {part.size} bytes, sha256 mismatch)") from e
            raise
        finally:
            self.phases["decompress"] -= sink.seconds
            self.phases["extract"] += sink.seconds
        if received != part.size:
            raise _CorruptPart(f"{part.name} is truncated: {received} of {part.size} bytes")
        if hasher.hexdigest() != part.sha256:
            raise _CorruptPart(f"{part.name} is corrupt: its sha256 is {hasher.hexdigest()}, the manifest says {part.sha256}")
        t3 = clock()
        writer.finish()
        self.phases["extract"] += clock() - t3


# ---------------------------------------------------------------- one pack


def _state(root: Path) -> Path:
    override = os.environ.get("PREBAKE_STATE_DIR")
    return Path(override) if override else root / STATE_DIR


def marker_path(root: Path, name: str) -> Path:
    return _state(root) / "installed" / f"{name}.json"


def installed_digest(root: Path, name: str) -> str | None:
    try:
        return json.loads(marker_path(root, name).read_text()).get("digest")
    except (OSError, ValueError):
        return None


def _rooted(root: Path, path: str) -> str:
    return path if root == Path("/") else str(root) + path


def apply_env(manifest: Manifest, root: Path) -> None:
    """Make the pack usable in this process without a restart: env, sys.path, import caches."""
    for var, paths in manifest.env.prepend.items():
        rooted = [_rooted(root, p) for p in paths]
        current = [p for p in os.environ.get(var, "").split(os.pathsep) if p]
        os.environ[var] = os.pathsep.join(dict.fromkeys(rooted + current))
        if var == "PYTHONPATH":
            for entry in reversed(rooted):
                if entry not in sys.path:
                    sys.path.insert(0, entry)
    for var, value in manifest.env.set.items():
        os.environ[var] = value
    for entry, finder in list(sys.path_importer_cache.items()):
        if finder is None:
            del sys.path_importer_cache[entry]
    importlib.invalidate_caches()


def check_platform(manifest: Manifest, force: bool) -> None:
    if manifest.platform is None:
        return
    problems = mismatches(manifest.platform, current_platform(with_cuda=manifest.platform.cuda is not None))
    if not problems:
        return
    text = f"pack {manifest.name} {manifest.version} was built for {'; '.join(problems)}: rebuild it for this runtime with `prebake build` or pass --force"
    if force:
        log.warning("%s (continuing because of --force)", text)
        return
    raise PlatformMismatch(text)


def _progress(total: int, label: str, enabled: bool | None):
    if enabled is False or total == 0:
        return None
    from tqdm.auto import tqdm

    class Bar(tqdm):
        # No monitor thread: the bar is updated often anyway, and a single-threaded process may
        # then fork its workers (see _worker_context).
        monitor_interval = 0

    return Bar(total=total, unit="B", unit_scale=True, desc=label, disable=None if enabled is None else False, leave=False)


@dataclass(frozen=True)
class _PartJob:
    """One part for a worker process: everything it needs to restore the part on its own."""

    location: str
    part: Part
    root: Path
    prefixes: tuple[str, ...]
    symlinks: tuple[str, ...]
    allow_setuid: bool
    retries: int
    parallel_ranges: int
    environ: dict[str, str]


@dataclass(frozen=True)
class _PartDone:
    name: str
    phases: dict[str, float]
    created: set[str]
    dir_members: list[tuple[str, int, int]]


_worker_progress = None


def _worker_init(progress) -> None:
    global _worker_progress
    _worker_progress = progress


def _report(n: int) -> None:
    if _worker_progress is not None:
        _worker_progress.put(n)


def _run_job(job: _PartJob) -> _PartDone:
    """In a worker process: fetch, verify and extract one part."""
    # Workers fork from a server started earlier: take the caller's environment as it is now
    # (credentials, proxies, PREBAKE_* settings set since then).
    os.environ.clear()
    os.environ.update(job.environ)
    with open_store(job.location) as store:
        store.parallel_ranges = job.parallel_ranges
        destination = Destination(job.root, job.prefixes, job.symlinks, job.allow_setuid)
        run = _PartRun(store, job.part, destination, job.retries, _report)
        run.run()
    return _PartDone(job.part.name, run.phases, destination.created, destination.dir_members)


def _single_threaded() -> bool:
    """Whether this process has no other thread, native ones included (Linux's /proc knows)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _worker_context(preload: list[str]):
    """How worker processes start here, or None where they must not (the parts then use threads).

    A single-threaded process (the `prebake` command, a plain script) forks: no other thread can
    hold a lock the child would inherit, the workers have every module imported already, and they
    start in a millisecond (a forkserver costs a fresh interpreter and its imports first, about
    0.15-0.25 s on 2 cores). A process with threads (a notebook kernel) gets a forkserver with
    `preload` imported once. A forkserver worker imports the caller's main module by path, which
    is safe where there is none (a notebook, `python -c`), under `python -m` and for the `prebake`
    command, but would run a plain script that calls `restore` at top level again: None.
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and _single_threaded():
        return multiprocessing.get_context("fork")
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is not None and getattr(main, "__spec__", None) is None and Path(path).name != "prebake":
        return None
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(preload)
        return context
    return multiprocessing.get_context("spawn")


def _in_processes(context, jobs: list[_PartJob], width: int, on_bytes: Callable[[int], None],
                  on_done: Callable[[_PartDone], None]) -> None:
    """Each part in a worker process: the header checks and file calls of one part do not wait
    for another part's GIL (measured 1.2-1.45 s against 1.7-1.9 s with threads on 2 cores)."""
    progress = context.Queue()
    pool = ProcessPoolExecutor(max_workers=width, mp_context=context, initializer=_worker_init, initargs=(progress,))
    try:
        pending = {pool.submit(_run_job, job) for job in jobs}
        while pending:
            finished, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
            _drain(progress, on_bytes)
            for future in finished:
                on_done(future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _drain(progress, on_bytes)
        progress.close()
        progress.join_thread()


def _drain(progress, on_bytes: Callable[[int], None]) -> None:
    while True:
        try:
            on_bytes(progress.get_nowait())
        except queue.Empty:
            return


def _in_threads(runs: list[_PartRun], width: int, on_done: Callable[[_PartRun], None]) -> None:
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="prebake-part") as pool:
        by_future = {pool.submit(run.run): run for run in runs}
        try:
            for future in as_completed(by_future):
                future.result()
                on_done(by_future[future])
        finally:
            for future in by_future:
                future.cancel()


def restore_pack(source: PackSource, location: str, options: RestoreOptions) -> RestoreResult:
    manifest, root = source.manifest, options.root
    result = RestoreResult(manifest.name, manifest.version, source.digest, location)
    if installed_digest(root, manifest.name) == source.digest:
        result.skipped = True
        if options.apply_env:
            apply_env(manifest, root)
        return result
    check_platform(manifest, options.force)
    started = time.perf_counter()
    progress_dir = _state(root) / "partial" / source.digest.split(":")[1][:16]
    progress_dir.mkdir(parents=True, exist_ok=True)
    todo = [p for p in manifest.parts if not (progress_dir / f"{p.name}.done").exists()]
    destination = Destination(root, manifest.prefixes, manifest.symlinks, options.allow_setuid)
    bar = _progress(sum(p.size for p in todo), manifest.name, options.progress)
    bar_lock = threading.Lock()

    def on_bytes(n: int) -> None:
        if bar is not None:
            with bar_lock:
                bar.update(n)

    jobs = options.jobs or default_jobs()
    ranges = max(1, jobs // max(1, len(todo)))
    # Largest first: the long parts start early and the short ones fill the gaps.
    todo.sort(key=lambda part: part.size, reverse=True)
    phases: dict[str, float] = {}

    def done(name: str, part_phases: dict[str, float]) -> None:
        (progress_dir / f"{name}.done").touch()
        for phase, seconds in part_phases.items():
            phases[phase] = phases.get(phase, 0.0) + seconds

    context = None
    if options.workers == "processes" and jobs > 1 and len(todo) > 1 and source.store.reopenable:
        context = _worker_context(["builder.restore", type(source.store).__module__])
    try:
        if context is not None:

            def absorbed(outcome: _PartDone) -> None:
                destination.absorb(outcome.created, outcome.dir_members)
                done(outcome.name, outcome.phases)

            where = location if "://" in location else str(Path(location).absolute())
            part_jobs = [
                _PartJob(where, part, root.absolute(), manifest.prefixes, manifest.symlinks, options.allow_setuid,
                         options.retries, ranges, dict(os.environ))
                for part in todo
            ]
            _in_processes(context, part_jobs, jobs, on_bytes, absorbed)
        else:
            source.store.parallel_ranges = ranges
            runs = [_PartRun(source.store, part, destination, options.retries, on_bytes) for part in todo]
            _in_threads(runs, jobs, lambda run: done(run.part.name, run.phases))
    finally:
        if bar is not None:
            bar.close()
    destination.finish()
    for whiteout in manifest.whiteouts:
        _remove(Path(_rooted(root, whiteout)))
    atomic_write(
        marker_path(root, manifest.name),
        json.dumps({"name": manifest.name, "version": manifest.version, "digest": source.digest, "location": location}).encode(),
    )
    shutil.rmtree(progress_dir, ignore_errors=True)
    if options.apply_env:
        apply_env(manifest, root)
    result.seconds = time.perf_counter() - started
    result.packed_bytes = manifest.packed_size
    result.bytes = sum(p.bytes for p in manifest.parts)
    result.members = sum(p.members for p in manifest.parts)
    result.phases = phases
    return result


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


# ---------------------------------------------------------------- the one call


def restore(source: str | Path, options: RestoreOptions | None = None, **overrides) -> Restored:
    """Restore a pack folder, a manifest URL or every pack of a lock file; returns one result per pack.

    Locations of a locked pack are tried in order; parts finished from one location are kept when
    the next is tried.
    """
    options = options or RestoreOptions()
    if overrides:
        options = dataclasses.replace(options, **overrides)
    workers = options.workers or os.environ.get("PREBAKE_WORKERS", "processes")
    if workers not in ("processes", "threads"):
        msg = f"workers {workers!r} must be 'processes' or 'threads' (check PREBAKE_WORKERS)"
        raise UsageError(msg)
    options = dataclasses.replace(options, workers=workers)
    try:
        return _restore_all(source, options)
    except OSError as e:
        where = e.filename or options.root
        if isinstance(e, PermissionError):
            hint = "run as root or pass --root DIR"
        elif e.errno == errno.ENOSPC:
            hint = "free some space or restore to another --root"
        else:
            hint = "check the path or pass another --root"
        msg = f"cannot write {where}: {e.strerror}; {hint}"
        raise PrebakeError(msg) from e


def _restore_all(source: str | Path, options: RestoreOptions) -> Restored:
    options.root.mkdir(parents=True, exist_ok=True)
    results = Restored()
    for label, locations, digest in resolve(source):
        failures: list[str] = []
        for location in locations:
            try:
                with open_store(location) as store:
                    pack = fetch_manifest(store, digest)
                    results.append(restore_pack(pack, location, options))
                break
            except (UnsafePackError, PlatformMismatch, UsageError):
                raise
            except (StoreError, IntegrityError) as e:
                if len(locations) == 1:
                    raise
                failures.append(f"{location}: {e}")
                log.warning("%s; trying the next location", e)
        else:
            msg = f"cannot restore {label}: every location failed: " + " | ".join(failures)
            raise StoreError(msg)
    return results
