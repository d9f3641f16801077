"""Parallel ranges of one part (stores/_ranges.ordered_ranges): bytes in order, never more than
`width` requests at once, and no request waiting on the reader while a range is slow."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prebake.errors import TransientStoreError
from prebake.stores import _ranges
from prebake.stores._ranges import ordered_ranges


def same(got: bytes | bytearray, data: bytes) -> bool:
    """Whether the bytes came back whole and in order (an assert on `got == data` itself would
    make pytest diff megabytes on failure, which takes hours)."""
    return len(got) == len(data) and got == data


class _Link:
    """A fake server: each request sends 64 KiB pieces, `delay` seconds apart (drawn in turn from
    `delays`); records how many requests run at once."""

    def __init__(self, data: bytes, delays: list[float]) -> None:
        self.data, self.delays = data, delays
        self.lock = threading.Lock()
        self.running = self.most = self.started = 0

    def fetch(self, start: int, end: int):
        with self.lock:
            delay = self.delays[self.started % len(self.delays)]
            self.started += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            for piece in range(start, end, 64 * 1024):
                time.sleep(delay)
                yield self.data[piece : min(end, piece + 64 * 1024)]
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def small_ranges(monkeypatch):
    """Ranges of 64 KiB to 256 KiB and a probe of 128 KiB, so that a file of a few MB is many ranges."""
    monkeypatch.setattr(_ranges, "SEGMENT", 256 * 1024)
    monkeypatch.setattr(_ranges, "MIN_SEGMENT", 64 * 1024)
    monkeypatch.setattr(_ranges, "PROBE", 128 * 1024)
    monkeypatch.setattr(_ranges, "AHEAD_BYTES", 512 * 1024)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 3 * 1024 * 1024), width=st.integers(2, 6), delays=st.lists(st.floats(0, 0.002), min_size=1, max_size=8))
def test_ranges_arrive_whole_and_in_order_with_at_most_width_requests(small_ranges, size: int, width: int,
                                                                       delays: list[float]) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    link = _Link(data[:size], delays)
    assert same(b"".join(ordered_ranges(link.fetch, 0, size, width)), data[:size])
    assert link.most <= width


@given(start=st.integers(0, 10**9), length=st.integers(1, 10**9), width=st.integers(2, 32),
       largest=st.integers(_ranges.MIN_SEGMENT, _ranges.SEGMENT))
def test_ranges_cover_the_rest_and_shrink_toward_its_end(start: int, length: int, width: int, largest: int) -> None:
    """The ranges after the first request tile the rest of the file, none over `largest`, none
    under MIN_SEGMENT but the very last, never growing, and none carrying more than an even share
    over `width` connections of what is left where it starts (the last one, plus a remainder too
    small for a request of its own): the connections end about together instead of the last
    whole-size range riding alone."""
    bounds = _ranges._shrinking(start, start + length, width, largest)
    assert bounds[0][0] == start and bounds[-1][1] == start + length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [end - begin for begin, end in bounds]
    assert all(0 < size <= largest for size in sizes)
    assert all(size >= _ranges.MIN_SEGMENT for size in sizes[:-1])
    assert sizes[:-1] == sorted(sizes[:-1], reverse=True)
    end = start + length
    share = [max(_ranges.MIN_SEGMENT, -(-(end - begin) // width)) for begin, _ in bounds]
    assert all(stop - begin <= most for (begin, stop), most in zip(bounds[:-1], share, strict=False))
    assert sizes[-1] < share[-1] + _ranges.MIN_SEGMENT  # the last takes in a remainder under MIN_SEGMENT at most
    # ... and is itself MIN_SEGMENT or more, unless it is the whole rest or would pass `largest` with the one before
    assert len(sizes) == 1 or sizes[-1] >= _ranges.MIN_SEGMENT or sizes[-2] + sizes[-1] > largest


def test_a_link_as_fast_as_the_reader_keeps_one_connection(small_ranges, monkeypatch) -> None:
    monkeypatch.setattr(_ranges, "PROBE", 1024 * 1024)  # 16 pieces: a busy machine's pauses average out
    data = bytes(4 * 1024 * 1024)
    link = _Link(data, [0.0])
    got = bytearray()
    for chunk in ordered_ranges(link.fetch, 0, len(data), 4):
        got += chunk
        time.sleep(0.005)  # the reader (decompression, files) sets the pace, by far
    assert same(got, data)
    assert link.started == 1


def test_a_link_that_falls_behind_the_reader_later_is_split_then(small_ranges) -> None:
    """The reader set the pace over the first windows (busy, as when other parts start on the same
    cores), then waits on the link: the rest is split from there, not left on one connection."""
    data = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    busy_until = 512 * 1024  # four windows of 128 KiB

    def fetch(start: int, end: int):
        for piece in range(start, end, 64 * 1024):
            if piece >= busy_until:
                time.sleep(0.004)  # the link, from here on
            yield data[piece : min(end, piece + 64 * 1024)]

    requests: list[int] = []
    got = bytearray()
    for chunk in ordered_ranges(lambda s, e: (requests.append(s), fetch(s, e))[1], 0, len(data), 4):
        if len(got) < busy_until:
            time.sleep(0.004)  # the reader, until then
        got += chunk
    assert same(got, data)
    assert len(requests) > 4 and min(requests[1:]) > busy_until


def test_one_stall_after_the_first_window_does_not_split_a_part_a_fast_link_carries(small_ranges) -> None:
    """The reader sets the pace but for one window where the link stalls: a split takes two slow
    windows in a row after the first, so the part stays on its one connection."""
    data = bytes(range(256)) * (2 * 1024 * 1024 // 256)
    stall_at = 640 * 1024  # in the fifth window of 128 KiB

    def fetch(start: int, end: int):
        for piece in range(start, end, 64 * 1024):
            if piece == stall_at:
                time.sleep(0.05)
            yield data[piece : min(end, piece + 64 * 1024)]

    requests: list[int] = []
    got = bytearray()
    for chunk in ordered_ranges(lambda s, e: (requests.append(s), fetch(s, e))[1], 0, len(data), 4):
        time.sleep(0.004)  # the reader, slower than the link but for the stall
        got += chunk
    assert same(got, data)
    assert requests == [0]


def test_a_first_request_that_ends_short_stops_the_stream_where_its_bytes_stop(small_ranges) -> None:
    """A body that ends cleanly before the file's end (a close-delimited body cut early): the bytes
    up to there, then a transient error, so the restore resumes at that byte."""
    data = bytes(range(256)) * (2 * 1024 * 1024 // 256)

    def fetch(start: int, end: int):
        for piece in range(start, min(end, 512 * 1024), 64 * 1024):
            yield data[piece : min(end, piece + 64 * 1024)]

    got = bytearray()
    with pytest.raises(TransientStoreError, match="ended at byte 524288, before the end of the file"):
        for chunk in ordered_ranges(fetch, 0, len(data), 4):
            time.sleep(0.002)  # a fast link: no split, the one request is the whole file
            got += chunk
    assert same(got, data[: len(got)]) and len(got) == 512 * 1024


def test_without_a_probe_a_file_is_split_from_the_start(small_ranges) -> None:
    """A store whose reads return whole (fsspec) has no stream to time: it always splits."""
    data = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    link = _Link(data, [0.0])
    assert same(b"".join(ordered_ranges(link.fetch, 0, len(data), 4, probe=False)), data)
    assert link.started > 4


def test_a_link_slower_than_the_reader_is_split_into_ranges(small_ranges) -> None:
    data = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    link = _Link(data, [0.002])
    assert same(b"".join(ordered_ranges(link.fetch, 0, len(data), 4)), data)
    assert link.started > 4 and link.most == 4


def test_a_range_that_ends_short_stops_the_stream_where_its_bytes_stop(small_ranges) -> None:
    """A server that sends less than a range asked for (a cap on a range's length): the bytes up
    to there, then a transient error, so the restore resumes at that byte instead of carrying on
    with the next range's bytes in the wrong place."""
    data = bytes(range(256)) * (2 * 1024 * 1024 // 256)

    def fetch(start: int, end: int):
        if start:
            end = min(end, start + 1000)  # every range after the first request is cut short
        for piece in range(start, end, 64 * 1024):
            time.sleep(0.002 if not start else 0)
            yield data[piece : min(end, piece + 64 * 1024)]

    got = bytearray()
    with pytest.raises(TransientStoreError, match="returned 1000 of the"):
        for chunk in ordered_ranges(fetch, 0, len(data), 4):
            got += chunk
    assert len(got) < len(data) and same(got, data[: len(got)])


@pytest.mark.parametrize("width", [2, 4, 8, 16])
def test_while_a_range_hangs_the_others_hold_about_ahead_bytes_at_most(small_ranges, width: int) -> None:
    """What a part's ranges hold in memory at once, in flight or waiting for their turn behind one
    that hangs: about AHEAD_BYTES (512 KiB here), or width + 1 of the smallest ranges if more."""
    data = bytes(8 * 1024 * 1024)
    asked: list[int] = []
    release = threading.Event()

    def fetch(start: int, end: int):
        if start:
            asked.append(end - start)
            if len(asked) == 1:
                assert release.wait(10)
        for piece in range(start, end, 64 * 1024):
            time.sleep(0.002 if not start else 0)  # the first request is slow: the rest is split
            yield data[piece : min(end, piece + 64 * 1024)]

    held: list[int] = []

    def watch() -> None:
        seen, still = -1, 0
        while still < 20 and not release.is_set():  # no new request for 0.2 s: as many as may be are out
            time.sleep(0.01)
            still = still + 1 if len(asked) == seen else 0
            seen = len(asked)
        held.append(sum(asked))
        release.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert same(b"".join(ordered_ranges(fetch, 0, len(data), width)), data)
    watcher.join()
    assert 0 < held[0] <= max(512 * 1024, (width + 1) * 64 * 1024), held


def test_a_slow_range_does_not_hold_back_the_requests_after_it(small_ranges) -> None:
    """While the reader waits on a slow range, the ones after it keep `width` requests in flight
    (up to AHEAD_BYTES waiting in memory): they used to start only as ranges were read."""
    width = 4
    data = bytes(range(256)) * (6 * 1024 * 1024 // 256)
    release = threading.Event()
    started: list[int] = []
    expected = 1 + width + 1  # the first request, `width` in flight, and one arrived while the hung one holds its turn
    hung: list[int] = []

    def fetch(start: int, end: int):
        started.append(start)
        if start and not hung:  # the first range after the probe's request hangs until the others are under way
            hung.append(start)
            assert release.wait(10), "the ranges after a slow one never started"
        for piece in range(start, end, 64 * 1024):
            if not start:
                time.sleep(0.002)  # a slow link: the probe finds the reader waiting
            yield data[piece : min(end, piece + 64 * 1024)]

    reached: list[bool] = []

    def watch() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(started) < expected:
            time.sleep(0.001)
        reached.append(len(started) >= expected)
        release.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert same(b"".join(ordered_ranges(fetch, 0, len(data), width)), data)
    watcher.join()
    assert reached == [True], f"{expected} requests may be under way while one range hangs, and all of them should be"


@given(sizes=st.lists(st.integers(0, 10**9), min_size=1, max_size=40), jobs=st.integers(1, 8), connections=st.integers(1, 32))
def test_connections_are_shared_by_packed_size_and_bounded(sizes: list[int], jobs: int, connections: int) -> None:
    """Each part gets 1 to `connections` ranges, a larger part never fewer than a smaller one, at
    least its even share of the connections over the parts in flight, and the parts a restore
    starts first (heaviest first) no more than about twice `connections` together."""
    from prebake.manifest import Part
    from prebake.restore import _ranges_for

    parts = [Part(f"part-{i}", size, "0" * 64, 1, size) for i, size in enumerate(sizes)]
    ranges = _ranges_for(parts, jobs, connections)
    widths = [ranges(part) for part in sorted(parts, key=lambda part: part.size)]
    assert all(1 <= width <= connections for width in widths)
    assert widths == sorted(widths)
    in_flight = min(jobs, len(parts))
    even = max(1, min(connections, -(-connections // in_flight)))
    assert ranges(None) == even and min(widths) >= even
    first = sorted(parts, key=lambda part: part.weight, reverse=True)[:in_flight]
    assert sum(map(ranges, first)) <= 2 * connections + in_flight
