"""Stress for the deadlock watcher, run as a script in its own interpreter (a crash is its
return code): ``python -X faulthandler -m tests.engine._watch_stress SECONDS``.

For *SECONDS*, a watcher polls every few milliseconds while threads start and end quickly and
block and unblock with no timeout in every registered wait: ``result()``, ``exception()``,
``wait()``, ``as_completed()`` and ``join()``, on the stdlib's and executor_impl's pools and on
subclasses of the stdlib's (what crashed CPython 3.11.7 when the watcher walked other threads'
stacks).  Nothing here deadlocks, so the watcher must report nothing.  Prints one summary line
and exits 0; exits 1 naming what went wrong.  Every wait is bounded.
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
import time
from typing import Any

import executor_impl
from pytest_futures_plugin.guards import DeadlockWatcher, _waits

BOUND = 30.0
"""Seconds any single wait here may take: only a bug takes so long."""


class SubclassPool(concurrent.futures.ThreadPoolExecutor):
    """A plain subclass of the stdlib's pool, as a user or a library writes one."""


def one_round(factory: Any, api: Any) -> None:
    """A pool starts and ends; its tasks block on each other's futures and are released."""
    gate = threading.Event()
    with factory(max_workers=6) as pool:
        held = [pool.submit(gate.wait, BOUND) for _ in range(2)]
        chained = pool.submit(lambda: held[0].result())  # result(), no timeout
        failed = pool.submit(lambda: held[1].exception())  # exception(), no timeout
        waited = pool.submit(lambda: api.wait(held))  # wait(ALL_COMPLETED)
        first = pool.submit(lambda: api.wait(held, return_when=api.FIRST_COMPLETED))
        fan_in = pool.submit(lambda: [f.result() for f in api.as_completed(held)])
        sleeper = threading.Thread(target=gate.wait, args=(BOUND,))
        sleeper.start()
        joiner = threading.Thread(target=sleeper.join)  # join(), no timeout
        joiner.start()
        gate.set()
        for future in (chained, failed, waited, first, fan_in):
            future.result(timeout=BOUND)
        joiner.join(BOUND)
        if joiner.is_alive():
            raise AssertionError("a join() with no timeout did not end")


def churn(factory: Any, api: Any, until: float, counts: list[int]) -> None:
    while time.monotonic() < until:
        one_round(factory, api)
        counts.append(1)


def spawn(until: float, counts: list[int]) -> None:
    """Threads that start and end as fast as they can."""
    while time.monotonic() < until:
        thread = threading.Thread(target=int)
        thread.start()
        thread.join(BOUND)
        counts.append(1)


def _patched() -> list[Any]:
    """What the watcher patches while it watches (all of it put back after)."""
    import concurrent.futures.thread as stdlib_thread

    import executor_impl._hooks

    return [
        vars(concurrent.futures.Future)["result"],
        vars(concurrent.futures.Future)["exception"],
        vars(concurrent.futures._base)["_create_and_install_waiters"],
        vars(stdlib_thread._WorkItem)["run"],
        vars(threading.Thread)["join"],
        executor_impl._hooks.watcher,
    ]


def main(seconds: float) -> int:
    before = _patched()
    until = time.monotonic() + seconds
    rounds: list[int] = []
    spawned: list[int] = []
    most = 0
    jobs = [
        (churn, (executor_impl.ThreadPoolExecutor, executor_impl, until, rounds)),
        (churn, (concurrent.futures.ThreadPoolExecutor, concurrent.futures, until, rounds)),
        (churn, (SubclassPool, concurrent.futures, until, rounds)),
        (spawn, (until, spawned)),
        (spawn, (until, spawned)),
    ]
    failures: list[str] = []

    def guarded(target: Any, args: Any) -> None:
        try:
            target(*args)
        except BaseException as exc:
            failures.append(f"{target.__name__}: {exc!r}")

    with DeadlockWatcher(interval=0.005) as watcher:
        threads = [threading.Thread(target=guarded, args=job) for job in jobs]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            most = max(most, len(_waits.waits))  # the waits registered themselves
            threads[0].join(0.001)
        for thread in threads:
            thread.join(BOUND)
    print(
        f"watch stress: {len(rounds)} pool rounds, {len(spawned)} short threads, "
        f"up to {most} registered waits at once, {len(watcher.errors)} deadlocks reported"
    )
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    if watcher.errors:
        print("FAILED: the watcher reported a deadlock where there is none:", watcher.errors[0])
        return 1
    if not rounds or not most:
        print("FAILED: the stress did not run (no round, or no wait ever registered)")
        return 1
    if _waits.active() or _waits.waits or _patched() != before:
        print("FAILED: the watcher left its patches or registered waits behind")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0))
