"""Ranged reads shared by the HTTP and Drive stores: a body cut to [offset, end) whatever the
server did with Range, and a large file fetched as parallel ranges handed on in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import requests

from ..errors import TransientStoreError
from . import CHUNK

SEGMENT = 16 * 1024 * 1024


def range_header(offset: int, end: int | None) -> dict[str, str]:
    headers = {"Accept-Encoding": "identity"}
    if offset or end is not None:
        headers["Range"] = f"bytes={offset}-{'' if end is None else end - 1}"
    return headers


def ranged_body(response: requests.Response, offset: int, end: int | None, what: str) -> Iterator[bytes]:
    """Bytes [offset, end) of the response: a 200 to a ranged request has its first `offset`
    bytes skipped, a 206 that starts elsewhere is refused, and a cut transfer raises
    TransientStoreError so the caller can resume at its byte."""
    with response:
        skip = offset if response.status_code == 200 else 0
        if response.status_code == 206:
            start = response.headers.get("Content-Range", "").split(" ")[-1].split("-")[0]
            if start != str(offset):
                msg = f"{what}: asked for bytes from {offset}, the server sent {response.headers.get('Content-Range')!r}"
                raise TransientStoreError(msg)
        left = None if end is None else end - offset
        got = 0
        try:
            for chunk in response.iter_content(CHUNK):
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                    if not chunk:
                        continue
                if left is not None:
                    chunk = chunk[:left]
                    left -= len(chunk)
                got += len(chunk)
                yield chunk
                if left == 0:
                    return
        except (requests.RequestException, OSError) as e:
            msg = f"{what}: the connection was cut after {offset + got} bytes ({type(e).__name__}); resuming with Range"
            raise TransientStoreError(msg) from e


def ordered_ranges(fetch: Callable[[int, int], Iterator[bytes]], offset: int, size: int, width: int) -> Iterator[bytes]:
    """Stream the first segment while `width - 1` threads fetch the next ones, yielded in order."""
    bounds = [(start, min(start + SEGMENT, size)) for start in range(offset, size, SEGMENT)]
    with ThreadPoolExecutor(max_workers=width - 1, thread_name_prefix="prebake-range") as pool:
        ahead: list[Future[bytes]] = []
        next_index = 1

        def refill() -> None:
            nonlocal next_index
            while len(ahead) < width - 1 and next_index < len(bounds):
                start, stop = bounds[next_index]
                ahead.append(pool.submit(lambda s=start, e=stop: b"".join(fetch(s, e))))
                next_index += 1

        refill()
        try:
            yield from fetch(*bounds[0])
            while ahead:
                data = ahead.pop(0).result()
                refill()
                for i in range(0, len(data), CHUNK):
                    yield data[i : i + CHUNK]
        finally:
            for future in ahead:
                future.cancel()
