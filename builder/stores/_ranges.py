"""Ranged reads shared by the HTTP and Drive stores: a body cut to [offset, end) whatever the
server did with Range and however long its body, held to the store's minimum rate, and a large
file fetched as parallel ranges handed on in order."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import requests
from urllib3.exceptions import HTTPError, ReadTimeoutError

from ..errors import TransientStoreError
from . import CHUNK, SpeedFloor

SEGMENT = 16 * 1024 * 1024
"""The largest range of one request; a part is cut into `width` ranges of at least MIN_SEGMENT."""
MIN_SEGMENT = 2 * 1024 * 1024
PROBE = 1024 * 1024
"""A window of a file's bytes on one connection: after each, the reader's waits decide whether the
rest is split into ranges."""
LINK_BOUND = 0.5
"""Split when the reader waited on the link for more than this share of a window's time."""
AHEAD_BYTES = 64 * 1024 * 1024
"""What a part's ranges hold in memory, in flight or arrived before their turn: about this many
bytes (ranges are cut smaller for a wide part), or `width` + 1 ranges of MIN_SEGMENT if more."""


def range_header(offset: int, end: int | None) -> dict[str, str]:
    headers = {"Accept-Encoding": "identity"}
    if offset or end is not None:
        headers["Range"] = f"bytes={offset}-{'' if end is None else end - 1}"
    return headers


def body_pieces(response: requests.Response, limit: int | None, start: int, what: str,
                low_speed: tuple[int, float], advice: str) -> Iterator[bytes]:
    """At most `limit` bytes of the body, as they arrive; a cut or too slow transfer raises
    TransientStoreError ending with `advice` (`start` is the file offset the body begins at).

    The request must have been sent with a read timeout of low_speed[1]. Reads use urllib3's
    `read1`, which returns as soon as any bytes arrive: requests' iter_content(CHUNK) would wait
    for a whole chunk, so a trickle of one byte every few seconds would never be measured; read1
    returns it, SpeedFloor measures it, and a server that sends nothing at all hits the socket's
    read timeout (urllib3's ReadTimeoutError), reported as the same low-speed error."""
    floor = SpeedFloor(low_speed, what, advice)
    got = 0
    while limit is None or got < limit:
        started = time.monotonic()
        try:
            chunk = response.raw.read1(CHUNK if limit is None else min(CHUNK, limit - got), decode_content=True)
        except ReadTimeoutError as e:
            raise floor.error() from e
        except (HTTPError, OSError) as e:
            msg = f"{what}: the connection was cut after {start + got} bytes ({type(e).__name__}); {advice}"
            raise TransientStoreError(msg) from e
        floor.passed(len(chunk), time.monotonic() - started)
        if not chunk:
            return
        got += len(chunk)
        yield chunk


class RangedBody(Iterator[bytes]):
    """Bytes [offset, end) of the response, never more: a 200 to a ranged request has its first
    `offset` bytes skipped, a 206 that starts elsewhere is refused, and a body longer than asked
    (or endless) is read no further than `end`.

    `whole_file`: the server answered a request that named a range with the whole file (a 200), as
    servers that ignore Range do (Python's http.server, some proxies); every range asked of such a
    server costs the bytes before it too, so a file is not split into ranges there."""

    def __init__(self, response: requests.Response, offset: int, end: int | None, what: str,
                 low_speed: tuple[int, float], advice: str) -> None:
        self.whole_file = response.status_code == 200 and "Range" in response.request.headers
        self._response = response
        self._pieces = self._read(response, offset, end, what, low_speed, advice)

    def __next__(self) -> bytes:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()
        self._response.close()

    @staticmethod
    def _read(response: requests.Response, offset: int, end: int | None, what: str, low_speed: tuple[int, float],
              advice: str) -> Iterator[bytes]:
        with response:
            skip = offset if response.status_code == 200 else 0
            if response.status_code == 206:
                start = response.headers.get("Content-Range", "").split(" ")[-1].split("-")[0]
                if start != str(offset):
                    msg = f"{what}: asked for bytes from {offset}, the server sent {response.headers.get('Content-Range')!r}"
                    raise TransientStoreError(msg)
            limit = None if end is None else skip + end - offset
            for chunk in body_pieces(response, limit, offset - skip, what, low_speed, advice):
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                    if not chunk:
                        continue
                yield chunk


def worth_ranges(offset: int, size: int | None, width: int) -> bool:
    """Two ranges at least, each of MIN_SEGMENT or more."""
    return size is not None and width > 1 and size - offset >= 2 * MIN_SEGMENT


def ordered_ranges(fetch: Callable[[int, int], Iterator[bytes]], offset: int, size: int, width: int,
                   probe: bool = True) -> Iterator[bytes]:
    """Bytes [offset, size) of a file, on one connection while that keeps up with the reader, else
    on about `width` at once (ranges fetched by threads, yielded in order).

    One request asks for the whole rest of the file, and its bytes are timed in windows of PROBE
    bytes. When the reader spent more than LINK_BOUND of a window waiting for them (a link that
    caps each connection, as Drive and CDNs do, or a distant server), the request goes on only to
    the end of its range and the rest is fetched as ranges (_split); while the reader sets the pace,
    the request goes on alone: over a link as fast as the reader, extra connections cost the restore
    10-15% (threads, requests, the server's work) and gained nothing. Every window is timed, not
    only the first: a reader slowed at the start (other parts' workers starting on the same cores)
    made one early look keep a 94 MB part on one capped connection, 5.3 s where ranges took 2.6 s.
    The first window decides alone, as that one look did; later, two slow windows in a row are
    needed, so that one stall does not split a part a fast link carries. A server that answers the
    first request's range with the whole file (RangedBody.whole_file) is never split: each range
    would cost it the file's bytes up to there. Without `probe` (a store whose reads return whole,
    so that there is no stream to time) the file is split from the start."""
    first = fetch(offset, size)
    try:
        position = offset
        if probe:
            splittable = not (isinstance(first, RangedBody) and first.whole_file)
            waited, slow, needed = 0.0, 0, 1
            began = asked = time.monotonic()
            window = offset
            for chunk in first:
                waited += time.monotonic() - asked
                yield chunk
                position += len(chunk)
                asked = time.monotonic()
                if position - window >= PROBE:
                    slow = slow + 1 if waited > LINK_BOUND * (asked - began) else 0
                    if slow >= needed and splittable:
                        break  # the link is slower than the reader: the rest goes as ranges
                    waited, began, window, needed = 0.0, asked, position, 2
            else:
                if position < size:  # a body that ended cleanly but short: the restore resumes at this byte
                    raise TransientStoreError(f"the connection ended at byte {position}, before the end of the file at {size}")
                return  # the whole file came over this one connection
        yield from _split(first, fetch, position, size, width)
    finally:
        first.close()


def _shrinking(start: int, size: int, width: int, largest: int) -> list[tuple[int, int]]:
    """Bounds of the ranges from `start` to `size`: each an even share of what is left over `width`
    connections, at most `largest` and at least MIN_SEGMENT. The last ones shrink, so that the
    connections end about together: with ranges of one size, the last one or two rode alone at the
    end (on a link capped at 25 MB/s per connection, an 8 MiB range is a third of a second)."""
    bounds = []
    while start < size:
        end = min(size, start + min(largest, max(MIN_SEGMENT, -(-(size - start) // width))))
        if size - end < MIN_SEGMENT and size - start <= largest:
            end = size  # a remainder under MIN_SEGMENT rides with this range, not as a request of its own
        bounds.append((start, end))
        start = end
    return bounds


def _split(first: Iterator[bytes], fetch: Callable[[int, int], Iterator[bytes]], position: int, size: int,
           width: int) -> Iterator[bytes]:
    """The rest of a file from `position`: `first` (a request that reached `position`) goes on to
    the end of the first range while other threads fetch the next ones.

    `width` requests stay in flight until the last range (`width - 1` while `first` streams): a
    range that arrives starts the next one at once, not when its turn to be read comes. Started
    only as ranges were read, the requests of a batch ended together and the next batch waited for
    the reader, so a part rode 3 of 4 connections or fewer (on a link capped at 25 MB/s per
    connection, 65-70 MB/s of 100). Ranges that arrived before their turn wait in memory; with
    those in flight they hold about AHEAD_BYTES at most (ranges are cut smaller for a wide part)."""
    fits = max(MIN_SEGMENT, AHEAD_BYTES // (width + 1))  # so that width + 1 ranges hold AHEAD_BYTES at most
    largest = min(SEGMENT, fits, max(MIN_SEGMENT, -(-(size - position) // width)))
    cut = min(size, position + largest)
    bounds = _shrinking(cut, size, width, largest)
    most_ahead = max(width + 1, AHEAD_BYTES // largest)  # in flight, plus arrived and waiting (one at least)
    lock = threading.RLock()  # a future already done runs its callback in submit's caller
    ahead: deque[tuple[Future[bytes], int]] = deque()
    flying = width - 1
    next_index = 0
    stopped = False

    def refill(_: Future[bytes] | None = None) -> None:
        nonlocal next_index
        with lock:
            while (not stopped and next_index < len(bounds) and len(ahead) < most_ahead
                   and sum(not future.done() for future, _ in ahead) < flying):
                start, stop = bounds[next_index]
                next_index += 1
                future = pool.submit(lambda s=start, e=stop: b"".join(fetch(s, e)))
                ahead.append((future, stop - start))
                future.add_done_callback(refill)

    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="prebake-range") as pool:
        refill()
        try:
            for chunk in first:
                if position + len(chunk) >= cut:
                    yield chunk[: cut - position]
                    position = cut
                    break
                yield chunk
                position += len(chunk)
            if position < cut:
                msg = f"the connection ended at byte {position}, before the end of its range at {cut}"
                raise TransientStoreError(msg)
            first.close()
            with lock:
                flying = width
            refill()
            while True:
                with lock:
                    if not ahead:
                        break
                    future, length = ahead[0]
                data = memoryview(future.result())  # slices of it are views, not copies
                with lock:
                    ahead.popleft()  # only now: the range waited for counts until it is here
                if len(data) == length:
                    refill()
                for i in range(0, len(data), CHUNK):
                    yield data[i : i + CHUNK]
                if len(data) != length:  # a server that sent less than asked: the restore resumes where the bytes stop
                    msg = f"a ranged request returned {len(data)} of the {length} bytes asked for"
                    raise TransientStoreError(msg)
        finally:
            with lock:
                stopped = True
                for future, _ in ahead:
                    future.cancel()
