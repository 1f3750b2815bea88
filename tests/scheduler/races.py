"""The race programs of issue 15, each in a racy and a correct version, for the systematic
search's tests (``test_search.py``) and its benchmark (``bench/bench_search.py``):

- :func:`waiting_on_each_other`: two pool tasks waiting on each other's futures (the seed
  tutorial's first deadlock);
- :func:`waiting_on_itself`: a task of a pool of one waiting on a task it submitted to the
  same pool (the seed tutorial's second deadlock); both on executor_impl's pool, or the
  stdlib's (the tutorial's) as ``pool_class``;
- :func:`lost_on_threads`: a done callback lost by a check-then-append outside the lock,
  between two plain threads;
- :func:`lost_on_the_pool`, :func:`lost_on_the_stdlib_pool`: the same race between the caller
  and a pool's worker (executor_impl's pool, the stdlib's);
- :func:`two_increments`: ``counter += 1`` from two threads (no lock: found only with
  fine-grained scheduling points on this module);
- :func:`three_tasks`: no race, 3 tasks on a pool of 2 workers (the program whose schedules
  per second the benchmarks compare).

Each function takes *racy* and returns the program to run. Run it under a scheduler that
controls this module (its ``threading``), executor_impl's seam and, for the stdlib's pool,
``concurrent.futures.thread`` and ``concurrent.futures._base``.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable

import executor_impl

Program = Callable[[], None]


class Box:
    """A future's done callbacks, reduced to the race: *racy* asks ``done`` and appends the
    callback under two separate holds of the lock."""

    def __init__(self, racy: bool) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.callbacks: list[Callable[[], object]] = []
        self.racy = racy

    def add_done_callback(self, fn: Callable[[], object]) -> None:
        with self.lock:
            done = self.done
            if not done and not self.racy:
                self.callbacks.append(fn)
                return
        if not done:
            with self.lock:  # the bug: done may have been set since
                self.callbacks.append(fn)
            return
        fn()

    def set_done(self) -> None:
        with self.lock:
            self.done = True
            callbacks, self.callbacks = self.callbacks, []
        for fn in callbacks:
            fn()


def waiting_on_each_other(
    racy: bool, pool_class: Callable[..., Any] = executor_impl.ThreadPoolExecutor
) -> Program:
    """Two tasks of a pool of two; *racy*: each waits on the other's future (a deadlock)."""

    def run() -> None:
        with pool_class(max_workers=2) as pool:
            futures: dict[str, Any] = {}
            ready = threading.Event()

            def a() -> object:
                ready.wait()
                return futures["b"].result() if racy else 1

            def b() -> object:
                ready.wait()
                return futures["a"].result()

            futures["a"], futures["b"] = pool.submit(a), pool.submit(b)
            ready.set()
            futures["b"].result()

    return run


def waiting_on_itself(
    racy: bool, pool_class: Callable[..., Any] = executor_impl.ThreadPoolExecutor
) -> Program:
    """A task that submits another to its own pool and waits for it; *racy*: the pool has
    one worker, the task's own (a deadlock), else two."""

    def run() -> None:
        with pool_class(max_workers=1 if racy else 2) as pool:

            def outer() -> object:
                return pool.submit(pow, 5, 2).result()

            assert pool.submit(outer).result() == 25

    return run


def lost_on_threads(racy: bool) -> Program:
    def run() -> None:
        box, called = Box(racy), []
        adder = threading.Thread(target=box.add_done_callback, args=(lambda: called.append(1),))
        setter = threading.Thread(target=box.set_done)
        adder.start()
        setter.start()
        adder.join()
        setter.join()
        assert called == [1], "the done callback was lost"

    return run


def lost_on_the_pool(
    racy: bool, pool_class: Callable[..., Any] = executor_impl.ThreadPoolExecutor
) -> Program:
    def run() -> None:
        box, called = Box(racy), []
        with pool_class(max_workers=1) as pool:
            pool.submit(box.set_done)
            box.add_done_callback(lambda: called.append(1))
        assert called == [1], "the done callback was lost"

    return run


def lost_on_the_stdlib_pool(racy: bool) -> Program:
    return lost_on_the_pool(racy, concurrent.futures.ThreadPoolExecutor)


counter = 0


def increment() -> None:
    global counter
    counter += 1  # the racy line


def increment_locked(lock: Any) -> None:
    global counter
    with lock:
        counter += 1


def two_increments(racy: bool) -> Program:
    def run() -> None:
        global counter
        counter = 0
        lock = threading.Lock()
        workers = [
            threading.Thread(target=increment)
            if racy
            else threading.Thread(target=increment_locked, args=(lock,))
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert counter == 2, f"counter is {counter}, not 2"

    return run


def three_tasks(pool_class: Callable[..., Any] = executor_impl.ThreadPoolExecutor) -> Program:
    """3 tasks submitted to a pool of 2 workers and waited for: no race, only schedules."""

    def run() -> None:
        with pool_class(max_workers=2) as pool:
            futures = [pool.submit(pow, 2, n) for n in range(3)]
            assert [future.result() for future in futures] == [1, 2, 4]

    return run
