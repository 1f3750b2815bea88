"""Broken ``Executor.map`` implementations for the map spec (specs/test_map.py).

Each subclasses a stdlib pool and overrides ``map`` with one realistic mistake.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import time
from typing import TYPE_CHECKING, Any

from . import Broken

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator


class CompletionOrder(concurrent.futures.ThreadPoolExecutor):
    """Yields the results as the calls finish ("as completed"), not in input order."""

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        fs = [self.submit(fn, *args) for args in zip(*iterables)]

        def results() -> Iterator[Any]:
            try:
                for future in concurrent.futures.as_completed(fs, timeout):
                    fs.remove(future)
                    yield future.result()
            finally:
                for future in fs:
                    future.cancel()

        return results()


class FailsFast(concurrent.futures.ThreadPoolExecutor):
    """Fails "fast": before each result it raises the exception of any call that has
    already failed, even one after the result due, so earlier results are lost."""

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        fs = [self.submit(fn, *args) for args in zip(*iterables)]

        def results() -> Iterator[Any]:
            try:
                while fs:
                    for future in fs:
                        if future.done() and not future.cancelled() and future.exception():
                            raise future.exception()  # type: ignore[misc]
                    yield fs.pop(0).result(timeout)
            finally:
                for future in fs:
                    future.cancel()

        return results()


class IgnoresTimeout(concurrent.futures.ThreadPoolExecutor):
    """Forgets to pass *timeout* on: a held result is waited for however long it takes."""

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        return super().map(fn, *iterables, chunksize=chunksize)


class DropsLastChunk(concurrent.futures.ThreadPoolExecutor):
    """Sends the calls to its threads in chunks of *chunksize* (fewer queue operations), but
    cuts them with an off-by-one range: a last, partial chunk is never submitted."""

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        items = list(zip(*iterables))
        chunks = [
            items[start : start + chunksize]
            for start in range(0, len(items) - chunksize + 1, chunksize)
        ]
        results = super().map(_call_chunk, itertools.repeat(fn), chunks, timeout=timeout)
        return (result for chunk in results for result in chunk)


def _call_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    return [fn(*args) for args in chunk]


class DeadlineFromFirstNext(concurrent.futures.ThreadPoolExecutor):
    """Measures *timeout* from the first ``next()`` (inside the generator), not from the
    call: a result that took longer than the timeout since the call is still delivered."""

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        fs = [self.submit(fn, *args) for args in zip(*iterables)]

        def results() -> Iterator[Any]:
            end = None if timeout is None else time.monotonic() + timeout
            try:
                for n in itertools.count():
                    if n == len(fs):
                        return
                    left = None if end is None else end - time.monotonic()
                    yield fs[n].result(left)
            finally:
                for future in fs:
                    future.cancel()

        return results()


class RefillsTwice(concurrent.futures.ThreadPoolExecutor):
    """Takes *buffersize* (Python 3.14) but refills the buffer with two calls for every
    result taken, so the input runs ever further ahead of the results."""

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        if buffersize is None:
            return super().map(fn, *iterables, timeout=timeout)
        if not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        items = zip(*iterables)
        fs = collections.deque(
            self.submit(fn, *args) for args in itertools.islice(items, buffersize)
        )

        def results() -> Iterator[Any]:
            try:
                while fs:
                    fs.extend(self.submit(fn, *args) for args in itertools.islice(items, 2))
                    yield fs.popleft().result(timeout)
            finally:
                for future in fs:
                    future.cancel()

        return results()


class BufferWithoutChecks(concurrent.futures.ThreadPoolExecutor):
    """Takes *buffersize* but never checks it: ``islice`` rejects some bad values with the
    wrong error type, and ``buffersize=0`` gives an empty map instead of ``ValueError``."""

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        if buffersize is None:
            return super().map(fn, *iterables, timeout=timeout)
        items = zip(*iterables)
        fs = collections.deque(
            self.submit(fn, *args) for args in itertools.islice(items, buffersize)
        )

        def results() -> Iterator[Any]:
            try:
                while fs:
                    future = fs.popleft()
                    value = future.result(timeout)
                    del future
                    fs.extend(self.submit(fn, *args) for args in itertools.islice(items, 1))
                    yield value
            finally:
                for future in fs:
                    future.cancel()

        return results()


CASES = [
    Broken(f"{__name__}:CompletionOrder", "test_map.py", "results in completion order"),
    Broken(f"{__name__}:FailsFast", "test_map.py", "a later call's exception comes first"),
    Broken(f"{__name__}:IgnoresTimeout", "test_map.py", "map(timeout=...) never times out"),
    Broken(f"{__name__}:DropsLastChunk", "test_map.py", "chunksize drops a last partial chunk"),
    Broken(
        f"{__name__}:RefillsTwice", "test_map_buffersize.py", "buffersize: the input runs ahead"
    ),
    Broken(
        f"{__name__}:BufferWithoutChecks", "test_map_buffersize.py", "buffersize=0 is not refused"
    ),
]

RACE_ONLY_CASES = [
    Broken(
        f"{__name__}:DeadlineFromFirstNext",
        "test_map.py",
        "the timeout counts from the first next(), not from the call",
        race_only=True,
    ),
]
