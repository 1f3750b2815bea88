"""Schedules explored per second by the deterministic scheduler (issue target: >= 1,000/s).

The program of the issue: 3 tasks on a pool of 2 workers, submitted and waited for, under
``RandomPolicy(seed)`` for successive seeds, on executor_impl's pool (its seam controlled)
and on the stdlib's (``concurrent.futures.thread`` and ``_base`` controlled), each in the
scheduler's three thread modes (``thread_mode``: a fresh OS thread each, started by
threading; a fresh OS thread each, started ahead of need, the default; OS threads reused
from earlier schedules), one after the other, ``--repeat`` times. Prints the median schedules
per second with the spread (min-max over the repetitions), each mode's ratio to fresh
threads, the process's CPU time per schedule (median, min-max), and the mean scheduling points, decisions and switches per schedule::

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


MODES = ("fresh", "prespawned", "reused")


def bench(pool_class: Callable[..., Any], modules: tuple[Any, ...], n: int, mode: str) -> Any:
    """Run *n* schedules; return (schedules per second, CPU seconds of the process per
    schedule, points, decisions, switches)."""
    run = program(pool_class)
    steps, decisions, switches = [], [], []
    started, cpu = time.perf_counter(), time.process_time()
    for seed in range(n):
        scheduler = Scheduler(RandomPolicy(seed), modules=modules, thread_mode=mode)
        assert scheduler.run(run) == [1, 2, 4]
        steps.append(scheduler.steps)
        decisions.append(scheduler.decisions)
        switches.append(scheduler.switches)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    means = (statistics.mean(values) for values in (steps, decisions, switches))
    return (n / elapsed, cpu / n, *means)


def compare(name: str, pool_class: Callable[..., Any], modules: tuple[Any, ...], args: Any) -> None:
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpus: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):
        for mode in MODES:
            rate, cpu, points, decisions, switches = bench(
                pool_class, modules, args.schedules, mode
            )
            rates[mode].append(rate)
            cpus[mode].append(cpu * 1e6)
    fresh = statistics.median(rates["fresh"])
    for mode in MODES:
        values = rates[mode]
        print(
            f"{name:14s} {mode:10s} {statistics.median(values):8,.0f} schedules/s "
            f"({min(values):,.0f}-{max(values):,.0f})  {statistics.median(values) / fresh:.2f}x  "
            f"CPU {statistics.median(cpus[mode]):4.0f} us/schedule "
            f"({min(cpus[mode]):.0f}-{max(cpus[mode]):.0f})"
        )
    print(
        f"{name:14s} points {points:5.1f}  decisions {decisions:5.1f}  "
        f"switches {switches:5.1f} per schedule"
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
