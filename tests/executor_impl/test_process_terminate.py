"""ProcessPoolExecutor.terminate_workers() and kill_workers() (executor_impl/process.py).

New in Python 3.14's ``concurrent.futures``, offered by executor_impl on every version (so
these tests run on executor_impl alone: the stdlib here is 3.13 at most). As documented:
"Attempt to terminate all living worker processes immediately by calling
Process.terminate() [Process.kill()] on each of them. Internally, it will also call
Executor.shutdown() to ensure that all other resources associated with the executor are
freed. After calling this method the caller should no longer submit tasks to the executor."

What these tests hold the pool to, on every start method: the calls no worker started are
cancelled, the calls sent to a worker fail with BrokenProcessPool (by the time the method
returns), the pool refuses new calls, every worker process ends and is reaped, nothing
hangs; with no worker alive (never started, or after ``shutdown()``) only the shutdown
remains.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

import pytest

from executor_impl._process_manager import PREFETCH

from ._helpers import LONG_WAIT, BackgroundCall, FuturesAPI
from ._process_helpers import (
    CONTEXTS,
    FORK_WARNING,
    ProcessPools,
    broken_process_pool_error,
    entered,
    wait_until_gone,
)
from ._process_tasks import block, identity, ignore_sigterm_and_block

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

pytestmark = [pytest.mark.usefixtures("process_pools"), pytest.mark.filterwarnings(FORK_WARNING)]

AFTER_SHUTDOWN = "cannot schedule new futures after shutdown"

SIGNALS = {"terminate_workers": signal.SIGTERM, "kill_workers": signal.SIGKILL}
"""Each method, and the signal that ends the workers."""


def stop(pool: ProcessPoolExecutor, method: str) -> None:
    """``pool.terminate_workers()`` or ``pool.kill_workers()``, which must return within
    ``LONG_WAIT`` (it never waits for a call)."""
    BackgroundCall(getattr(pool, method)).outcome(f"{method}() to return")


def assert_refuses_new_calls(impl: FuturesAPI, pool: ProcessPoolExecutor, error: type) -> None:
    with pytest.raises(error):
        pool.submit(identity, "late")
    with pytest.raises(error):
        pool.map(identity, ["late", "later"])


@pytest.mark.parametrize("method", sorted(SIGNALS))
@pytest.mark.parametrize("context", CONTEXTS)
def test_stopping_the_workers_fails_the_calls_they_had_and_cancels_the_queued_ones(
    impl: FuturesAPI, process_pools: ProcessPools, context: str, method: str
) -> None:
    broken = broken_process_pool_error(impl)
    gate = process_pools.gate()
    pool = process_pools.make(impl, context=context, max_workers=2)
    running = [pool.submit(block, gate, i) for i in range(2)]
    # Each busy worker takes PREFETCH calls more; the rest wait in the pool.
    queued = [pool.submit(identity, i) for i in range(2 * PREFETCH + 3)]
    pids = {entered(gate, "the first call to start"), entered(gate, "the second call to start")}
    process_pools.observe(*pids)
    workers = dict(pool._processes)  # pid -> Process, the stdlib's attribute
    assert set(workers) == pids

    stop(pool, method)

    futures: list[Future[Any]] = [*running, *queued]
    assert [f for f in futures if not f.done()] == [], "not done when the method returned"
    for future in running:
        assert isinstance(future.exception(timeout=0), broken), future
    cancelled = [f for f in queued if f.cancelled()]
    assert cancelled, "no call was still queued in the pool"
    assert cancelled == queued[-len(cancelled) :], "a call was cancelled before an earlier one"
    for future in queued[: -len(cancelled)]:
        assert isinstance(future.exception(timeout=0), broken), future
    assert_refuses_new_calls(impl, pool, broken)
    # The pool's manager thread reaps them; no shutdown() needed.
    assert wait_until_gone(pids, LONG_WAIT) == set(), f"workers still running after {method}()"
    BackgroundCall(pool.shutdown).outcome("shutdown() after the workers were stopped")
    assert {pid: w.exitcode for pid, w in workers.items()} == dict.fromkeys(pids, -SIGNALS[method])


@pytest.mark.parametrize("method", sorted(SIGNALS))
def test_a_thread_waiting_for_its_answer_is_woken_with_broken_process_pool(
    impl: FuturesAPI, process_pools: ProcessPools, method: str
) -> None:
    """The call went to an idle worker: its caller reads the answer from the socket itself
    (see executor_impl/_process_direct.py), and must not keep waiting for it."""
    gate = process_pools.gate()
    pool = process_pools.make(impl, max_workers=1)
    future = pool.submit(block, gate, "held")
    process_pools.observe(entered(gate, "the held call to start"))
    waiting = BackgroundCall(future.result, name="test-waits-for-its-answer")
    stop(pool, method)
    with pytest.raises(broken_process_pool_error(impl)):
        waiting.outcome("result() to return once the worker was stopped")


@pytest.mark.parametrize("method", sorted(SIGNALS))
def test_idle_workers_are_stopped_and_finished_calls_keep_their_results(
    impl: FuturesAPI, process_pools: ProcessPools, method: str
) -> None:
    pool = process_pools.make(impl, max_workers=2)
    finished = pool.submit(identity, "done")
    assert finished.result(timeout=LONG_WAIT) == "done"
    pids = set(process_pools.worker_pids(impl, pool))
    assert pids
    stop(pool, method)
    assert finished.result(timeout=0) == "done"
    assert_refuses_new_calls(impl, pool, broken_process_pool_error(impl))
    assert wait_until_gone(pids, LONG_WAIT) == set()


def test_kill_workers_ends_a_worker_that_ignores_sigterm(
    impl: FuturesAPI, process_pools: ProcessPools
) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(impl, max_workers=1)
    future = pool.submit(ignore_sigterm_and_block, gate, "held")
    pid = entered(gate, "the call that ignores SIGTERM to start")
    process_pools.observe(pid)
    stop(pool, "kill_workers")
    assert isinstance(future.exception(timeout=0), broken_process_pool_error(impl))
    assert wait_until_gone({pid}, LONG_WAIT) == set()


@pytest.mark.parametrize("method", sorted(SIGNALS))
def test_on_a_pool_that_never_started_a_worker_it_only_shuts_the_pool_down(
    impl: FuturesAPI, process_pools: ProcessPools, method: str
) -> None:
    pool = process_pools.make(impl, max_workers=2)
    stop(pool, method)
    assert_refuses_new_calls(impl, pool, RuntimeError)
    with pytest.raises(RuntimeError, match=AFTER_SHUTDOWN):
        pool.submit(identity, "late")


@pytest.mark.parametrize("method", sorted(SIGNALS))
def test_after_shutdown_it_is_a_no_op(
    impl: FuturesAPI, process_pools: ProcessPools, method: str
) -> None:
    pool = process_pools.make(impl, max_workers=2)
    finished = pool.submit(identity, "done")
    pool.shutdown(wait=True)
    stop(pool, method)
    stop(pool, method)
    assert finished.result(timeout=0) == "done"
    with pytest.raises(RuntimeError, match=AFTER_SHUTDOWN):
        pool.submit(identity, "late")


@pytest.mark.parametrize("method", sorted(SIGNALS))
def test_after_shutdown_without_waiting_it_still_stops_the_running_calls(
    impl: FuturesAPI, process_pools: ProcessPools, method: str
) -> None:
    """A deliberate difference: the stdlib forgets its workers in ``shutdown()``, so that
    its ``terminate_workers()`` then does nothing and the calls run on."""
    gate = process_pools.gate()
    pool = process_pools.make(impl, max_workers=1)
    future = pool.submit(block, gate, "held")
    pid = entered(gate, "the held call to start")
    process_pools.observe(pid)
    pool.shutdown(wait=False)
    stop(pool, method)
    assert isinstance(future.exception(timeout=0), broken_process_pool_error(impl))
    assert wait_until_gone({pid}, LONG_WAIT) == set()


def test_terminate_then_kill_is_harmless(impl: FuturesAPI, process_pools: ProcessPools) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(impl, max_workers=1)
    future = pool.submit(block, gate, "held")
    pid = entered(gate, "the held call to start")
    process_pools.observe(pid)
    stop(pool, "terminate_workers")
    stop(pool, "kill_workers")
    assert isinstance(future.exception(timeout=0), broken_process_pool_error(impl))
    assert wait_until_gone({pid}, LONG_WAIT) == set()
