"""Schedules explored per second by the deterministic scheduler (issue target: >= 1,000/s).

The program of the issue: 3 tasks on a pool of 2 workers, submitted and waited for, under
``RandomPolicy(seed)`` for successive seeds, on executor_impl's pool (its seam controlled)
and on the stdlib's (``concurrent.futures.thread`` and ``_base`` controlled), each in the
scheduler's thread modes (``thread_mode``: a fresh OS thread each, started by threading, the
default; a fresh OS thread each, started ahead of need; OS threads reused from earlier
schedules; greenlets on the owner's OS thread, when greenlet is installed), one after the
other, ``--repeat`` times. Prints the median schedules per second with the spread (min-max
over the repetitions), each mode's ratio to fresh threads, the process's CPU time per
schedule (median, min-max), and the mean scheduling points, decisions and switches per
schedule::

    python bench/bench_scheduler.py [--schedules N] [--repeat R] [--modes fresh,greenlet]
        [--pools executor_impl,stdlib]
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
from pytest_futures_plugin.scheduler import RandomPolicy, Scheduler, _greenlets


def program(pool_class: Callable[..., Any]) -> Callable[[], list[int]]:
    def run() -> list[int]:
        with pool_class(max_workers=2) as pool:
            futures = [pool.submit(pow, 2, n) for n in range(3)]
            return [future.result() for future in futures]

    return run


MODES = ("fresh", "prespawned", "reused", "greenlet")


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
    modes = args.modes
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    cpus: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.repeat):
        for mode in modes:
            rate, cpu, points, decisions, switches = bench(
                pool_class, modules, args.schedules, mode
            )
            rates[mode].append(rate)
            cpus[mode].append(cpu * 1e6)
    fresh = statistics.median(rates[modes[0]])
    for mode in modes:
        values = rates[mode]
        print(
            f"{name:14s} {mode:10s} {statistics.median(values):8,.0f} schedules/s "
            f"({min(values):,.0f}-{max(values):,.0f})  {statistics.median(values) / fresh:.2f}x "
            f"{modes[0]}  "
            f"CPU {statistics.median(cpus[mode]):4.0f} us/schedule "
            f"({min(cpus[mode]):.0f}-{max(cpus[mode]):.0f})"
        )
    print(
        f"{name:14s} points {points:5.1f}  decisions {decisions:5.1f}  "
        f"switches {switches:5.1f} per schedule"
    )


POOLS: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
    "executor_impl": (executor_impl.ThreadPoolExecutor, (_sync,)),
    "stdlib": (
        concurrent.futures.ThreadPoolExecutor,
        (concurrent.futures.thread, concurrent.futures._base),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=1000, help="per repetition")
    parser.add_argument("--repeat", type=int, default=3)
    default_modes = MODES if _greenlets.available() else MODES[:-1]
    parser.add_argument(
        "--modes",
        default=",".join(default_modes),
        help=f"comma-separated, the first is the reference of the ratios (default: "
        f"{','.join(default_modes)})",
    )
    parser.add_argument("--pools", default=",".join(POOLS), help="comma-separated")
    args = parser.parse_args()
    if args.schedules < 1 or args.repeat < 1:
        parser.error(f"--schedules and --repeat must be >= 1: {args.schedules}, {args.repeat}")
    args.modes = args.modes.split(",")
    for mode in args.modes:
        if mode not in MODES:
            parser.error(f"--modes: {mode!r} is not one of {', '.join(MODES)}")
    if "greenlet" in args.modes and not _greenlets.available():
        parser.error("--modes: 'greenlet' needs the greenlet package (pytest-futures[greenlet])")
    for pool in args.pools.split(","):
        if pool not in POOLS:
            parser.error(f"--pools: {pool!r} is not one of {', '.join(POOLS)}")
        compare(pool, *POOLS[pool], args)


if __name__ == "__main__":
    main()
