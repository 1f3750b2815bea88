#!/usr/bin/env python3
"""Benchmark process-pool executors against ``concurrent.futures`` in one run.

Every implementation is a module exposing the ``concurrent.futures`` names; this script needs
``ProcessPoolExecutor`` besides the core ones.  A module that lacks it (executor_impl before it
has a process pool) is skipped with a note, and the stdlib is then compared with itself.  The
first implementation is the baseline (the stdlib); every other one is reported as a ratio
``impl / baseline`` with the target the implementation must meet, and a verdict.

The task functions live in ``_process_tasks.py`` (imported as ``bench._process_tasks``) so that
spawned workers can unpickle them by name.  A spawned worker also re-imports this script as
``__mp_main__`` (multiprocessing's spawn does that for any script), which costs the same for
every implementation.  Loading the implementations, running them alternately under a watchdog,
the table and the common options are the shared harness in ``_harness.py``; every wait has a
timeout, and every pool is shut down with ``wait=True`` even when a measurement fails.

Usage::

    python3 bench/bench_process.py --quick
    python3 bench/bench_process.py --context spawn --bench latency
    python3 bench/bench_process.py --repeat 7 --json results.json
"""

from __future__ import annotations

import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

# As in bench_thread.py: the harness and the tasks are imported through the project root as
# ``bench.*``, the one spelling that serves both mypy and the runtime (see the comment there).
# Spawned workers inherit this sys.path, which is how they find bench._process_tasks.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _process_tasks as tasks
from bench._harness import TIMEOUT, Benchmark, Metric, percentile, quiet_gc, tracing
from bench._harness import main as harness_main

if TYPE_CHECKING:
    import argparse
    import concurrent.futures as cf
    from collections.abc import Iterator, Sequence
    from multiprocessing.context import BaseContext

    from bench._impls import Impl

#: The names a module must expose to be benchmarked.
REQUIRED_NAMES = ("Future", "ProcessPoolExecutor", "wait", "as_completed", "ALL_COMPLETED")

#: Size of one payload in the payload benchmark (100 KB).
PAYLOAD_BYTES = 100 * 1000


@dataclass(frozen=True)
class Sizes:
    """Problem sizes for one run (``--quick`` shrinks them all) and the start method."""

    context: str  # start method of every pool but the start-up ones ("" = platform default)
    map_items: int  # map with chunksize=1
    chunked_items: int  # map with chunksize=256
    latency_iters: int  # timed round trips
    latency_warmup: int  # untimed round trips first
    payloads: int  # 100 KB arguments per payload map
    fork_cycles: int  # pool create + first result, fork context
    spawn_cycles: int  # pool create + first result, spawn context
    shutdown_cycles: int  # warm pool shutdown(wait=True)
    pending: int  # tasks queued behind a blocked worker (memory)


FULL = Sizes(
    context="",
    map_items=20_000,
    chunked_items=200_000,
    latency_iters=3_000,
    latency_warmup=300,
    payloads=2_000,
    fork_cycles=10,
    spawn_cycles=10,
    shutdown_cycles=8,
    pending=10_000,
)
QUICK = Sizes(
    context="",
    map_items=1_000,
    chunked_items=20_000,
    latency_iters=300,
    latency_warmup=30,
    payloads=150,
    fork_cycles=2,
    spawn_cycles=1,
    shutdown_cycles=2,
    pending=1_000,
)


def mp_context(method: str) -> BaseContext:
    """The multiprocessing context for start *method* (the platform default if empty)."""
    return multiprocessing.get_context(method or None)


@contextmanager
def process_pool(impl: Impl, max_workers: int, method: str) -> Iterator[cf.ProcessPoolExecutor]:
    """A pool of *impl* with *max_workers* workers started by *method*, always shut down.

    The shutdown waits for the workers (cancelling what is still queued if the body failed);
    shutting down a pool twice is a no-op, so the body may shut it down itself.
    """
    ex = impl.process_pool(max_workers=max_workers, mp_context=mp_context(method))
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def warm_up(ex: cf.Executor, workers: int) -> None:
    """Run a burst of trivial tasks so that every worker process is up and idle.

    The stdlib starts spawn/forkserver workers one per submit that finds none idle, so a
    burst of several tasks per worker starts them all.
    """
    for f in [ex.submit(tasks.identity, i) for i in range(8 * workers)]:
        f.result(timeout=TIMEOUT)


def check_no_children(impl: Impl, what: str) -> None:
    """Warn if a worker process outlived its pool's ``shutdown(wait=True)``."""
    left = multiprocessing.active_children()
    if left:
        print(f"warning: {impl.name}/{what} left {len(left)} process(es): {left}", file=sys.stderr)


def timed_map(
    impl: Impl, method: str, items: int, chunksize: int
) -> tuple[float, float, list[int]]:
    """``list(map(identity, range(items), chunksize=...))`` on 2 warm workers.

    Returns the wall time, the parent's CPU time (all its threads) and the results.
    """
    with process_pool(impl, 2, method) as ex:
        warm_up(ex, 2)
        with quiet_gc():
            cpu0, t0 = time.process_time(), time.perf_counter()
            out = list(ex.map(tasks.identity, range(items), timeout=TIMEOUT, chunksize=chunksize))
            t1, cpu1 = time.perf_counter(), time.process_time()
    check_no_children(impl, "map")
    assert out == list(range(items)), f"{impl.name}: map returned wrong results"
    return t1 - t0, cpu1 - cpu0, out


def bench_map(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``map`` of a trivial function, one item per task (chunksize=1), 2 workers."""
    n = sizes.map_items
    wall, cpu, _ = timed_map(impl, sizes.context, n, 1)
    return {"map_rate": n / wall, "map_cpu": cpu / n * 1e6}


def bench_map_chunked(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``map`` of a trivial function with chunksize=256, 2 workers."""
    n = sizes.chunked_items
    wall, _, _ = timed_map(impl, sizes.context, n, 256)
    return {"map_chunked_rate": n / wall}


def children_cpu_ns() -> float:
    """CPU time used so far by this process's live ``multiprocessing`` children, in ns.

    Read from ``/proc/PID/schedstat`` (nanoseconds); NaN where there is no such file (not
    Linux), which the table shows as a missing value rather than a wrong one.
    """
    total = 0
    for child in multiprocessing.active_children():
        try:
            with open(f"/proc/{child.pid}/schedstat", encoding="ascii") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return math.nan
    return total


def bench_latency(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``ex.submit(fn).result()`` one at a time on a single warm worker.

    Besides the wall time of a round trip, the CPU time it costs: the parent's (all its
    threads) and the worker's.  A pool may buy latency with CPU (executor_impl polls for a few
    microseconds before it sleeps); this line is where that shows.
    """
    n = sizes.latency_iters
    samples = [0] * n
    with process_pool(impl, 1, sizes.context) as ex:
        for i in range(sizes.latency_warmup):
            ex.submit(tasks.identity, i).result(timeout=TIMEOUT)
        with quiet_gc():
            cpu0, workers0 = time.process_time_ns(), children_cpu_ns()
            for i in range(n):
                t0 = time.perf_counter_ns()
                ex.submit(tasks.identity, i).result(timeout=TIMEOUT)
                samples[i] = time.perf_counter_ns() - t0
            cpu1, workers1 = time.process_time_ns(), children_cpu_ns()
    check_no_children(impl, "latency")
    samples.sort()
    return {
        "latency_p50": percentile(samples, 50) / 1e3,
        "latency_p99": percentile(samples, 99) / 1e3,
        "latency_cpu": ((cpu1 - cpu0) + (workers1 - workers0)) / n / 1e3,
    }


def bench_payload(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``map`` over 100 KB ``bytes`` arguments, 2 workers: returning ``len``, and echoing back.

    MB/s counts the argument bytes only (10**6 bytes per MB), for both variants.
    """
    n = sizes.payloads
    payload = os.urandom(PAYLOAD_BYTES)
    args = [payload] * n  # one object, but pickled and sent once per item
    with process_pool(impl, 2, sizes.context) as ex:
        warm_up(ex, 2)
        with quiet_gc():
            t0 = time.perf_counter()
            lengths = list(ex.map(tasks.length, args, timeout=TIMEOUT))
            t1 = time.perf_counter()
            echoed = list(ex.map(tasks.echo, args, timeout=TIMEOUT))
            t2 = time.perf_counter()
    check_no_children(impl, "payload")
    assert lengths == [PAYLOAD_BYTES] * n, f"{impl.name}: wrong lengths"
    assert all(e == payload for e in echoed), f"{impl.name}: echo returned other bytes"
    megabytes = n * PAYLOAD_BYTES / 1e6
    return {"payload_len": megabytes / (t1 - t0), "payload_echo": megabytes / (t2 - t1)}


def startup_ms(impl: Impl, method: str, cycles: int) -> float:
    """Median over *cycles* of: create a 2-worker pool, ``submit(fn).result()``.

    The shutdown after each cycle is not timed.  NaN where *method* is unavailable.
    """
    if method not in multiprocessing.get_all_start_methods():
        return float("nan")
    samples: list[float] = []
    for i in range(cycles):
        with quiet_gc():
            t0 = time.perf_counter_ns()
            with process_pool(impl, 2, method) as ex:
                assert ex.submit(tasks.identity, i).result(timeout=TIMEOUT) == i
                samples.append(time.perf_counter_ns() - t0)
        check_no_children(impl, f"startup {method}")
    return statistics.median(samples) / 1e6


def bench_startup(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """Pool creation + first result, with the fork and with the spawn start method."""
    return {
        "startup_fork": startup_ms(impl, "fork", sizes.fork_cycles),
        "startup_spawn": startup_ms(impl, "spawn", sizes.spawn_cycles),
    }


def bench_shutdown(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """``shutdown(wait=True)`` of a warmed-up, idle pool of 2 workers (median of cycles)."""
    samples: list[float] = []
    for _ in range(sizes.shutdown_cycles):
        with process_pool(impl, 2, sizes.context) as ex:
            warm_up(ex, 2)
            with quiet_gc():
                t0 = time.perf_counter_ns()
                ex.shutdown(wait=True)
                samples.append(time.perf_counter_ns() - t0)
        check_no_children(impl, "shutdown")
    return {"shutdown": statistics.median(samples) / 1e6}


def wait_for_file(path: str, timeout: float) -> bool:
    """Poll for *path* every millisecond; whether it appeared within *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def touch(path: str) -> None:
    """Create the file *path* (empty) if it does not exist."""
    with open(path, "a", encoding="ascii"):
        pass


def bench_memory(impl: Impl, sizes: Sizes) -> dict[str, float]:
    """tracemalloc bytes in the parent per queued task while the only worker is blocked.

    The worker runs ``block_until`` until the parent creates the release file, so every
    submitted task (its future, call and arguments, pickled or not) waits in the parent, apart
    from the few a pool may already have sent down the pipe.  The slots for the futures are
    allocated before the baseline is read, so the list itself is not counted.
    """
    n = sizes.pending
    slots: list[object] = [None] * n
    with tempfile.TemporaryDirectory(prefix="bench-process-") as tmp:
        started, release = os.path.join(tmp, "started"), os.path.join(tmp, "release")
        with process_pool(impl, 1, sizes.context) as ex:
            try:
                gate = ex.submit(tasks.block_until, started, release, TIMEOUT)
                assert wait_for_file(started, TIMEOUT), f"{impl.name}: worker never started"
                with quiet_gc(), tracing():
                    before = tracemalloc.get_traced_memory()[0]
                    for i in range(n):
                        slots[i] = ex.submit(tasks.identity, i)
                    per_task = (tracemalloc.get_traced_memory()[0] - before) / n
            finally:
                # Whatever failed, let the worker go before the pool's shutdown waits for it.
                touch(release)
            gate.result(timeout=TIMEOUT)
            futures = cast("list[cf.Future[Any]]", slots)
            _, not_done = impl.wait(futures, timeout=TIMEOUT, return_when=impl.all_completed)
            assert not not_done, f"{impl.name}: {len(not_done)} queued tasks never ran"
    check_no_children(impl, "memory")
    return {"bytes_pending_task": per_task}


BENCHMARKS: tuple[Benchmark[Sizes], ...] = (
    Benchmark(
        "map",
        (
            Metric("map_rate", "map, chunksize=1, 2 workers", "items/s", True, target=3.0),
            Metric("map_cpu", "  parent CPU per item", "us", False),
        ),
        bench_map,
    ),
    Benchmark(
        "map_chunked",
        (Metric("map_chunked_rate", "map, chunksize=256, 2 workers", "items/s", True),),
        bench_map_chunked,
    ),
    Benchmark(
        "latency",
        (
            Metric("latency_p50", "submit().result() p50, 1 worker", "us", False, target=1 / 3),
            Metric("latency_p99", "submit().result() p99, 1 worker", "us", False, target=1 / 3),
            Metric("latency_cpu", "  CPU per round trip, parent + worker", "us", False),
        ),
        bench_latency,
    ),
    Benchmark(
        "payload",
        (
            Metric("payload_len", "map 100 KB args, fn returns len", "MB/s", True, target=1.5),
            Metric("payload_echo", "map 100 KB args, fn echoes them", "MB/s", True, target=1.5),
        ),
        bench_payload,
    ),
    Benchmark(
        "startup",
        (
            Metric("startup_fork", "create pool(2)+first result, fork", "ms", False, target=1.0),
            Metric("startup_spawn", "create pool(2)+first result, spawn", "ms", False, target=1.0),
        ),
        bench_startup,
    ),
    Benchmark(
        "shutdown",
        (Metric("shutdown", "shutdown(wait=True), warm pool(2)", "ms", False, target=1.0),),
        bench_shutdown,
    ),
    Benchmark(
        "memory",
        (Metric("bytes_pending_task", "parent memory per queued task", "B", False),),
        bench_memory,
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--context``: the start method of every pool but start-up's (which uses both)."""
    parser.add_argument(
        "--context",
        default=None,
        choices=multiprocessing.get_all_start_methods(),
        help="multiprocessing start method for the pools (default: the platform's, "
        f"{multiprocessing.get_start_method()!r} here); start-up measures fork and spawn",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the process-pool benchmarks with the harness's command line; return the exit code."""
    default = multiprocessing.get_start_method()
    return harness_main(
        BENCHMARKS,
        argv,
        description="Compare process-pool executors with concurrent.futures (ratios impl/stdlib).",
        full=replace(FULL, context=default),
        quick=replace(QUICK, context=default),
        required=REQUIRED_NAMES,
        add_arguments=add_arguments,
    )


if __name__ == "__main__":
    sys.exit(main())
