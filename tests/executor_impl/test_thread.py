"""ThreadPoolExecutor (executor_impl/thread.py), side by side with the stdlib's.

As documented: at most *max_workers* threads (default ``min(32, cpu count + 4)``), started on
demand and reused when idle, named ``<thread_name_prefix>_<n>``; *initializer(*initargs)*
runs at the start of each worker, and if it raises, the pool is broken: pending and later
submissions fail with BrokenThreadPool. ``shutdown(wait=True, *, cancel_futures=False)``
refuses new work, optionally cancels the queued work, and waits for the rest.

Thread counts below are read from ``threading.enumerate()`` by each pool's unique name
prefix, never from private attributes.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Callable

import pytest

from ._helpers import (
    LONG_WAIT,
    FalsyError,
    FuturesAPI,
    acquire_within,
    broken_thread_pool_error,
    raise_,
    stdlib_result_swallows_falsy_exceptions,
    wait_for,
    workers,
    xfail_stdlib_if,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


def capture(*args: object, **kwargs: object) -> tuple[tuple[object, ...], dict[str, object]]:
    """A task that returns its arguments."""
    return args, kwargs


# ---------------------------------------------------------------------------------------------
# Construction


def test_max_workers_defaults_to_the_cpu_count_plus_4_capped_at_32(
    cf: FuturesAPI, prefix: str, make_event: Callable[[], threading.Event]
) -> None:
    """The count is os.process_cpu_count() from 3.13, os.cpu_count() before."""
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    expected = min(32, (count or 1) + 4)
    started, release = threading.Semaphore(0), make_event()

    def task() -> None:
        started.release()
        wait_for(release, "the workers to be counted")

    with cf.ThreadPoolExecutor(thread_name_prefix=prefix) as pool:
        futures = [pool.submit(task) for _ in range(expected + 3)]
        for i in range(expected):
            acquire_within(started, f"task {i} of {expected} to start")
        assert len(workers(prefix)) == expected
        release.set()
        assert cf.wait(futures, timeout=LONG_WAIT).not_done == set()


@pytest.mark.parametrize("max_workers", [0, -1])
def test_max_workers_below_one_raises_value_error(cf: FuturesAPI, max_workers: int) -> None:
    with pytest.raises(ValueError, match=r"^max_workers must be greater than 0$"):
        cf.ThreadPoolExecutor(max_workers=max_workers)


def test_a_non_callable_initializer_raises_type_error(cf: FuturesAPI) -> None:
    with pytest.raises(TypeError, match=r"^initializer must be a callable$"):
        cf.ThreadPoolExecutor(initializer="not callable")  # type: ignore[call-overload]


def test_pool_is_an_executor_and_submit_returns_a_future_of_the_same_module(
    cf: FuturesAPI,
) -> None:
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        assert isinstance(pool, cf.Executor)
        future = pool.submit(int, "7")
        assert isinstance(future, cf.Future)
        assert future.result(timeout=LONG_WAIT) == 7


# ---------------------------------------------------------------------------------------------
# Worker threads


def test_thread_name_prefix_names_the_workers_prefix_underscore_index(
    cf: FuturesAPI, prefix: str
) -> None:
    both_running = threading.Barrier(2)

    def task() -> str:
        both_running.wait(timeout=LONG_WAIT)
        return threading.current_thread().name

    with cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix=prefix) as pool:
        futures = [pool.submit(task) for _ in range(2)]
        names = {f.result(timeout=LONG_WAIT) for f in futures}
    assert names == {f"{prefix}_0", f"{prefix}_1"}


def test_default_thread_names_start_with_threadpoolexecutor_and_differ_between_pools(
    cf: FuturesAPI,
) -> None:
    def name() -> str:
        return threading.current_thread().name

    with cf.ThreadPoolExecutor(max_workers=1) as first, cf.ThreadPoolExecutor(1) as second:
        names = [pool.submit(name).result(timeout=LONG_WAIT) for pool in (first, second)]
    for worker_name in names:
        assert re.fullmatch(r"ThreadPoolExecutor-\d+_0", worker_name), worker_name
    assert names[0] != names[1]


def test_tasks_run_in_worker_threads(cf: FuturesAPI, prefix: str) -> None:
    with cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix=prefix) as pool:
        ident = pool.submit(threading.get_ident).result(timeout=LONG_WAIT)
        name = pool.submit(lambda: threading.current_thread().name).result(timeout=LONG_WAIT)
    assert ident != threading.get_ident()
    assert name == f"{prefix}_0"


@pytest.fixture
def long_switch_interval() -> Iterator[None]:
    """Let a thread run until it blocks: a worker that has just set a result then reaches
    its idle state before the waiting test thread resumes (under the GIL)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@pytest.mark.usefixtures("long_switch_interval")
def test_an_idle_worker_is_reused_instead_of_starting_a_new_one(
    cf: FuturesAPI, prefix: str
) -> None:
    with cf.ThreadPoolExecutor(thread_name_prefix=prefix) as pool:
        idents = {pool.submit(threading.get_ident).result(timeout=LONG_WAIT) for _ in range(3)}
        assert len(workers(prefix)) == 1
    assert len(idents) == 1


def test_never_more_than_max_workers_tasks_run_at_once(
    cf: FuturesAPI, prefix: str, make_event: Callable[[], threading.Event]
) -> None:
    lock = threading.Lock()
    running, most = [0], [0]
    started, release = threading.Semaphore(0), make_event()

    def task() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        started.release()
        wait_for(release, "the workers to be counted")
        with lock:
            running[0] -= 1

    with cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix=prefix) as pool:
        futures = [pool.submit(task) for _ in range(6)]
        acquire_within(started, "a first task to start")
        acquire_within(started, "a second task to start")
        assert len(workers(prefix)) == 2
        release.set()
        assert cf.wait(futures, timeout=LONG_WAIT).not_done == set()
    assert most[0] == 2


def test_initializer_runs_with_initargs_in_each_worker_before_its_tasks(
    cf: FuturesAPI, prefix: str
) -> None:
    local = threading.local()
    initialized_threads: list[str] = []
    both_running = threading.Barrier(2)

    def initializer(value: str, other: int) -> None:
        local.value = (value, other)
        initialized_threads.append(threading.current_thread().name)

    def task() -> tuple[tuple[str, int], str]:
        both_running.wait(timeout=LONG_WAIT)
        return local.value, threading.current_thread().name

    with cf.ThreadPoolExecutor(
        max_workers=2, thread_name_prefix=prefix, initializer=initializer, initargs=("set", 2)
    ) as pool:
        results = [f.result(timeout=LONG_WAIT) for f in [pool.submit(task) for _ in range(2)]]
    assert [value for value, _ in results] == [("set", 2), ("set", 2)]
    assert sorted(initialized_threads) == sorted(name for _, name in results)


def test_a_failing_initializer_breaks_the_pool_for_pending_and_later_submissions(
    cf: FuturesAPI, make_event: Callable[[], threading.Event], caplog: pytest.LogCaptureFixture
) -> None:
    """The initializer fails only once every task is queued, so each of them is pending."""
    broken_thread_pool = broken_thread_pool_error(cf)
    all_submitted = make_event()
    ran: list[int] = []

    def initializer() -> None:
        wait_for(all_submitted, "every task to be submitted")
        raise ValueError("initializer failed on purpose")

    caplog.set_level(logging.CRITICAL, logger="concurrent.futures")
    with cf.ThreadPoolExecutor(max_workers=2, initializer=initializer) as pool:
        futures = [pool.submit(ran.append, i) for i in range(4)]
        all_submitted.set()
        for future in futures:
            with pytest.raises(broken_thread_pool, match="initializer"):
                future.result(timeout=LONG_WAIT)
        with pytest.raises(broken_thread_pool, match="initializer"):
            pool.submit(ran.append, 4)
    assert ran == []
    records = [r for r in caplog.records if r.name == "concurrent.futures"]
    assert records
    assert all(r.levelno == logging.CRITICAL for r in records)
    assert all(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in records)


def test_broken_thread_pool_is_a_broken_executor(cf: FuturesAPI) -> None:
    assert issubclass(broken_thread_pool_error(cf), cf.BrokenExecutor)
    assert issubclass(cf.BrokenExecutor, RuntimeError)


def test_idle_workers_exit_when_the_pool_is_garbage_collected(cf: FuturesAPI, prefix: str) -> None:
    """CPython's test_del_shutdown: dropping the last reference shuts the pool down."""
    pool = cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix=prefix)
    results = pool.map(abs, range(-5, 5))
    threads = workers(prefix)
    assert threads
    del pool
    gc.collect()
    for thread in threads:
        thread.join(timeout=LONG_WAIT)
        assert not thread.is_alive(), f"{thread.name} outlived its garbage-collected pool"
    assert list(results) == [abs(i) for i in range(-5, 5)]


def test_a_worker_keeps_no_reference_to_a_finished_task(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    """CPython issue 16284: the callable and its arguments are freed once the task ran."""

    class Payload:
        def method(self) -> None:
            pass

    payload = Payload()
    collected = make_event()
    ref = weakref.ref(payload, lambda _: collected.set())
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(payload.method).result(timeout=LONG_WAIT)
        del payload
        wait_for(collected, "the finished task's callable to be freed")
    assert ref() is None


# ---------------------------------------------------------------------------------------------
# submit()


def test_submit_passes_positional_and_keyword_arguments_including_fn_and_self(
    cf: FuturesAPI,
) -> None:
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(capture, 1, "two", fn=3, self=4, kw="five")
        assert future.result(timeout=LONG_WAIT) == ((1, "two"), {"fn": 3, "self": 4, "kw": "five"})


def test_submit_takes_the_callable_positionally_only(cf: FuturesAPI) -> None:
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(TypeError):
            pool.submit(fn=capture, arg=1)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            pool.submit()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "error",
    [KeyboardInterrupt(), SystemExit(3), GeneratorExit()],
    ids=["KeyboardInterrupt", "SystemExit", "GeneratorExit"],
)
def test_a_base_exception_raised_by_a_task_reaches_its_future_and_the_worker_survives(
    cf: FuturesAPI, error: BaseException
) -> None:
    """With one worker, the second task runs only if the first one's worker survived."""

    class TaskError(type(error)):  # type: ignore[misc]  # a subclass of the param's class
        pass

    raised = TaskError()
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(raise_(raised))
        with pytest.raises(TaskError) as excinfo:
            future.result(timeout=LONG_WAIT)
        assert excinfo.value is raised
        assert future.exception() is raised
        assert pool.submit(int, "1").result(timeout=LONG_WAIT) == 1


def test_a_task_raising_an_exception_whose_bool_is_false_fails_its_future(
    cf: FuturesAPI, request: pytest.FixtureRequest
) -> None:
    """Ours raises it from result(); the stdlib returns None (gh-132063)."""
    xfail_stdlib_if(
        request,
        cf,
        stdlib_result_swallows_falsy_exceptions(),
        "gh-132063: Future.result() returns None for an exception whose bool() is False",
    )
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(raise_(FalsyError("falsy")))
        assert isinstance(future.exception(timeout=LONG_WAIT), FalsyError)
        with pytest.raises(FalsyError):
            future.result(timeout=LONG_WAIT)


def test_a_future_cancelled_while_queued_never_runs_and_then_counts_as_done(
    cf: FuturesAPI, make_event: Callable[[], threading.Event]
) -> None:
    """The worker that reaches the cancelled work item notifies its waiters."""
    started, release = make_event(), make_event()
    ran: list[str] = []

    def block() -> None:
        started.set()
        wait_for(release, "the queued task to be cancelled")

    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        busy = pool.submit(block)
        queued = pool.submit(ran.append, "queued")
        wait_for(started, "the blocking task to start")
        assert queued.cancel()
        release.set()
        assert cf.wait([queued], timeout=LONG_WAIT) == ({queued}, set())
        busy.result(timeout=LONG_WAIT)
    assert ran == []
