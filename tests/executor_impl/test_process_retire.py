"""Workers retired by max_tasks_per_child are replaced whatever became of the executor.

CPython gh-115634 / gh-152967: the stdlib's process pool replaces a retiring worker through
the executor object, so after ``shutdown(wait=False)`` or once the executor is garbage
collected, the calls still queued are never run and their futures never resolve.
executor_impl's manager thread owns the pool's state, so the queued calls still run.
These test ours only: on the stdlib they would wait out their bound.
"""

from __future__ import annotations

import gc
import multiprocessing
import os

import pytest

import executor_impl

LONG_WAIT = 60.0
CALLS = 4


def pending_pids(pool: executor_impl.ProcessPoolExecutor) -> list[executor_impl.Future[int]]:
    return [pool.submit(os.getpid) for _ in range(CALLS)]


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_queued_calls_run_after_shutdown_without_wait_while_workers_retire(
    start_method: str,
) -> None:
    pool = executor_impl.ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context(start_method),
        max_tasks_per_child=1,
    )
    futures = pending_pids(pool)
    pool.shutdown(wait=False)
    pids = [f.result(timeout=LONG_WAIT) for f in futures]
    assert len(set(pids)) == CALLS, f"each call should run in a fresh worker: {pids}"
    pool.shutdown(wait=True)


def test_queued_calls_run_after_the_executor_is_collected_while_workers_retire() -> None:
    pool = executor_impl.ProcessPoolExecutor(max_workers=1, max_tasks_per_child=1)
    futures = pending_pids(pool)
    del pool
    gc.collect()
    pids = [f.result(timeout=LONG_WAIT) for f in futures]
    assert len(set(pids)) == CALLS, f"each call should run in a fresh worker: {pids}"
