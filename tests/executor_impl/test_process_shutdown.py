"""ProcessPoolExecutor.shutdown() and interpreter exit (executor_impl/process.py), side by
side with the stdlib's.

As documented: ``shutdown(wait=True, *, cancel_futures=False)`` signals the executor to free
its resources once the pending futures are done; later calls to submit() raise
RuntimeError; it may be called more than once. With *wait* it returns only when every pending
future is done and the resources are freed. With *cancel_futures* it cancels the pending
futures that the pool has not started. ``with pool:`` calls ``shutdown(wait=True)`` on the
way out. Whatever *wait*, the interpreter does not exit before every pending future is done.
"""

from __future__ import annotations

import functools
import gc
import queue
import threading
from typing import TYPE_CHECKING, Any

import pytest

from ._helpers import (
    LONG_WAIT,
    BackgroundCall,
    FuturesAPI,
    is_stdlib,
    set_once_shut_down,
    wait_for,
    xfail_stdlib_if,
)
from ._process_helpers import (
    CONTEXTS,
    DEFAULT_CONTEXT,
    FORK_WARNING,
    ProcessPools,
    broken_process_pool_error,
    entered,
    kill,
    run_python,
    stdlib_process_shutdown_leaves_cancelled_futures_unnotified,
    stdlib_races_its_wakeup_pipe_at_exit,
    wait_until_gone,
    without_the_stdlib_wakeup_race_report,
)
from ._process_tasks import block, identity

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ._process_tasks import Gate

pytestmark = [pytest.mark.usefixtures("process_pools"), pytest.mark.filterwarnings(FORK_WARNING)]


def drain(gate: Gate) -> list[int]:
    """The pids of the workers that entered *gate* and were not counted yet."""
    pids = []
    while True:
        try:
            pids.append(gate.entered.get_nowait())
        except queue.Empty:
            return pids


# ---------------------------------------------------------------------------------------------
# shutdown()


def test_submit_after_shutdown_raises_runtime_error(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    pool = process_pools.make(cf)
    pool.shutdown()
    with pytest.raises(RuntimeError, match=r"^cannot schedule new futures after shutdown$"):
        pool.submit(identity, 1)


def test_shutdown_can_be_called_again(cf: FuturesAPI, process_pools: ProcessPools) -> None:
    pool = process_pools.make(cf)
    assert pool.submit(identity, 3).result(timeout=LONG_WAIT) == 3
    process_pools.worker_pids(cf, pool)
    pool.shutdown(wait=False)
    pool.shutdown(wait=True)
    pool.shutdown(wait=True, cancel_futures=True)
    with pool:
        pass


def test_shutdown_with_wait_waits_for_the_running_and_queued_tasks_then_for_the_workers(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=1)
    running = pool.submit(block, gate, "blocked")
    queued = [pool.submit(identity, i) for i in range(3)]
    pids = {entered(gate, "the blocking task to start"), *process_pools.worker_pids(cf, pool)}
    releaser = set_once_shut_down(pool, gate.opened)
    pool.shutdown(wait=True)
    assert running.done(), "shutdown(wait=True) returned before the running task finished"
    assert all(f.done() for f in queued), "shutdown(wait=True) returned before queued tasks ran"
    futures: list[Future[Any]] = [running, *queued]
    assert [f.result() for f in futures] == ["blocked", 0, 1, 2]
    assert wait_until_gone(pids, 0) == set(), "shutdown(wait=True) returned before the workers"
    releaser.outcome("the releasing thread to finish")


def test_shutdown_without_wait_returns_while_a_task_runs_and_queued_tasks_still_run(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=1)
    running = pool.submit(block, gate, "blocked")
    queued = [pool.submit(identity, i) for i in range(3)]
    process_pools.observe(entered(gate, "the blocking task to start"))
    process_pools.worker_pids(cf, pool)
    BackgroundCall(lambda: pool.shutdown(wait=False)).outcome("shutdown(wait=False) to return")
    assert not running.done()
    gate.open()
    futures: list[Future[Any]] = [running, *queued]
    assert [f.result(timeout=LONG_WAIT) for f in futures] == ["blocked", 0, 1, 2]


def shut_down_cancelling_a_queue(
    cf: FuturesAPI, process_pools: ProcessPools
) -> tuple[Future[int], list[Future[int]], Gate]:
    """A one-worker pool runs a blocked task with eight more queued behind it when
    ``shutdown(wait=True, cancel_futures=True)`` is called; the blocked task is let through
    once shutdown has begun. Returns (running future, queued futures, gate) once shutdown
    has returned."""
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=1)
    running = pool.submit(block, gate, -1)
    queued = [pool.submit(block, gate, i) for i in range(8)]
    process_pools.observe(entered(gate, "the blocking task to start"))
    process_pools.worker_pids(cf, pool)
    releaser = set_once_shut_down(pool, gate.opened)
    BackgroundCall(functools.partial(pool.shutdown, wait=True, cancel_futures=True)).outcome(
        "shutdown(wait=True, cancel_futures=True) to return"
    )
    releaser.outcome("the releasing thread to finish")
    return running, queued, gate


def test_shutdown_cancel_futures_cancels_the_queued_tasks_that_no_worker_took(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    """A pool may hand a few queued tasks to its workers ahead of time (the stdlib: up to
    max_workers + 1), and those run: the cancelled ones are the last ones queued."""
    running, queued, gate = shut_down_cancelling_a_queue(cf, process_pools)
    assert running.result(timeout=0) == -1
    cancelled = [f.cancelled() for f in queued]
    assert any(cancelled), "shutdown(cancel_futures=True) cancelled nothing"
    assert cancelled == sorted(cancelled), f"the cancelled futures are not the last: {cancelled}"
    ran = [f.result(timeout=0) for f in queued if not f.cancelled()]
    assert ran == list(range(len(ran)))
    # Every task that ran entered the gate once: no cancelled task ran.
    assert len(drain(gate)) == len(ran)


def test_shutdown_cancel_futures_lets_wait_and_as_completed_count_the_cancelled_futures(
    cf: FuturesAPI, process_pools: ProcessPools, request: pytest.FixtureRequest
) -> None:
    """Ours notifies the futures it cancels; the stdlib's process pool only calls cancel(),
    so wait() and as_completed() never count them as done."""
    xfail_stdlib_if(
        request,
        cf,
        stdlib_process_shutdown_leaves_cancelled_futures_unnotified(),
        "gh-136655: ProcessPoolExecutor.shutdown(cancel_futures=True) does not notify waiters",
    )
    _, queued, _ = shut_down_cancelling_a_queue(cf, process_pools)
    assert cf.wait(queued, timeout=0) == (set(queued), set())
    assert set(cf.as_completed(queued, timeout=0)) == set(queued)


NOTIFICATION_BOUND = 2.0
"""Seconds a waiter may take to see futures that shutdown() cancelled. Notification is
prompt; the bound only limits how long the stdlib's strict xfail takes."""


def test_shutdown_cancel_futures_wakes_a_thread_in_as_completed(
    cf: FuturesAPI, process_pools: ProcessPools, request: pytest.FixtureRequest
) -> None:
    """gh-136655's own scenario: a thread iterating as_completed() over queued futures is
    woken by the first one that shutdown cancels. The blocked task is never released here,
    so only a cancellation can wake it."""
    xfail_stdlib_if(
        request,
        cf,
        stdlib_process_shutdown_leaves_cancelled_futures_unnotified(),
        "gh-136655: ProcessPoolExecutor.shutdown(cancel_futures=True) does not notify waiters",
    )
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=1)
    pool.submit(block, gate, "blocked")
    queued = [pool.submit(identity, i) for i in range(8)]
    process_pools.observe(entered(gate, "the blocking task to start"))
    process_pools.worker_pids(cf, pool)

    def first_completed() -> Future[int]:
        return next(cf.as_completed(queued, timeout=NOTIFICATION_BOUND))

    waiter = BackgroundCall(first_completed, name="test-as-completed-waiter")
    pool.shutdown(wait=False, cancel_futures=True)
    assert waiter.outcome("as_completed() to yield a future").cancelled()


def test_with_shuts_the_pool_down_waiting_for_its_tasks_and_its_workers(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    gate = process_pools.gate()
    with process_pools.make(cf, max_workers=2) as pool:
        futures = [pool.submit(block, gate, i) for i in range(4)]
        pids = {entered(gate, "a first task to start"), entered(gate, "a second task to start")}
        pids.update(process_pools.worker_pids(cf, pool))
        releaser = set_once_shut_down(pool, gate.opened)
    assert [f.result(timeout=0) for f in futures] == [0, 1, 2, 3]
    assert wait_until_gone(pids, 0) == set(), "the with block ended before the workers did"
    with pytest.raises(RuntimeError):
        pool.submit(identity, 1)
    releaser.outcome("the releasing thread to finish")


def test_shutdown_returns_when_a_worker_dies_after_it_began(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    """CPython's test_shutdown_deadlock: shutdown(wait=True) waits for a task whose worker
    then dies; the pool breaks and shutdown returns."""
    gate = process_pools.gate()
    pool = process_pools.make(cf, max_workers=1)
    future = pool.submit(block, gate, "never")
    pid = entered(gate, "the blocking task to start")
    process_pools.observe(pid)
    shutting_down = BackgroundCall(pool.shutdown, name="test-shutdown")
    began = threading.Event()
    set_once_shut_down(pool, began).outcome("shutdown() to begin")
    wait_for(began, "shutdown() to begin")
    kill(pid)
    shutting_down.outcome("shutdown(wait=True) to return once the worker died")
    assert isinstance(future.exception(timeout=0), broken_process_pool_error(cf))


def test_the_workers_exit_when_the_pool_is_garbage_collected(
    cf: FuturesAPI, process_pools: ProcessPools
) -> None:
    """CPython's test_del_shutdown: dropping the last reference shuts the pool down, after
    the calls already submitted have run."""
    pool = process_pools.make(cf, max_workers=2)
    results = pool.map(abs, range(-5, 5))
    pids = set(process_pools.worker_pids(cf, pool))
    del pool
    gc.collect()
    assert wait_until_gone(pids, LONG_WAIT) == set(), "a worker outlived its collected pool"
    assert list(results) == [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------------------------
# At interpreter exit (each in a fresh interpreter)

EXIT_SCRIPT = """
import multiprocessing
from {module} import ProcessPoolExecutor
from tests.executor_impl._process_tasks import write_line

if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("{context}"))
    pool.submit(write_line, "first").result(timeout=10)
    for line in ("second", "third", "fourth"):
        pool.submit(write_line, line)
    {ending}
"""


@pytest.mark.parametrize("context", sorted({DEFAULT_CONTEXT, "spawn"} & set(CONTEXTS)))
@pytest.mark.parametrize(
    "ending", ["pass", "pool.shutdown(wait=False)"], ids=["no shutdown", "shutdown(wait=False)"]
)
def test_the_interpreter_exits_after_running_the_tasks_still_pending(
    cf: FuturesAPI, context: str, ending: str
) -> None:
    """CPython's test_interpreter_shutdown and test_shutdown_no_wait: at exit the pending
    tasks run (their output appears), nothing is printed to stderr, exit does not hang.
    Older stdlibs may report a race of their own at exit, which is not what this tests."""
    run = run_python(
        EXIT_SCRIPT.format(module=cf.__name__, context=context, ending=ending), LONG_WAIT
    )
    stderr = run.stderr
    if is_stdlib(cf) and stdlib_races_its_wakeup_pipe_at_exit():
        stderr = without_the_stdlib_wakeup_race_report(stderr)
    assert (run.finished, run.returncode, stderr) == (True, 0, "")
    assert run.stdout.splitlines() == ["first", "second", "third", "fourth"]
