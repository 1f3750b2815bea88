"""Schedules explored per second by the deterministic scheduler (issue target: >= 1,000/s).

The program of the issue: 3 tasks on a pool of 2 workers, submitted and waited for, under
``RandomPolicy(seed)`` for successive seeds, on executor_impl's pool (its seam controlled)
and on the stdlib's (``concurrent.futures.thread`` and ``_base`` controlled), each with the
managed threads on reused OS threads (the default) and on a fresh OS thread each
(``reuse_threads=False``, what every schedule did before), alternately, ``--repeat`` times.
Prints the median schedules per second with the spread (min-max over the repetitions), the
ratio of the medians, and the mean scheduling points, decisions and switches per schedule::

    python bench/bench_scheduler.py [--schedules N] [--repeat R]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import concurrent.futures._base
import concurrent.futures.thread
import statistics
import time
from typing import Any, Callable

import executor_impl
from executor_impl import _sync
from pytest_futures_plugin.scheduler import RandomPolicy, Scheduler


def program(pool_class: Callable[..., Any]) -> Callable[[], list[int]]:
    def run() -> list[int]:
        with pool_class(max_workers=2) as pool:
            futures = [pool.submit(pow, 2, n) for n in range(3)]
            return [future.result() for future in futures]

    return run


def bench(pool_class: Callable[..., Any], modules: tuple[Any, ...], n: int, reuse: bool) -> Any:
    """Run *n* schedules; return (schedules per second, points, decisions, switches)."""
    run = program(pool_class)
    steps, decisions, switches = [], [], []
    started = time.perf_counter()
    for seed in range(n):
        scheduler = Scheduler(RandomPolicy(seed), modules=modules, reuse_threads=reuse)
        assert scheduler.run(run) == [1, 2, 4]
        steps.append(scheduler.steps)
        decisions.append(scheduler.decisions)
        switches.append(scheduler.switches)
    elapsed = time.perf_counter() - started
    means = (statistics.mean(values) for values in (steps, decisions, switches))
    return (n / elapsed, *means)


def compare(name: str, pool_class: Callable[..., Any], modules: tuple[Any, ...], args: Any) -> None:
    rates: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeat):
        for reuse in (False, True):
            rate, points, decisions, switches = bench(pool_class, modules, args.schedules, reuse)
            rates[reuse].append(rate)
    for reuse, label in ((False, "fresh threads"), (True, "reused threads")):
        values = rates[reuse]
        print(
            f"{name:14s} {label:15s} {statistics.median(values):8,.0f} schedules/s "
            f"({min(values):,.0f}-{max(values):,.0f})"
        )
    ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    print(
        f"{name:14s} reused/fresh {ratio:.2f}x  points {points:5.1f}  "
        f"decisions {decisions:5.1f}  switches {switches:5.1f} per schedule"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=1000, help="per repetition")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.schedules < 1 or args.repeat < 1:
        parser.error(f"--schedules and --repeat must be >= 1: {args.schedules}, {args.repeat}")
    compare("executor_impl", executor_impl.ThreadPoolExecutor, (_sync,), args)
    compare(
        "stdlib",
        concurrent.futures.ThreadPoolExecutor,
        (concurrent.futures.thread, concurrent.futures._base),
        args,
    )


if __name__ == "__main__":
    main()
