#!/usr/bin/env python3
"""Benchmark thread-pool executors against ``concurrent.futures`` in one run.

Every implementation is a module exposing the ``concurrent.futures`` names
(``Future``, ``ThreadPoolExecutor``, ``wait``, ``as_completed``,
``ALL_COMPLETED``).  The first one is the baseline (the stdlib); every other
one is reported as a ratio ``impl / baseline`` next to it, with a column that
says whether a higher or a lower number is better for that metric.

This file holds only the thread-pool and Future measurements; loading the
implementations, running them alternately under a watchdog, the table and the
command line are the shared harness in ``_harness.py``.  Timed regions run
with the garbage collector collected and disabled, and every blocking call has
a timeout.

Usage::

    python3 bench/bench_thread.py --quick
    python3 bench/bench_thread.py --repeat 7 --json results.json
    python3 bench/bench_thread.py --impl myname=some.module
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

# The harness is imported as ``bench._harness``, through the project root, rather than as
# ``_harness`` through this script's own folder (which Python puts first on sys.path): mypy
# checks bench/ with explicit_package_bases from the project root, so the module is called
# bench._harness there, and one spelling then serves both mypy and the runtime.  bench/ has no
# __init__.py and is imported as a namespace package.  The project root must be on sys.path
# before the import; the harness would put it there anyway, so that the working tree's
# executor_impl is benchmarked rather than an installed copy.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import (
    TIMEOUT,
    Benchmark,
    Metric,
    percentile,
    quiet_gc,
    tracing,
    voluntary_switches,
)
from bench._harness import main as harness_main

if TYPE_CHECKING:
    import concurrent.futures as cf
    from collections.abc import Sequence

    from bench._impls import Impl

# Targets (the ``target`` column) are the thread-pool goals set for executor_impl: submit+result
# and map at least 3x the stdlib's rate, a queued task at most a fifth of the stdlib's memory,
# round-trip latency no worse.

#: The names a module must expose to be benchmarked.
REQUIRED_NAMES = ("Future", "ThreadPoolExecutor", "wait", "as_completed", "ALL_COMPLETED")


@dataclass(frozen=True)
class Sizes:
    """Problem sizes for one run (``--quick`` shrinks them all)."""

    tasks: int  # submit+result and map
    latency_iters: int  # timed round trips
    latency_warmup: int  # untimed round trips first
    futures: int  # as_completed, wait and the Future lifecycle
    pending: int  # tasks queued behind a blocked worker (memory)
    pool_cycles: int  # pool construct + shutdown cycles


FULL = Sizes(
    tasks=20_000,
    latency_iters=5_000,
    latency_warmup=500,
    futures=50_000,
    pending=20_000,
    pool_cycles=50,
)
QUICK = Sizes(
    tasks=2_000, latency_iters=500, latency_warmup=50, futures=5_000, pending=2_000, pool_cycles=10
)


def _identity(x: int) -> int:
    return x


def _noop_callback(_f: cf.Future[Any]) -> None:
    pass


def warm_up(ex: cf.Executor, n: int = 200) -> None:
    """Run *n* trivial tasks so every worker thread exists before timing."""
    for f in [ex.submit(_identity, i) for i in range(n)]:
        f.result(timeout=TIMEOUT)


def bench_submit_result(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """Submit K trivial tasks to 4 workers, then ``result()`` each, in order."""
    k = sizes.tasks
    with impl.thread_pool(max_workers=4) as ex:
        warm_up(ex)
        with quiet_gc():
            sw0, cpu0, main0 = voluntary_switches(), time.process_time(), time.thread_time()
            t0 = time.perf_counter()
            fs = [ex.submit(_identity, i) for i in range(k)]
            total = 0
            for f in fs:
                total += f.result(timeout=TIMEOUT)
            t1 = time.perf_counter()
            main1, cpu1, sw1 = time.thread_time(), time.process_time(), voluntary_switches()
    assert total == k * (k - 1) // 2, f"{impl.name}: wrong sum of results {total}"
    return {
        "submit_rate": k / (t1 - t0),
        "submit_cpu": (cpu1 - cpu0) / k * 1e6,
        "submit_main_cpu": (main1 - main0) / k * 1e6,
        "submit_switches": (sw1 - sw0) / k,
    }


def bench_map(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``list(ex.map(fn, range(K)))`` with 4 workers."""
    k = sizes.tasks
    with impl.thread_pool(max_workers=4) as ex:
        warm_up(ex)
        with quiet_gc():
            t0 = time.perf_counter()
            out = list(ex.map(_identity, range(k), timeout=TIMEOUT))
            t1 = time.perf_counter()
    assert out == list(range(k)), f"{impl.name}: map returned wrong results"
    return {"map_rate": k / (t1 - t0)}


def bench_latency(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``ex.submit(fn).result()`` one at a time on a single warm worker."""
    n = sizes.latency_iters
    samples = [0] * n
    with impl.thread_pool(max_workers=1) as ex:
        for i in range(sizes.latency_warmup):
            ex.submit(_identity, i).result(timeout=TIMEOUT)
        with quiet_gc():
            for i in range(n):
                t0 = time.perf_counter_ns()
                ex.submit(_identity, i).result(timeout=TIMEOUT)
                samples[i] = time.perf_counter_ns() - t0
    samples.sort()
    return {
        "latency_p50": percentile(samples, 50) / 1e3,
        "latency_p99": percentile(samples, 99) / 1e3,
    }


def bench_as_completed_pending(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``as_completed`` over N futures that a helper thread completes meanwhile.

    One future is done up front so that the first ``next()`` returns only once
    as_completed has installed its waiter: the other N-1 are then guaranteed
    to complete while it is waiting, whatever the thread scheduling.
    """
    n = sizes.futures
    fs = [impl.future_cls() for _ in range(n)]
    errors: list[BaseException] = []

    def complete_rest() -> None:
        try:
            for i in range(1, n):
                fs[i].set_result(i)
        except BaseException as exc:  # re-raised by the main thread below
            errors.append(exc)

    helper = threading.Thread(target=complete_rest, name="bench-completer", daemon=True)
    with quiet_gc():
        t0 = time.perf_counter()
        fs[0].set_result(0)
        it = impl.as_completed(fs, timeout=TIMEOUT)
        next(it)
        helper.start()
        count = 1
        for _ in it:
            count += 1
        t1 = time.perf_counter()
    helper.join(TIMEOUT)
    assert not helper.is_alive(), "completer thread did not finish"
    assert not errors, f"{impl.name}: set_result raised {errors[0]!r}"
    assert count == n, f"{impl.name}: as_completed yielded {count} of {n}"
    return {"as_completed_pending": (t1 - t0) * 1e3}


def bench_as_completed_done(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``as_completed`` over N futures that are all done before the call."""
    n = sizes.futures
    fs = [impl.future_cls() for _ in range(n)]
    for i, f in enumerate(fs):
        f.set_result(i)
    with quiet_gc():
        t0 = time.perf_counter()
        count = 0
        for _ in impl.as_completed(fs, timeout=TIMEOUT):
            count += 1
        t1 = time.perf_counter()
    assert count == n, f"{impl.name}: as_completed yielded {count} of {n}"
    return {"as_completed_done": (t1 - t0) * 1e3}


def bench_wait_all(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``wait(fs, return_when=ALL_COMPLETED)`` over N done futures."""
    n = sizes.futures
    fs = [impl.future_cls() for _ in range(n)]
    for i, f in enumerate(fs):
        f.set_result(i)
    with quiet_gc():
        t0 = time.perf_counter()
        done, not_done = impl.wait(fs, timeout=TIMEOUT, return_when=impl.all_completed)
        t1 = time.perf_counter()
    assert not not_done, f"{impl.name}: wait left {len(not_done)} not done"
    assert len(done) == n, f"{impl.name}: wait returned {len(done)} of {n} done"
    return {"wait_all_done": (t1 - t0) * 1e3}


def bench_future_lifecycle(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """Per future: create, add a done-callback, ``set_result``, ``result()``."""
    n = sizes.futures
    with quiet_gc():
        t0 = time.perf_counter_ns()
        for i in range(n):
            f = impl.future_cls()
            f.add_done_callback(_noop_callback)
            f.set_result(i)
            f.result(timeout=TIMEOUT)
        t1 = time.perf_counter_ns()
    return {"future_lifecycle": (t1 - t0) / n}


def bench_pool_cycle(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """Construct a 4-worker pool, run one task, ``shutdown(wait=True)``."""
    n = sizes.pool_cycles
    samples: list[float] = []
    for _ in range(n):
        with quiet_gc():
            t0 = time.perf_counter_ns()
            ex = impl.thread_pool(max_workers=4)
            try:
                ex.submit(_identity, 1).result(timeout=TIMEOUT)
            finally:
                ex.shutdown(wait=True)
            samples.append(time.perf_counter_ns() - t0)
    return {"pool_cycle": statistics.median(samples) / 1e3}


def bench_memory(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """tracemalloc bytes per bare ``Future()`` and per queued, unstarted task.

    For the second number the pool's only worker is parked on an Event, so
    every submitted work item (future, callable, args) stays in the queue.
    Slots for the futures are allocated before the baseline is read, so the
    list itself is not counted.
    """
    n = sizes.pending
    slots: list[object] = [None] * n
    with quiet_gc(), tracing():
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            slots[i] = impl.future_cls()
        per_future = (tracemalloc.get_traced_memory()[0] - before) / n
    slots = [None] * n

    release = threading.Event()
    started = threading.Event()

    def blocker() -> None:
        started.set()
        if not release.wait(TIMEOUT):
            raise TimeoutError("blocker was never released")

    ex = impl.thread_pool(max_workers=1)
    try:
        gate = ex.submit(blocker)
        assert started.wait(TIMEOUT), f"{impl.name}: worker never started"
        with quiet_gc(), tracing():
            before = tracemalloc.get_traced_memory()[0]
            for i in range(n):
                slots[i] = ex.submit(_identity, 7)
            per_task = (tracemalloc.get_traced_memory()[0] - before) / n
        release.set()
        gate.result(timeout=TIMEOUT)
        futures = cast("list[cf.Future[Any]]", slots)
        _, not_done = impl.wait(futures, timeout=TIMEOUT, return_when=impl.all_completed)
        assert not not_done, f"{impl.name}: {len(not_done)} queued tasks never ran"
    finally:
        release.set()
        ex.shutdown(wait=True)
    return {"bytes_future": per_future, "bytes_pending_task": per_task}


BENCHMARKS: tuple[Benchmark[Sizes], ...] = (
    Benchmark(
        "submit",
        (
            Metric("submit_rate", "submit+result, 4 workers", "tasks/s", True, target=3.0),
            Metric("submit_cpu", "  process CPU per task", "us", False),
            Metric("submit_main_cpu", "  main-thread CPU per task", "us", False),
            Metric("submit_switches", "  voluntary context switches per task", "1", False),
        ),
        bench_submit_result,
    ),
    Benchmark(
        "map",
        (Metric("map_rate", "list(map(fn, range(K))), 4 workers", "items/s", True, target=3.0),),
        bench_map,
    ),
    Benchmark(
        "latency",
        (
            Metric("latency_p50", "submit().result() p50, 1 worker", "us", False, target=1.0),
            Metric("latency_p99", "submit().result() p99, 1 worker", "us", False, target=1.0),
        ),
        bench_latency,
    ),
    Benchmark(
        "as_completed",
        (Metric("as_completed_pending", "as_completed, completed meanwhile", "ms", False),),
        bench_as_completed_pending,
    ),
    Benchmark(
        "as_completed_done",
        (Metric("as_completed_done", "as_completed, all done before", "ms", False),),
        bench_as_completed_done,
    ),
    Benchmark(
        "wait",
        (Metric("wait_all_done", "wait(ALL_COMPLETED), all done", "ms", False),),
        bench_wait_all,
    ),
    Benchmark(
        "lifecycle",
        (Metric("future_lifecycle", "Future()+callback+set_result+result", "ns/op", False),),
        bench_future_lifecycle,
    ),
    Benchmark(
        "pool_cycle",
        (Metric("pool_cycle", "pool(4) create+1 task+shutdown", "us", False),),
        bench_pool_cycle,
    ),
    Benchmark(
        "memory",
        (
            Metric("bytes_future", "memory per bare Future()", "B", False),
            Metric("bytes_pending_task", "memory per queued task", "B", False, target=1 / 5),
        ),
        bench_memory,
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the thread-pool benchmarks with the harness's command line; return the exit code."""
    return harness_main(
        BENCHMARKS,
        argv,
        description="Compare thread-pool executors with concurrent.futures (ratios impl/stdlib).",
        full=FULL,
        quick=QUICK,
        required=REQUIRED_NAMES,
    )


if __name__ == "__main__":
    sys.exit(main())
