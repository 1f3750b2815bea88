"""Schedules to the first failure, per policy, and proofs up to a preemption bound.

The programs of issue 15, each in a racy and a correct version:

- ``waiting``: two pool tasks waiting on each other's futures (the seed tutorial's deadlock);
- ``lost-threads``: a done callback lost by a check-then-append outside the lock, between two
  plain threads;
- ``lost-pool``, ``lost-stdlib``: the same race between the caller and a pool's worker
  (executor_impl's pool, the stdlib's);
- ``plus-equals``: ``counter += 1`` from two threads (no lock: found only with fine-grained
  scheduling points on this file, which every policy here gets for it).

Each racy version runs under ``RandomPolicy``, ``PCT`` (depth 3) and the systematic search
(preemption bound 2) until its first failing schedule; the table gives the schedules it took
(the median over ``--runs`` seed offsets for the random policies; the search is
deterministic). Each correct version is then searched exhaustively up to the bound, with the
time it took::

    python bench/bench_search.py [--limit N] [--runs R] [--bound K] [--json PATH]

Targets (issue 15): lost callback within 50 schedules on threads and on the pool, ``+=``
within 20, correct versions proven clean to K=2 in under 2 s.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import concurrent.futures._base
import concurrent.futures.thread
import contextlib
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import executor_impl
from executor_impl import _sync
from pytest_futures_plugin.scheduler import PCT, Policy, RandomPolicy, Scheduler
from pytest_futures_plugin.scheduler._tracing import FineGrained
from pytest_futures_plugin.scheduler.search import explore

Program = Callable[[], Any]


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


def waiting(racy: bool) -> Program:
    def run() -> None:
        with executor_impl.ThreadPoolExecutor(max_workers=2) as pool:
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


def lost_threads(racy: bool) -> Program:
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


def lost_pool(
    racy: bool, pool_class: Callable[..., Any] = executor_impl.ThreadPoolExecutor
) -> Program:
    def run() -> None:
        box, called = Box(racy), []
        with pool_class(max_workers=1) as pool:
            pool.submit(box.set_done)
            box.add_done_callback(lambda: called.append(1))
        assert called == [1], "the done callback was lost"

    return run


counter = 0


def increment(lock: Any) -> None:
    global counter
    with lock if lock is not None else contextlib.nullcontext():
        counter += 1


def plus_equals(racy: bool) -> Program:
    def run() -> None:
        global counter
        counter = 0
        lock = None if racy else threading.Lock()
        threads = [threading.Thread(target=increment, args=(lock,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert counter == 2, f"counter is {counter}, not 2"

    return run


def lost_stdlib_pool(racy: bool) -> Program:
    return lost_pool(racy, concurrent.futures.ThreadPoolExecutor)


PROGRAMS: dict[str, tuple[Callable[[bool], Program], bool]] = {
    "waiting": (waiting, False),
    "lost-threads": (lost_threads, False),
    "lost-pool": (lost_pool, False),
    "lost-stdlib": (lost_stdlib_pool, False),
    "plus-equals": (plus_equals, True),  # fine-grained points on this file
}
MODULES = (sys.modules[__name__], _sync, concurrent.futures.thread, concurrent.futures._base)


def fails(program: Program, policy: Policy) -> bool:
    scheduler = Scheduler(policy, modules=MODULES)
    try:
        scheduler.run(program)
    except Exception:
        return True
    return bool(scheduler.leftovers)


def first_failure(program: Program, make: Callable[[int], Policy], offset: int, limit: int) -> int:
    for n in range(1, limit + 1):
        if fails(program, make(offset + n)):
            return n
    return limit + 1  # not found


def fine(enabled: bool) -> contextlib.AbstractContextManager[Any]:
    return FineGrained([__file__]) if enabled else contextlib.nullcontext()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=2000, help="schedules per random run")
    parser.add_argument("--runs", type=int, default=5, help="seed offsets per random policy")
    parser.add_argument("--bound", type=int, default=2, help="preemption bound")
    parser.add_argument("--json", help="write the figures as JSON to this path")
    args = parser.parse_args()
    policies: dict[str, Callable[[int], Policy]] = {
        "random": RandomPolicy,
        "pct": lambda seed: PCT(seed, depth=3),
    }
    figures: dict[str, Any] = {}
    print(f"schedules to the first failure (random/pct: median of {args.runs} seed offsets)")
    print(f"{'program':14s} {'random':>8s} {'pct':>8s} {'systematic':>11s}   search time")
    for name, (make, grained) in PROGRAMS.items():
        row: dict[str, Any] = {}
        with fine(grained):
            for label, policy in policies.items():
                counts = [
                    first_failure(make(True), policy, run * 100_000, args.limit)
                    for run in range(args.runs)
                ]
                row[label] = statistics.median(counts)
            started = time.perf_counter()
            found = explore(
                make(True), preemption_bound=args.bound, modules=MODULES, raise_on_failure=False
            )
            row["systematic"] = found.schedules if found.failure is not None else None
            row["search_seconds"] = time.perf_counter() - started
        cells = [
            f"{row[p]:>8g}" if row[p] <= args.limit else f"{'>' + str(args.limit):>8s}"
            for p in policies
        ]
        systematic = "none" if row["systematic"] is None else str(row["systematic"])
        print(f"{name:14s} {' '.join(cells)} {systematic:>11s}   {row['search_seconds']:.3f} s")
        figures[name] = row
    blind = explore(plus_equals(True), preemption_bound=args.bound, modules=MODULES)
    print(f"plus-equals without fine-grained points: {blind.report()}")
    figures["plus-equals"]["without_fine_grained"] = blind.schedules
    print(f"\ncorrect versions, searched to a preemption bound of {args.bound}")
    for name, (make, grained) in PROGRAMS.items():
        started = time.perf_counter()
        proof = explore(
            make(False),
            preemption_bound=args.bound,
            modules=MODULES,
            fine=[__file__] if grained else (),
            raise_on_failure=False,
        )
        seconds = time.perf_counter() - started
        print(f"{name:14s} {proof.report()}")
        figures[name]["proof"] = {
            "schedules": proof.schedules,
            "exhausted": proof.exhausted,
            "failed": proof.failure is not None,
            "seconds": seconds,
        }
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
