"""The loader: fetch -> sha256 -> zstd -> checked extraction, parts in parallel, marker last.

Each part is restored by one worker, a process (or, with workers="threads", a thread): its bytes
are hashed and decompressed as they arrive and the tar stream goes through extract.PartWriter,
which checks each header and writes the member through the gate (builder/gate.py), so download,
verification, decompression and extraction overlap. A dropped connection resumes at the byte it
stopped at; a part whose size or sha256 does not match has its files removed and is fetched again.

What holds against hostile packs, servers and races:
- one restore of a root at a time (an flock in the state folder, released by the kernel when
  its holder dies, so a stale lock cannot exist); workers die with their parent (PDEATHSIG);
- unverified bytes are journaled before they are written, and a part that was not verified is
  undone (by its own abort, or by the next run after a kill) instead of being staged: staging
  would cost a rename per file on the hot path, and a prefix such as dist-packages holds other
  packages' files, so it cannot be swapped whole;
- the manifest is validated whole, and its environment against a deny list, before anything is
  written; every byte count is bounded by it; once one part fails no other part starts or goes on;
- the install marker (the pack's digest, a location without credentials, the folders it made)
  is written only after every part, the folder metadata and the whiteouts are done, and makes the
  next restore a no-op.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import importlib
import json
import logging
import math
import os
import queue
import shutil
import signal
import site
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import settings
from ._fs import atomic_write
from .errors import (
    ConflictError,
    IntegrityError,
    PlatformMismatch,
    PrebakeError,
    StoreError,
    TransientStoreError,
    UnsafePackError,
    UsageError,
    api,
)
from .extract import Journal, PartWriter, finish_folders, read_journal, undo
from .gate import Gate, rooted
from .locate import PackSource, Wanted, checked, fetch_manifest, resolve
from .manifest import Manifest, Part, env_needs_leave, is_name
from .progress import Progress, execution_count, size_text
from .relocate import Relocation, check_free, moved
from .runtime import current_platform, drift, mismatches
from .stores import Store, open_store, redact
from .stores.local import LocalStore

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
    """Show a bar and the summary lines: True, False (neither), None (the bar when someone watches)."""
    apply_env: bool = True
    retries: int = 2
    workers: str = ""
    """Run parts in worker "processes" or "threads"; empty means $PREBAKE_WORKERS, else processes."""
    wait: bool = True
    """When another restore holds the root: wait for it, or (False) fail at once."""
    allow_env: tuple[str, ...] = ()
    """Variables a pack may set although they need leave (manifest.env_needs_leave)."""
    low_speed: tuple[int, float] = (1024, 60.0)
    """A transfer slower than this many bytes/s for this many seconds is dropped and resumed."""
    connections: int = 0
    """Requests in flight at once over a network store (parts and their ranges); 0: $PREBAKE_CONNECTIONS, else 8."""
    prefix: str | None = None
    """Restore a conda environment pack at this folder instead of the one it was packed for."""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "root", Path(os.fspath(self.root)))
        except TypeError:
            msg = f"root must be a path (str or os.PathLike), not {type(self.root).__name__}"
            raise UsageError(msg) from None
        if isinstance(self.allow_env, str) or not all(isinstance(v, str) for v in self.allow_env):
            msg = f"allow_env must be a list of variable names, not {self.allow_env!r}"
            raise UsageError(msg)
        object.__setattr__(self, "allow_env", tuple(self.allow_env))


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
    files: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds per stage, summed over parts (stages overlap): what -v logs."""

    def summary(self) -> str:
        if self.skipped:
            return f"{self.name} {self.version} is already restored; nothing to do"
        took = f"{self.seconds:.1f} s" if self.seconds >= 1 else f"{self.seconds * 1000:.0f} ms"
        rate = f" ({size_text(self.bytes / self.seconds)}/s)" if self.seconds >= 0.05 else ""
        return f"restored {self.name} {self.version}: {self.files:,} files, {size_text(self.bytes)} in {took}{rate}"


class Restored(list):
    """The results of one restore call. Their summaries were shown as the restore ended (unless
    progress=False), so a notebook does not show them twice when the call is a cell's last line;
    shown again in a later cell, they print."""

    shown = False
    shown_in: int | None = None  # the notebook cell execution that showed them

    def __repr__(self) -> str:
        return "\n".join(result.summary() for result in self)

    def _ipython_display_(self) -> None:
        if not (self.shown and self.shown_in == execution_count()):
            print(repr(self))


class _CorruptPart(IntegrityError):
    """The part's bytes are not the ones the manifest names: worth fetching again."""


class _Cancelled(Exception):
    """Another part failed: this one stops, undoes what it wrote and reports nothing."""


def default_jobs(remote: bool = False) -> int:
    """One part per core, at least two and at most four (on 2 cores, more workers measured slower
    from a folder); twice that from a network store, where a part's download waits on the link
    while another part's files are written: on a link capped at 25 MB/s per connection and 100 MB/s
    in all, a 214 MB pack took 2.7 s with 4 workers and 3.1-3.2 s with 2 (unthrottled over
    127.0.0.1 the two were within 0.05 s)."""
    jobs = max(2, min(4, os.cpu_count() or 2))
    return 2 * jobs if remote else jobs


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


@dataclass(frozen=True)
class _Where:
    """Where one pack's parts land: what every part's gate and writer need."""

    root: Path
    prefixes: tuple[str, ...]
    symlinks: tuple[str, ...]
    allow_setuid: bool
    state: Path
    progress_dir: Path
    relocation: Relocation | None = None

    def gate(self) -> Gate:
        return Gate(self.root, self.prefixes, self.symlinks, self.state)


class _PartRun:
    """Fetches, verifies and extracts one part; the timings it spent in each phase."""

    def __init__(self, store: Store, part: Part, where: _Where, retries: int, on_bytes: Callable[[int], None],
                 cancel: threading.Event):
        self.store, self.part, self.where = store, part, where
        self.retries, self.on_bytes, self.cancel = retries, on_bytes, cancel
        self.phases = {"download": 0.0, "decompress": 0.0, "extract": 0.0}

    def run(self) -> None:
        for attempt in range(self.retries + 1):
            if self.cancel.is_set():
                raise _Cancelled
            journal = Journal(self.where.progress_dir / f"{self.part.name}.journal")
            with self.where.gate() as gate:
                gate.on_created = lambda path, journal=journal: journal.record("d", path)
                writer = PartWriter(gate, self.part, journal, self.where.allow_setuid, self.where.relocation)
                try:
                    self._once(writer)
                    return
                except _CorruptPart as e:
                    writer.abort()
                    if attempt == self.retries:
                        msg = f"{e} (fetched {attempt + 1} times from {self.store.describe(self.part.name)}); the copy there is damaged: delete that file there, then push the pack again (a push keeps parts already there), or use another location"
                        raise IntegrityError(msg) from None
                    log.warning("%s; its files were removed, fetching it again", e)
                except BaseException:
                    writer.abort()
                    raise

    def _once(self, writer: PartWriter) -> None:
        import zstandard  # (start-up: a restore with nothing to do never loads it)

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
                if self.cancel.is_set():
                    raise _Cancelled
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
            # Damage in transit is worth another fetch, a well-formed hostile part is not: the
            # rest of the part (never more than its size) tells which.
            for chunk in stream:
                received += len(chunk)
                if received > part.size or self.cancel.is_set():
                    break
                hasher.update(chunk)
            if received != part.size or hasher.hexdigest() != part.sha256:
                raise _CorruptPart(f"{part.name} is corrupt ({received} of {part.size} bytes, sha256 mismatch)") from e
            raise
        finally:
            stream.close()
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
    override = settings.STATE_DIR.get()
    return Path(override) if override else root / STATE_DIR


def marker_path(root: Path, name: str) -> Path:
    return _state(root) / "installed" / f"{name}.json"


def kept_manifest_path(root: Path, name: str) -> Path:
    """The manifest of the installed pack `name`, kept beside its marker: a lock's restore of what
    is already here needs no network (re-running a notebook's restore cell, offline included)."""
    return _state(root) / "installed" / f"{name}.manifest"


def _installed_as(marker: dict, digest: str, manifest: Manifest) -> bool:
    """Whether the marker says this very pack is restored here (at its conda prefix, if any)."""
    at = manifest.conda.prefix if manifest.conda is not None else None
    return marker.get("digest") == digest and marker.get("prefix") == at


def _restored_here(wanted: Wanted, options: RestoreOptions) -> PackSource | None:
    """The pack a lock pins, when it is the one restored here: its kept manifest, checked against
    the lock like a fetched one. None when anything differs (the restore then fetches it)."""
    if wanted.digest is None or options.prefix or not is_name(wanted.label):  # (a lock's names are pack names)
        return None
    marker = installed(options.root, wanted.label)
    try:
        data = kept_manifest_path(options.root, wanted.label).read_bytes()
        manifest, digest = checked(data, "the kept manifest", wanted.digest, wanted.platform)
    except (OSError, PrebakeError):
        return None
    here = manifest.name == wanted.label and _installed_as(marker, digest, manifest)
    return PackSource(None, manifest, digest, data) if here else None


def installed(root: Path, name: str) -> dict:
    """The install marker of pack `name` under `root`, or {} when there is none."""
    try:
        marker = json.loads(marker_path(root, name).read_text())
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def installed_digest(root: Path, name: str) -> str | None:
    return installed(root, name).get("digest")


def apply_env(manifest: Manifest, root: Path) -> None:
    """Make the pack usable in this process without a restart: env, sys.path, import caches. A conda
    environment's packages join sys.path only when its Python is the kernel's own."""
    prepend = dict(manifest.env.prepend)
    conda, site_dir = manifest.conda, None
    if conda is not None and conda.site_packages:
        kernel = f"{sys.version_info.major}.{sys.version_info.minor}"
        if conda.python == kernel:
            site_dir = f"{conda.prefix}/{conda.site_packages}"
            prepend["PYTHONPATH"] = (site_dir, *prepend.get("PYTHONPATH", ()))
        else:
            log.warning("conda environment %s has Python %s and this kernel runs %s, so its packages are not importable "
                        "here; run them with its own python: !%s/bin/python script.py", manifest.name, conda.python or "none",
                        kernel, rooted(root, conda.prefix))
    for var, paths in prepend.items():
        on_disk = [rooted(root, p) for p in paths]
        current = [p for p in os.environ.get(var, "").split(os.pathsep) if p]
        os.environ[var] = os.pathsep.join(dict.fromkeys(on_disk + current))
        if var == "PYTHONPATH":
            for entry in reversed(on_disk):
                if entry not in sys.path:
                    sys.path.insert(0, entry)
    if site_dir is not None:  # the environment's .pth files, as its own python reads them (the folder stays first)
        site.addsitedir(rooted(root, site_dir))
    for var, value in manifest.env.set.items():
        os.environ[var] = value
    for entry, finder in list(sys.path_importer_cache.items()):
        if finder is None:
            del sys.path_importer_cache[entry]
    importlib.invalidate_caches()


def check_env(manifest: Manifest, allowed: set[str]) -> None:
    """Refuse a pack that sets a variable which runs code or redirects traffic in every process
    started from here (manifest.env_needs_leave), unless the lock or the user allows it."""
    touched = [(var, True) for var in manifest.env.prepend] + [(var, False) for var in manifest.env.set]
    for var, prepend in touched:
        if var not in allowed and env_needs_leave(var, prepend):
            how = "prepends to" if prepend else "sets"
            msg = (f"pack {manifest.name} {manifest.version} {how} {var}, which a pack may not do on its own (it could run "
                   f"code or redirect traffic in every process); if you trust the pack, allow it with --allow-env {var} "
                   "(or allow_env in the lock)")
            raise UsageError(msg)


def check_platform(manifest: Manifest, force: bool) -> None:
    if manifest.platform is None:
        return
    here = current_platform(with_cuda=manifest.platform.cuda is not None)
    problems = mismatches(manifest.platform, here)
    if not problems:
        if moved_on := drift(manifest.platform, here):
            log.warning("pack %s %s: %s", manifest.name, manifest.version, moved_on)
        return
    from .variants import build_command  # only when it does not fit: it reads the runtimes of images/

    text = (f"pack {manifest.name} {manifest.version} was built for {'; '.join(problems)}: build it for this runtime "
            f"with `{build_command(manifest.name, here)}` or pass --force")
    if force:
        log.warning("%s (continuing because of --force)", text)
        return
    raise PlatformMismatch(text)


@dataclass(frozen=True)
class _PartJob:
    """One part for a worker process: everything it needs to restore the part on its own."""

    location: str
    part: Part
    where: _Where
    retries: int
    parallel_ranges: int
    low_speed: tuple[int, float]
    environ: dict[str, str]


@dataclass(frozen=True)
class _PartDone:
    name: str
    phases: dict[str, float]


_worker_progress = None
_worker_cancel = None


def _worker_init(progress, cancel, parent: int | None) -> None:
    """Set up a worker process: it reports progress, stops when told, and dies with its parent."""
    global _worker_progress, _worker_cancel
    _worker_progress, _worker_cancel = progress, cancel
    _die_with_parent(parent)


def _die_with_parent(parent: int | None) -> None:
    """Ask Linux to kill this process when its parent dies (PR_SET_PDEATHSIG), so no orphan goes on
    writing after a kill -9 of the restore; exit now if the parent is already gone."""
    import ctypes

    before = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != before or (parent is not None and before != parent):
        os._exit(1)


def _report(n: int) -> None:
    if _worker_progress is not None:
        _worker_progress.put(n)


def _run_job(job: _PartJob) -> _PartDone:
    """In a worker process: fetch, verify and extract one part."""
    assert _worker_cancel is not None
    if _worker_cancel.is_set():
        raise _Cancelled
    # Workers fork from a server started earlier: take the caller's environment as it is now
    # (credentials, proxies, PREBAKE_* settings set since then).
    os.environ.clear()
    os.environ.update(job.environ)
    with open_store(job.location) as store:
        store.parallel_ranges = job.parallel_ranges
        store.low_speed = job.low_speed
        run = _PartRun(store, job.part, job.where, job.retries, _report, _worker_cancel)
        run.run()
    return _PartDone(job.part.name, run.phases)


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
    import multiprocessing  # (start-up: a restore with nothing to do, or one part, never loads it)

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
    for another part's GIL (measured 1.2-1.45 s against 1.7-1.9 s with threads on 2 cores).
    The first failure stops every other part (queued ones do not start)."""
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    progress, cancel = context.Queue(), context.Event()
    parent = os.getpid() if context.get_start_method() == "fork" else None
    pool = ProcessPoolExecutor(max_workers=width, mp_context=context, initializer=_worker_init,
                               initargs=(progress, cancel, parent))
    try:
        pending = {pool.submit(_run_job, job) for job in jobs}
        while pending:
            finished, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
            _drain(progress, on_bytes)
            failures = [f.exception() for f in finished if f.exception() is not None]
            if failures:  # the part that failed first, not one it cancelled
                raise next((e for e in failures if not isinstance(e, _Cancelled)), failures[0])
            for future in finished:
                on_done(future.result())
    finally:
        cancel.set()
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


def _in_threads(runs: list[_PartRun], width: int, cancel: threading.Event, on_done: Callable[[_PartRun], None]) -> None:
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="prebake-part") as pool:
        by_future = {pool.submit(run.run): run for run in runs}
        try:
            for future in as_completed(by_future):
                future.result()
                on_done(by_future[future])
        finally:
            cancel.set()
            for future in by_future:
                future.cancel()


@contextlib.contextmanager
def _root_lock(root: Path, wait: bool) -> Iterator[None]:
    """Hold the root for one restore at a time. flock is released by the kernel when its holder
    dies, so a lock left by a killed restore is simply taken over."""
    path = _state(root) / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            busy = f"another prebake restore (pid {holder}) is restoring into {root}"
            if not wait:
                msg = f"{busy}; run again when it is done, or drop --no-wait to wait for it"
                raise ConflictError(msg) from None
            log.warning("%s; waiting for it to finish", busy)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _undo_record(gate: Gate, record: Path) -> list[str]:
    """Undo what a part's journal or .done record says it wrote; the folders that stay."""
    written, made, _ = read_journal(record)
    return undo(gate, written, made)


def _recover(root: Path, state: Path, keep: Path) -> None:
    """Undo what restores that were killed left unverified (their parts' journals); a folder whose
    pack has no verified part is forgotten, the others keep their parts so their restores resume
    (after _drop_changed)."""
    partial = state / "partial"
    folders = sorted(partial.iterdir()) if partial.is_dir() else []
    for folder in folders:
        journals = sorted(folder.glob("*.journal"))
        if journals:
            spec = json.loads((folder / "gate.json").read_text())
            with Gate(root, tuple(spec["prefixes"]), tuple(spec["symlinks"]), state) as gate:
                for journal in journals:
                    kept = _undo_record(gate, journal)
                    if folder == keep and kept:
                        # Folders a verified part also uses stay, and are still ours to finish.
                        recorder = Journal(folder / "undone.folders", append=True)
                        for path in kept:
                            recorder.record("d", path)
                        recorder.close()
                    journal.unlink()
        if folder != keep and not any(folder.glob("*.done")):
            # Another pack's folder with verified parts stays: its records are all that can
            # resume (or, if that pack turns out unsafe, undo) those files.
            shutil.rmtree(folder)


def _drop_changed(gate: Gate, progress_dir: Path) -> None:
    """Forget the verified parts whose files changed since they were verified, so that this run
    restores them again: another pack restored in between may have written over them (a newer
    release of the same pack does), and a record that vouched for bytes no longer there let a
    rolled-back lock skip its parts. A part's record is closed after its last file is written, so
    a file still its own was changed (ctime, which nothing can set back) no later than the
    record; one replaced or removed since is missing or newer."""
    for record in progress_dir.glob("*.done"):
        recorded = record.stat().st_mtime_ns
        for path in read_journal(record)[0]:
            try:
                folder, leaf = gate.parent(path, create=False)
                changed = os.stat(leaf, dir_fd=folder, follow_symlinks=False).st_ctime_ns > recorded
            except (OSError, PrebakeError):
                changed = True
            if changed:
                log.info("%s: files it wrote changed since it was verified; restoring it again", record.stem)
                record.unlink()
                break


class _Finished:
    """What the verified parts recorded, taken in as each part finishes (not all at the end, where
    it would add to the restore's time): the folders this restore made, the folder metadata, and
    every name, to refuse a pack whose parts share one (parts extract in parallel: which would win
    is chance)."""

    def __init__(self, progress_dir: Path) -> None:
        self.progress_dir = progress_dir
        self.made: set[str] = set()
        self.folders: list[tuple[str, int, int]] = []
        self._seen: set[str] = set()
        undone = progress_dir / "undone.folders"
        if undone.exists():
            self.made.update(read_journal(undone)[1])

    def add(self, part: str) -> None:
        written, made, folders = read_journal(self.progress_dir / f"{part}.done")
        names = {*written, *(f[0] for f in folders)}
        again = self._seen & names
        if again:
            msg = f"{min(again)} is in {part} and in another part; the pack is unsafe, do not restore it"
            raise UnsafePackError(msg)
        self._seen |= names
        self.made.update(made)
        self.folders += folders


def _ranges_for(todo: list[Part], jobs: int, connections: int) -> Callable[[Part | None], int]:
    """How many ranges a part is fetched as. Links that cap each connection (Drive, CDNs) are
    filled by several streams at once, about `connections` requests in all over the parts in
    flight: each part its even share, or more when it is a large part of the first parts the
    restore starts (taken heaviest first), in proportion to its packed size among them. With an
    even share only, the largest part (a model's weights) was still downloading alone at the end
    over its share of the connections. At most 2 x `connections` requests run at once (every part
    in flight its even share, plus the shares by size, which sum to `connections`). None: the
    even share."""
    width = min(jobs, len(todo))
    even = connections / max(1, width)
    first = sorted(todo, key=lambda part: part.weight, reverse=True)[:width]
    first_bytes = sum(part.size for part in first)

    def ranges(part: Part | None) -> int:
        by_size = connections * part.size / first_bytes if part is not None and first_bytes else 0
        return max(1, min(connections, math.ceil(max(even, by_size))))

    return ranges


def _undo_all(progress_dir: Path, manifest: Manifest, where: _Where) -> None:
    """Remove every part's files (the pack turned out unsafe as a whole)."""
    with where.gate() as gate:
        for part in manifest.parts:
            for suffix in (".done", ".journal"):
                record = progress_dir / f"{part.name}{suffix}"
                if record.exists():
                    _undo_record(gate, record)
    shutil.rmtree(progress_dir, ignore_errors=True)


def restore_pack(source: PackSource, location: str, options: RestoreOptions, allow_env: tuple[str, ...] = (),
                 progress: Progress | None = None, prefix: str | None = None) -> RestoreResult:
    """Restore one pack; `prefix` moves a conda environment pack there."""
    root = options.root
    manifest = moved(source.manifest, prefix) if prefix else source.manifest
    check_env(manifest, {*options.allow_env, *allow_env})
    result = RestoreResult(manifest.name, manifest.version, source.digest, redact(location))
    marker = installed(root, manifest.name)
    at = manifest.conda.prefix if manifest.conda is not None else None
    if _installed_as(marker, source.digest, manifest):
        result.skipped = True
        if options.apply_env:
            apply_env(manifest, root)
        return result
    check_platform(manifest, options.force)
    assert source.store is not None, "only a manifest restored here comes without its store"
    started = time.perf_counter()
    state = _state(root)
    # A conda pack's parts are kept apart per prefix: parts verified at one prefix are not done at another.
    folder = source.digest.split(":")[1][:16] + (f"-{hashlib.sha256(at.encode()).hexdigest()[:8]}" if at else "")
    progress_dir = state / "partial" / folder
    check_free(root, manifest, ours=marker.get("prefix") == at or progress_dir.is_dir())
    where = _Where(root.absolute(), manifest.prefixes, manifest.symlinks, options.allow_setuid, state, progress_dir,
                   Relocation.of(source.manifest.conda, at or ""))
    with where.gate() as gate:
        for whiteout in manifest.whiteouts:  # a whiteout the gate refuses fails the restore before any write
            gate.check_removal(whiteout)
    _recover(root, state, keep=progress_dir)
    progress_dir.mkdir(parents=True, exist_ok=True)
    with where.gate() as gate:
        _drop_changed(gate, progress_dir)
    atomic_write(progress_dir / "gate.json", json.dumps({"prefixes": manifest.prefixes, "symlinks": manifest.symlinks}).encode())
    todo = [p for p in manifest.parts if not (progress_dir / f"{p.name}.done").exists()]
    finished = _Finished(progress_dir)
    if progress is not None:
        progress.expect(sum(p.size for p in todo), f"restoring {manifest.name}")
    on_bytes = progress.update if progress is not None else _ignore

    jobs = options.jobs or default_jobs(remote=not isinstance(source.store, LocalStore))
    ranges = _ranges_for(todo, jobs, options.connections)
    # Heaviest first: the long parts start early and the short ones fill the gaps. Weighed by what
    # they cost here (bytes written, files made), not by their packed size: a 100 MB blob that
    # packs to 64 KB is among the longest parts to restore.
    todo.sort(key=lambda part: part.weight, reverse=True)
    phases: dict[str, float] = {}

    def done(name: str, part_phases: dict[str, float]) -> None:
        os.replace(progress_dir / f"{name}.journal", progress_dir / f"{name}.done")
        finished.add(name)
        for phase, seconds in part_phases.items():
            phases[phase] = phases.get(phase, 0.0) + seconds

    context = None
    if options.workers == "processes" and jobs > 1 and len(todo) > 1 and source.store.reopenable:
        context = _worker_context(["prebake.restore", type(source.store).__module__])
    try:
        for part in manifest.parts:
            if (progress_dir / f"{part.name}.done").exists():  # verified by an earlier, interrupted run
                finished.add(part.name)
        if context is not None:
            url = location if "://" in location else str(Path(location).absolute())
            part_jobs = [_PartJob(url, part, where, options.retries, ranges(part), options.low_speed, dict(os.environ))
                         for part in todo]
            _in_processes(context, part_jobs, jobs, on_bytes, lambda outcome: done(outcome.name, outcome.phases))
        else:
            source.store.parallel_ranges = ranges(None)  # one store for every thread: an even share each
            source.store.low_speed = options.low_speed
            cancel = threading.Event()
            runs = [_PartRun(source.store, part, where, options.retries, on_bytes, cancel) for part in todo]
            _in_threads(runs, jobs, cancel, lambda run: done(run.part.name, run.phases))
        with where.gate() as gate:
            try:
                for whiteout in manifest.whiteouts:
                    gate.remove(whiteout)
                finish_folders(gate, finished.made, finished.folders)  # after the whiteouts, which touch folder mtimes
            except OSError as e:  # every part is in: a refusal now is this machine's, and nothing of the pack stays
                raise ConflictError(str(_os_error(e, root))) from e
    except (UnsafePackError, ConflictError):
        # The pack (or this machine) is at fault, not the network: none of it stays, verified or not.
        _undo_all(progress_dir, manifest, where)
        raise
    except BaseException:
        # Verified parts stay so that the next run resumes; with none, no state stays either.
        if not any(progress_dir.glob("*.done")):
            shutil.rmtree(progress_dir, ignore_errors=True)
        raise
    marker = {"name": manifest.name, "version": manifest.version, "digest": source.digest,
              "location": redact(location), "folders": sorted(finished.made), **({"prefix": at} if at else {})}
    atomic_write(kept_manifest_path(root, manifest.name), source.data)
    atomic_write(marker_path(root, manifest.name), json.dumps(marker).encode())
    shutil.rmtree(progress_dir, ignore_errors=True)
    if options.apply_env:
        apply_env(manifest, root)
    result.seconds = time.perf_counter() - started
    result.packed_bytes = manifest.packed_size
    result.bytes = sum(p.bytes for p in manifest.parts)
    result.members = sum(p.members for p in manifest.parts)
    result.files = manifest.stats.get("files", result.members)
    result.phases = phases
    log.info("%s: stages summed over parts (they overlap): %s", manifest.name,
             ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    return result


def _ignore(_: int) -> None:
    pass


# ---------------------------------------------------------------- the one call


@api
def restore(source: str | os.PathLike, options: RestoreOptions | None = None, **overrides) -> Restored:
    """Restore a pack folder, a manifest URL or every pack of a lock file; returns one result per pack.

    Locations of a locked pack are tried in order; parts finished from one location are kept when
    the next is tried.
    """
    options = options or RestoreOptions()
    if overrides:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(RestoreOptions)})
        if unknown:
            msg = f"restore() got unknown argument(s) {', '.join(unknown)}; see help(prebake.RestoreOptions)"
            raise UsageError(msg)
        options = dataclasses.replace(options, **overrides)
    workers = settings.WORKERS.get(options.workers)
    if workers not in ("processes", "threads"):
        msg = f"workers {workers!r} must be 'processes' or 'threads' (check PREBAKE_WORKERS)"
        raise UsageError(msg)
    connections = settings.CONNECTIONS.get(str(options.connections) if options.connections else None)
    if not connections.isdigit() or int(connections) < 1:
        msg = f"connections {connections!r} must be a whole number of requests, 1 or more (check PREBAKE_CONNECTIONS)"
        raise UsageError(msg)
    options = dataclasses.replace(options, workers=workers, connections=int(connections))
    try:
        options.root.mkdir(parents=True, exist_ok=True)
        with _root_lock(options.root, options.wait):
            return _restore_all(source, options)
    except OSError as e:
        raise _os_error(e, options.root) from e


def _os_error(e: OSError, root: Path) -> PrebakeError:
    """One line for a file system refusal, with the fix that applies to who we are."""
    where = e.filename or root
    if e.errno == errno.ENOSPC:
        hint = "free some space or restore elsewhere with --root DIR"
    elif e.errno == errno.EROFS:
        hint = "that file system is read-only: restore elsewhere with --root DIR"
    elif isinstance(e, PermissionError) and os.geteuid() == 0:
        hint = "even root may not write there (an immutable file, chattr +i, or a protected mount): check it or restore elsewhere with --root DIR"
    elif isinstance(e, PermissionError):
        hint = "run as root or pass --root DIR"
    else:
        hint = "check the path or restore elsewhere with --root DIR"
    return PrebakeError(f"cannot write {where}: {e.strerror}; {hint}")


def _restore_all(source: str | os.PathLike, options: RestoreOptions) -> Restored:
    results = Restored()
    progress = Progress("restoring", bar=options.progress) if options.progress is not False else None
    try:
        _restore_each(source, options, results, progress)
    except BaseException:
        if progress is not None:  # the bar goes; the packs restored before the failure are said
            progress.finish([result.summary() for result in results])
        raise
    if progress is not None:
        progress.finish([result.summary() for result in results])
        results.shown, results.shown_in = True, execution_count()
    return results


def _restore_each(source: str | os.PathLike, options: RestoreOptions, results: Restored, progress: Progress | None) -> None:
    packs = resolve(source)
    moved_before: list[str] = []  # the lock's conda packs moved to options.prefix: one folder holds one environment
    for wanted in packs:
        here = _restored_here(wanted, options)
        if here is not None:
            where = installed(options.root, wanted.label).get("location", "")
            results.append(restore_pack(here, where, options, wanted.allow_env, progress))
            continue
        failures: list[str] = []
        for location in wanted.locations:
            try:
                with open_store(location) as store:
                    store.low_speed = options.low_speed
                    pack = fetch_manifest(store, wanted.digest, wanted.platform)
                    prefix = options.prefix if pack.manifest.conda is not None or len(packs) == 1 else None
                    if prefix and moved_before and wanted.label not in moved_before:
                        msg = (f"--prefix names one folder, and {source} holds conda environments {moved_before[0]} and "
                               f"{wanted.label}: restore them one at a time")
                        raise UsageError(msg)
                    if prefix:
                        moved_before.append(wanted.label)
                    results.append(restore_pack(pack, location, options, wanted.allow_env, progress, prefix))
                break
            except (UnsafePackError, PlatformMismatch, UsageError, ConflictError):
                raise
            except (StoreError, IntegrityError) as e:
                if len(wanted.locations) == 1:
                    raise
                failures.append(f"{redact(location)}: {e}")
                log.warning("%s; trying the next location", e)
        else:
            msg = f"cannot restore {wanted.label}: every location failed: " + " | ".join(failures)
            raise StoreError(msg)
