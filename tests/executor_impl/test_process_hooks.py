"""executor_impl.process: its testing hooks, and what it does when its one thread cannot start.

``worker_pids(pool)`` and ``inject_crash(pool, point)`` are how the plugin and our tests reach
into a pool; ``pool._processes`` mirrors the stdlib's attribute that code in the wild reads.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from typing import TYPE_CHECKING, Any

import pytest

import executor_impl
from executor_impl import _sync, process

if TYPE_CHECKING:
    from collections.abc import Callable

LONG_WAIT = 30.0


def test_inject_crash_rejects_an_unknown_point_naming_it_and_the_valid_ones() -> None:
    with executor_impl.ProcessPoolExecutor(max_workers=1) as pool:
        with pytest.raises(ValueError, match=r"'nowhere'.*task_received"):
            process.inject_crash(pool, "nowhere")
        assert pool.submit(abs, -3).result(timeout=LONG_WAIT) == 3


def test_worker_pids_and_processes_name_the_live_workers() -> None:
    with executor_impl.ProcessPoolExecutor(max_workers=1) as pool:
        assert process.worker_pids(pool) == []
        pid = pool.submit(os.getpid).result(timeout=LONG_WAIT)
        assert process.worker_pids(pool) == [pid]
        assert list(pool._processes) == [pid]
        assert pool._processes[pid].pid == pid
    assert process.worker_pids(pool) == []


# 3.12+ warns when a process with threads (pytest's faulthandler watchdog) forks.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_manager_thread_that_cannot_start_breaks_the_pool_without_leaking_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At interpreter shutdown no thread can start (CPython gh-109047): submit must then
    raise BrokenProcessPool, and the workers already forked must be ended."""

    def refuse(name: str, target: Callable[..., object], args: tuple[Any, ...]) -> Any:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    before = set(multiprocessing.active_children())
    monkeypatch.setattr(_sync, "start_thread", refuse)
    pool = executor_impl.ProcessPoolExecutor(
        max_workers=2, mp_context=multiprocessing.get_context("fork")
    )
    with pytest.raises(process.BrokenProcessPool):
        pool.submit(abs, -1)
    with pytest.raises(process.BrokenProcessPool):
        pool.submit(abs, -1)
    pool.shutdown(wait=True)
    assert set(multiprocessing.active_children()) <= before


def test_a_pool_collected_by_the_cycle_collector_stops_its_manager_thread() -> None:
    """The weak reference that tells the manager its executor is gone must outlive the
    executor even when the executor dies in a garbage cycle."""
    pool = executor_impl.ProcessPoolExecutor(max_workers=1)
    pool.cycle = pool  # type: ignore[attr-defined]  # garbage only for the cycle collector
    assert pool.submit(abs, -2).result(timeout=LONG_WAIT) == 2
    manager = pool._state.manager
    del pool
    gc.collect()
    manager.join(timeout=LONG_WAIT)
    assert not manager.is_alive(), "the manager thread outlived its collected executor"
