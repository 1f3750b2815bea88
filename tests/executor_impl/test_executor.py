"""Executor (executor_impl/_executor.py): map() and the context manager, side by side with the
stdlib.

As documented: ``map(fn, *iterables, timeout=None, chunksize=1)`` submits every call at once
and returns an iterator of the results in input order; a call's exception is raised when its
result is reached; TimeoutError if a result is not there *timeout* seconds after the original
call to map(); leaving the iterator early cancels the calls that have not started.
``with executor:`` calls ``shutdown(wait=True)`` on the way out and does not swallow errors.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import weakref
from typing import TYPE_CHECKING, Any, Callable, cast

import pytest

from ._helpers import (
    LONG_WAIT,
    SHORT_TIMEOUT,
    FuturesAPI,
    set_once_shut_down,
    stdlib_map_leaves_timed_out_future_uncancelled,
    wait_for,
    xfail_stdlib_if,
)

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator
    from concurrent.futures import Executor, Future


def inline_executor_class(cf: FuturesAPI) -> type[Executor]:
    """A minimal Executor of *cf* that runs each call inside submit() and records shutdowns.

    It implements only submit() and shutdown(), the two methods a subclass must provide,
    so map() and the context manager under test are the base class's.
    """

    def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = cf.Future()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)
        return future

    def shutdown(self: Any, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.shutdowns.append({"wait": wait, "cancel_futures": cancel_futures})

    namespace = {"submit": submit, "shutdown": shutdown, "shutdowns": []}
    return cast("type[Executor]", type("InlineExecutor", (cf.Executor,), namespace))


# ---------------------------------------------------------------------------------------------
# The base class


def test_base_executor_submit_raises_not_implemented_error(cf: FuturesAPI) -> None:
    with pytest.raises(NotImplementedError):
        cf.Executor().submit(int)


def test_base_executor_shutdown_accepts_wait_and_cancel_futures_and_does_nothing(
    cf: FuturesAPI,
) -> None:
    executor = cf.Executor()
    executor.shutdown()
    executor.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(NotImplementedError):
        executor.submit(int)


def test_map_works_on_any_executor_that_implements_submit(cf: FuturesAPI) -> None:
    executor = inline_executor_class(cf)()
    assert list(executor.map(pow, [2, 3, 4], [5, 2, 0])) == [32, 9, 1]


def test_context_manager_returns_the_executor_and_calls_shutdown_with_wait_true(
    cf: FuturesAPI,
) -> None:
    executor = inline_executor_class(cf)()
    with executor as entered:
        assert entered is executor
        assert cast("Any", executor).shutdowns == []
    assert cast("Any", executor).shutdowns == [{"wait": True, "cancel_futures": False}]


def test_context_manager_shuts_down_and_lets_an_error_propagate(cf: FuturesAPI) -> None:
    executor = inline_executor_class(cf)()
    with pytest.raises(KeyError, match="from the with block"), executor:
        raise KeyError("from the with block")
    assert cast("Any", executor).shutdowns == [{"wait": True, "cancel_futures": False}]


# ---------------------------------------------------------------------------------------------
# map() on a thread pool


def test_map_yields_results_in_input_order_whatever_the_completion_order(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    releases = [make_event() for _ in range(3)]
    finished = [make_event() for _ in range(3)]
    completion_order: list[int] = []

    def task(i: int) -> str:
        wait_for(releases[i], f"the release of task {i}")
        completion_order.append(i)
        finished[i].set()
        return f"result {i}"

    with cf.ThreadPoolExecutor(max_workers=3) as pool:
        results = pool.map(task, range(3), timeout=LONG_WAIT)
        for i in (2, 0, 1):
            releases[i].set()
            wait_for(finished[i], f"task {i} to finish")
        assert list(results) == ["result 0", "result 1", "result 2"]
    assert completion_order == [2, 0, 1]


def test_map_takes_one_argument_from_each_iterable_and_stops_at_the_shortest(
    cf: FuturesAPI,
) -> None:
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(pow, [2, 3, 4], [1, 2])) == [2, 9]
        assert list(pool.map(pow, [2, 3], itertools.count(1))) == [2, 9]
        assert list(pool.map(divmod, [], [1])) == []


def test_map_accepts_chunksize_and_ignores_it_on_threads(cf: FuturesAPI) -> None:
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(pow, range(10), range(10), chunksize=3)) == [
            pow(i, i) for i in range(10)
        ]


def test_map_submits_every_call_before_the_first_result_is_asked_for(cf: FuturesAPI) -> None:
    """CPython issue 11777: the calls run even if the iterator is never used."""
    ran: list[int] = []
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        pool.map(ran.append, range(10))
    assert sorted(ran) == list(range(10))


def test_map_raises_a_calls_exception_when_its_position_is_reached(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    """The failing call finishes first; the results before it are still delivered."""
    failed = make_event()

    def task(divisor: int) -> float:
        if divisor == 0:
            failed.set()
            return 1 / divisor
        wait_for(failed, "the failing call to finish first")
        return 1 / divisor

    with cf.ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(task, [1, 2, 0, 4])
        assert next(results) == 1.0
        assert next(results) == 0.5
        with pytest.raises(ZeroDivisionError):
            next(results)
        with pytest.raises(StopIteration):
            next(results)


def test_map_cancels_the_calls_not_started_when_a_result_raises(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    """The single worker is busy with call 1 when call 0's error is raised, so calls 2 and 3
    are still queued and must never run."""
    second_started, release = make_event(), make_event()
    ran: list[int] = []

    def task(i: int) -> int:
        ran.append(i)
        if i == 0:
            raise ValueError("first call fails")
        second_started.set()
        wait_for(release, "the end of the test")
        return i

    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        results = pool.map(task, range(4))
        wait_for(second_started, "call 1 to start")
        with pytest.raises(ValueError, match="first call fails"):
            next(results)
        release.set()
    assert not {2, 3} & set(ran), f"calls ran after map's iterator was left: {ran}"


def test_map_cancels_the_calls_not_started_when_the_iterator_is_closed(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    """The single worker is busy with call 1 when the iterator is closed, so calls 2 and 3
    are still queued and must never run."""
    second_started, release = make_event(), make_event()
    ran: list[int] = []

    def task(i: int) -> int:
        ran.append(i)
        if i == 1:
            second_started.set()
            wait_for(release, "the iterator to be closed")
        return i

    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        results = pool.map(task, range(4))
        assert next(results) == 0
        wait_for(second_started, "call 1 to start")
        results.close()  # type: ignore[attr-defined]  # a generator, typed as an Iterator
        release.set()
    assert not {2, 3} & set(ran), f"calls ran after map's iterator was closed: {ran}"


def test_map_keeps_no_reference_to_the_results_it_yielded(cf: FuturesAPI) -> None:
    """CPython issue 14406: a long map() must not keep every result alive."""

    class Result:
        pass

    collected: list[bool] = []
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        for result in pool.map(lambda i: Result(), range(5)):
            ref = weakref.ref(result)
            del result
            gc.collect()
            collected.append(ref() is None)
    assert collected == [True] * 5


def test_map_raises_runtime_error_at_once_after_shutdown(cf: FuturesAPI) -> None:
    """map() submits eagerly, so the error comes from the call itself."""
    pool = cf.ThreadPoolExecutor(max_workers=1)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        pool.map(int, ["1"])


# ---------------------------------------------------------------------------------------------
# map() with a timeout


def started_tasks(ready: Iterator[int], finished: threading.Event) -> Iterator[int]:
    """Yield 0, then, once *finished* is set, the rest of *ready*: map() consumes its input
    while submitting, so map() returns only after the task for 0 has finished."""
    yield 0
    wait_for(finished, "the task for 0 to finish")
    yield from ready


@pytest.mark.parametrize("timeout", [0, SHORT_TIMEOUT])
def test_map_timeout_delivers_finished_results_then_raises_timeout_error(
    cf: FuturesAPI, make_event: Callable[[], threading.Event], timeout: float
) -> None:
    finished, release = make_event(), make_event()

    def task(i: int) -> int:
        if i == 0:
            finished.set()
        else:
            wait_for(release, "the end of the test")
        return i

    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(task, started_tasks(iter([1]), finished), timeout=timeout)
        assert next(results) == 0
        with pytest.raises(cf.TimeoutError):
            next(results)
        release.set()


def test_map_timeout_cancels_the_timed_out_call_and_the_ones_after_it(
    cf: FuturesAPI, make_event: Callable[[], threading.Event], request: pytest.FixtureRequest
) -> None:
    """A pool busy with another task: every call of map() is still queued when its
    result times out, so none of them may ever run (gh-95166)."""
    xfail_stdlib_if(
        request,
        cf,
        stdlib_map_leaves_timed_out_future_uncancelled(),
        "gh-95166: map() leaves the future whose result() timed out uncancelled",
    )
    started, release = make_event(), make_event()
    ran: list[str] = []

    def block() -> None:
        started.set()
        wait_for(release, "the map() iterator to time out")

    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        busy = pool.submit(block)
        wait_for(started, "the blocking task to start")
        results = pool.map(ran.append, ["second", "third"], timeout=0)
        with contextlib.closing(results), pytest.raises(cf.TimeoutError):  # type: ignore[type-var]  # a generator, typed as an Iterator
            next(results)
        release.set()
        busy.result(timeout=LONG_WAIT)
    assert ran == []


# ---------------------------------------------------------------------------------------------
# The context manager on a thread pool


def test_with_block_waits_for_running_tasks_and_then_refuses_new_ones(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    started, release = make_event(), make_event()

    def task() -> str:
        started.set()
        wait_for(release, "the with block to end")
        return "done"

    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(task)
        wait_for(started, "the task to start")
        releaser = set_once_shut_down(pool, release)
    assert future.done(), "the with block ended before its task"
    assert future.result() == "done"
    releaser.outcome("the releasing thread to finish")
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        pool.submit(int)
