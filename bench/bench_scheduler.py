"""Schedules explored per second by the deterministic scheduler (issue target: >= 1,000/s).

The program of the issue: 3 tasks on a pool of 2 workers, submitted and waited for, under
``RandomPolicy(seed)`` for successive seeds, on executor_impl's pool (its seam controlled)
and on the stdlib's (``concurrent.futures.thread`` and ``_base`` controlled). Prints the
schedules per second and the mean scheduling points, decisions and switches per schedule::

    python bench/bench_scheduler.py [--schedules N]
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


def bench(name: str, pool_class: Callable[..., Any], modules: tuple[Any, ...], n: int) -> None:
    run = program(pool_class)
    steps, decisions, switches = [], [], []
    started = time.perf_counter()
    for seed in range(n):
        scheduler = Scheduler(RandomPolicy(seed), modules=modules)
        assert scheduler.run(run) == [1, 2, 4]
        steps.append(scheduler.steps)
        decisions.append(scheduler.decisions)
        switches.append(scheduler.switches)
    elapsed = time.perf_counter() - started
    print(
        f"{name:14s} {n / elapsed:8,.0f} schedules/s  "
        f"points {statistics.mean(steps):5.1f}  decisions {statistics.mean(decisions):5.1f}  "
        f"switches {statistics.mean(switches):5.1f} per schedule"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=2000)
    args = parser.parse_args()
    bench("executor_impl", executor_impl.ThreadPoolExecutor, (_sync,), args.schedules)
    bench(
        "stdlib",
        concurrent.futures.ThreadPoolExecutor,
        (concurrent.futures.thread, concurrent.futures._base),
        args.schedules,
    )


if __name__ == "__main__":
    main()
