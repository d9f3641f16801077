"""Parallel ranges of one part (stores/_ranges.ordered_ranges): bytes in order, never more than
`width` requests at once, and no request waiting on the reader while a range is slow."""

from __future__ import annotations

import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from prebake.stores import _ranges
from prebake.stores._ranges import MIN_SEGMENT, ordered_ranges


class _Link:
    """A fake server: each range takes its drawn time; records how many run at once."""

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
            time.sleep(delay)
            yield self.data[start:end]
        finally:
            with self.lock:
                self.running -= 1


@settings(max_examples=25, deadline=None)
@given(ranges=st.integers(1, 12), width=st.integers(2, 6), delays=st.lists(st.floats(0, 0.01), min_size=1, max_size=8))
def test_ranges_arrive_whole_and_in_order_with_at_most_width_requests(ranges: int, width: int, delays: list[float]) -> None:
    data = bytes(range(256)) * (ranges * MIN_SEGMENT // 256)
    link = _Link(data, delays)
    assert b"".join(ordered_ranges(link.fetch, 0, len(data), width)) == data
    assert link.most <= width


def test_a_slow_range_does_not_hold_back_the_requests_after_it(monkeypatch) -> None:
    """While the reader waits on a slow range, the ones after it keep `width` requests in flight
    (up to AHEAD_BYTES waiting in memory): they used to start only as ranges were read. (Ranges of
    1 KiB here, so that a part is many ranges, as a part of hundreds of MB is.)"""
    segment, ahead = 1024, 8 * 1024
    monkeypatch.setattr(_ranges, "SEGMENT", segment)
    monkeypatch.setattr(_ranges, "MIN_SEGMENT", segment)
    monkeypatch.setattr(_ranges, "AHEAD_BYTES", ahead)
    width, ranges = 4, 20
    data = bytes(range(256)) * (ranges * segment // 256)
    release = threading.Event()
    started: list[int] = []
    expected = width + ahead // segment  # in flight, and waiting in memory, while range 1 hangs

    def fetch(start: int, end: int):
        started.append(start // segment)
        if start // segment == 1:
            assert release.wait(10), "the ranges after a slow one never started"
        yield data[start:end]

    reached: list[bool] = []

    def watch() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(started) < expected:
            time.sleep(0.001)
        reached.append(len(started) >= expected)
        release.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert b"".join(ordered_ranges(fetch, 0, len(data), width)) == data
    watcher.join()
    assert reached == [True], f"only {expected} ranges may be asked for while range 1 hangs, and all of them should be"
    assert len(started) == ranges


@given(sizes=st.lists(st.integers(0, 10**9), min_size=1, max_size=40), jobs=st.integers(1, 8), connections=st.integers(1, 32))
def test_connections_are_shared_by_packed_size(sizes: list[int], jobs: int, connections: int) -> None:
    """Each part gets 1 to `connections` ranges, a larger part never fewer than a smaller one, and
    parts of the mean size their even share of the connections over the parts in flight."""
    from prebake.manifest import Part
    from prebake.restore import _ranges_for

    parts = [Part(f"part-{i}", size, "0" * 64, 1, size) for i, size in enumerate(sizes)]
    ranges = _ranges_for(parts, jobs, connections)
    widths = [ranges(part) for part in sorted(parts, key=lambda part: part.size)]
    assert all(1 <= width <= connections for width in widths)
    assert widths == sorted(widths)
    even = -(-connections // min(jobs, len(parts)))
    assert ranges(None) == max(1, min(connections, even))
