"""``map(fn, *iterables, buffersize=k)`` (Python 3.14's ``Executor.map``) on both pools.

As documented for 3.14: with a *buffersize* the iterables are consumed lazily; at most
*buffersize* submitted calls wait to be yielded, and the iteration over the iterables pauses
until a result is taken from the buffer, so an endless iterable works.  The process pool counts
chunks.  ``TypeError`` if *buffersize* is not an integer or None, ``ValueError`` if it is below
1.  Leaving the iterator early cancels the buffered calls that have not started.

Each test runs on executor_impl and on the stdlib; the stdlib's pools before 3.14 do not take
the keyword, which a probe finds (it tries the keyword), and then the test is skipped.
Nothing sleeps: a recorder counts what was read from the input and what finished; calls that
must stay outstanding wait at a gate.
"""

from __future__ import annotations

import gc
import itertools
import math
import threading
from typing import TYPE_CHECKING, Any

import pytest

from ._helpers import SHORT_TIMEOUT, FuturesAPI, wait_for
from ._process_tasks import identity

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Executor

    from ._process_helpers import ProcessPools


def buffered(pool: Executor) -> Any:
    """``pool.map``, typed loosely: typeshed's ``map()`` has no buffersize before 3.14."""
    return pool.map


def skip_without_buffersize(pool: Executor) -> None:
    """Skip the test if *pool*'s map() does not take ``buffersize`` (probed by trying it)."""
    try:
        buffered(pool)(str, [], buffersize=1)
    except TypeError as exc:
        pytest.skip(f"capability absent: map() takes no buffersize ({exc})")


class Recorder:
    """An endless input that records, at every item read, how many calls had finished."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished = 0
        self.reads: list[tuple[int, int]] = []  # (item read, calls finished by then)

    def endless(self) -> Iterator[int]:
        for n in itertools.count():
            with self.lock:
                self.reads.append((n, self.finished))
            yield n

    def square(self, n: int) -> int:
        with self.lock:
            self.finished += 1
        return n * n


# ---------------------------------------------------------------------------------------------
# Laziness and the bound


@pytest.mark.parametrize("buffersize", [1, 3])
def test_an_endless_input_through_a_thread_pool_yields_in_order_within_buffersize(
    cf: FuturesAPI, buffersize: int
) -> None:
    recorder = Recorder()
    with cf.ThreadPoolExecutor(max_workers=4) as pool:
        skip_without_buffersize(pool)
        results = buffered(pool)(recorder.square, recorder.endless(), buffersize=buffersize)
        assert len(recorder.reads) == buffersize, "map() read more than the first buffer"
        for taken in range(1, 40):
            assert next(results) == (taken - 1) ** 2
            assert len(recorder.reads) <= taken + buffersize, (
                f"{len(recorder.reads)} items read after {taken} results with "
                f"buffersize={buffersize}"
            )
        results.close()


@pytest.mark.parametrize("buffersize", [1, 3])
def test_executor_impl_submits_the_next_call_only_once_a_result_was_taken(
    impl: FuturesAPI, make_event: Callable[[], threading.Event], buffersize: int
) -> None:
    """executor_impl only: the bound holds even while next() waits.  The stdlib (3.14)
    submits the next call first and waits with buffersize + 1 calls outstanding (CPython
    gh-131466); each call here waits until the test lets it finish, just before next()."""
    recorder = Recorder()
    releases = [make_event() for _ in range(30 + buffersize)]

    def gated_square(n: int) -> int:
        wait_for(releases[n], f"the release of call {n}")
        return recorder.square(n)

    with impl.ThreadPoolExecutor(max_workers=4) as pool:
        results = buffered(pool)(gated_square, recorder.endless(), buffersize=buffersize)
        for n in range(30):
            releases[n].set()
            assert next(results) == n * n
        results.close()
        for release in releases:
            release.set()
    # Item n is read to submit a call: by then the calls of the results already taken
    # finished, so no more than buffersize calls were ever submitted and not yet taken.
    over = [(n, done) for n, done in recorder.reads if n + 1 - done > buffersize]
    assert not over, f"(item read, calls finished) over the bound of {buffersize}: {over}"


@pytest.mark.parametrize(("buffersize", "chunksize"), [(1, 1), (2, 1), (2, 3)])
def test_an_endless_input_through_a_process_pool_yields_in_order_within_buffersize_chunks(
    cf: FuturesAPI, process_pools: ProcessPools, buffersize: int, chunksize: int
) -> None:
    pool = process_pools.make(cf)
    skip_without_buffersize(pool)
    reads: list[int] = []

    def endless() -> Iterator[int]:
        for n in itertools.count():
            reads.append(n)
            yield n

    results = buffered(pool)(identity, endless(), chunksize=chunksize, buffersize=buffersize)
    bound = buffersize * chunksize
    assert len(reads) <= bound, f"map() read {len(reads)} items, more than {bound}"
    for taken in range(1, 25):
        assert next(results, None) == taken - 1
        # The chunk of the result just taken is out of the buffer; the buffer holds the rest.
        chunks_taken = math.ceil(taken / chunksize)
        assert len(reads) <= (chunks_taken + buffersize) * chunksize, (
            f"{len(reads)} items read after {taken} results with buffersize={buffersize}, "
            f"chunksize={chunksize}"
        )
    results.close()


def test_a_buffered_map_reads_no_more_than_the_buffer_before_the_first_result(
    cf: FuturesAPI,
) -> None:
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        skip_without_buffersize(pool)
        items = iter(range(10))
        results = buffered(pool)(str, items, buffersize=3)
        assert next(items) == 3, "map() should have read exactly buffersize items"
        assert list(results) == ["0", "1", "2", "4", "5", "6", "7", "8", "9"]


@pytest.mark.parametrize("buffersize", [1, 2, 4, 8])
def test_a_buffered_map_of_finite_inputs_equals_the_builtin_map(
    cf: FuturesAPI, buffersize: int
) -> None:
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        skip_without_buffersize(pool)
        assert list(buffered(pool)(pow, range(4), [2, 3], buffersize=buffersize)) == [0, 1]
        assert list(buffered(pool)(str, [], buffersize=buffersize)) == []
        assert list(buffered(pool)(str, buffersize=buffersize)) == []


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("buffersize", "error", "message"),
    [
        ("foo", TypeError, r"^buffersize must be an integer or None"),
        (2.0, TypeError, r"^buffersize must be an integer or None"),
        (0, ValueError, r"^buffersize must be None or > 0"),
        (-1, ValueError, r"^buffersize must be None or > 0"),
    ],
)
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_bad_buffersize_raises_before_anything_is_read_or_submitted(
    cf: FuturesAPI,
    process_pools: ProcessPools,
    kind: str,
    buffersize: object,
    error: type[Exception],
    message: str,
) -> None:
    pool: Executor
    pool = cf.ThreadPoolExecutor(max_workers=1) if kind == "thread" else process_pools.make(cf)
    with pool:
        skip_without_buffersize(pool)
        items = iter(range(3))
        with pytest.raises(error, match=message):
            buffered(pool)(str, items, buffersize=buffersize)
        assert next(items) == 0, "map() read its input although the buffersize was bad"


def test_the_process_pool_checks_chunksize_before_buffersize(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    pool = process_pools.make(cf)
    skip_without_buffersize(pool)
    with pytest.raises(ValueError, match=r"^chunksize must be >= 1\.$"):
        buffered(pool)(str, range(3), chunksize=0, buffersize=0)


# ---------------------------------------------------------------------------------------------
# Leaving early


@pytest.mark.parametrize("leave", ["close", "garbage collection"])
def test_leaving_a_buffered_map_early_cancels_the_buffered_calls_and_reads_no_further(
    cf: FuturesAPI, make_event: Callable[[], threading.Event], leave: str
) -> None:
    started: list[int] = []
    running = make_event()
    release = make_event()

    def task(i: int) -> int:
        started.append(i)
        if i == 1:
            running.set()
            wait_for(release, "the release of call 1")
        return i

    items = iter(range(100))
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        skip_without_buffersize(pool)
        held = [buffered(pool)(task, items, buffersize=3)]
        assert next(held[0]) == 0
        wait_for(running, "call 1 to start")
        # Call 1 runs; calls 2 and 3 wait in the buffer behind it.
        if leave == "close":
            held[0].close()
        else:
            held.clear()
            gc.collect()
        release.set()
    assert started == [0, 1], "the buffered calls were not cancelled"
    assert next(items) == 4, "the input was read after the iterator was left"


def test_a_buffered_map_times_out_from_the_call_to_map_and_cancels_the_buffer(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    release = make_event()
    started: list[int] = []

    def task(i: int) -> int:
        started.append(i)
        wait_for(release, f"the release of call {i}")
        return i

    items = iter(range(100))
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        skip_without_buffersize(pool)
        results = buffered(pool)(task, items, timeout=SHORT_TIMEOUT, buffersize=2)
        with pytest.raises(cf.TimeoutError):
            next(results)
        release.set()
    assert started == [0], "the buffered call ran after the timeout"
    assert next(items) in (2, 3), "the input was read past the buffer after a timeout"


@pytest.mark.parametrize("chunksize", [1, 2])
def test_closing_a_buffered_process_map_reads_no_further(
    cf: FuturesAPI, process_pools: ProcessPools, chunksize: int
) -> None:
    pool = process_pools.make(cf, max_workers=1)
    skip_without_buffersize(pool)
    items = iter(range(100))
    results = buffered(pool)(identity, items, chunksize=chunksize, buffersize=2)
    assert next(results) == 0
    results.close()
    pool.shutdown(wait=True)
    # The first chunk was taken and one more submitted in its place: three chunks read.
    assert next(items) == 3 * chunksize, "the input was read after the iterator was closed"
