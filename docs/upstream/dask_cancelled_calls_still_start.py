"""dask.distributed ClientExecutor: calls cancelled by leaving ``map()``'s results early still start.

``concurrent.futures.Executor.map``: the results iterator, once left (``close()``, or dropped),
cancels the calls that have not started; ``Future.cancel()``: a cancelled call will not run.
ClientExecutor's iterator cancels the remaining calls with ``Client.cancel``, which marks them
cancelled on the client and returns at once: the request reaches the scheduler, and from it the
worker, later (a message, not a round trip). A worker thread that frees up in between takes the
next call from its own queue and starts it, although the call is already cancelled and its
result can never be read.

Every worker thread holds a call at an event; ``map()`` has queued more calls behind them; the
results iterator is started, then closed; the held calls are released: no queued call may
start. The bug is a race, so the script tries up to ``ATTEMPTS`` times on one cluster and stops
at the first attempt that shows it:

    python dask_cancelled_calls_still_start.py

exits 1 and says how many attempts it took while the bug is present, 0 once no attempt shows
it; every wait is bounded. On distributed 2026.11.0 (CPython 3.11, a loaded 2-core machine) it
showed in the first attempt in most runs, and within 3 attempts in every run tried.
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import Any

BOUND = 30.0
"""Seconds any one wait may take."""

ATTEMPTS = 20
"""Attempts before the script concludes the bug does not show."""

THREADS = 2
"""The worker's threads: each holds one call."""

QUEUED = 12
"""Calls queued behind the held ones."""


def call(position: int, started: Any, held: list[Any], release: Any) -> int:
    """Record that call *position* started; the held calls (1 to ``THREADS``) then say so
    and wait (bounded) to be released."""
    started.append(position)
    if 1 <= position <= THREADS:
        held[position - 1].set()
        release.wait(BOUND)
    return position


def attempt(executor: Any, manager: Any) -> list[int]:
    """One attempt on *executor* (of ``THREADS`` workers, shut down here): the queued calls
    that started after the results were left."""
    started, release = manager.list(), manager.Event()
    held = [manager.Event() for _ in range(THREADS)]
    positions = range(1 + THREADS + QUEUED)
    n = len(positions)
    try:
        results = executor.map(
            call, positions, [started] * n, [held] * n, [release] * n, timeout=BOUND
        )
        if next(results) != 0:
            raise RuntimeError("the first result is not call 0's")
        for event in held:
            if not event.wait(BOUND):
                raise RuntimeError(f"the held calls did not start within {BOUND}s")
        before = set(started)
        results.close()  # cancels the calls not started: Client.cancel(remaining)
        release.set()
    finally:
        release.set()
        executor.shutdown(wait=True)  # waits for every call it ran
    return sorted(set(started) - before)


def probe(make_executor: Any) -> bool:
    """True when the bug shows, within ``ATTEMPTS`` attempts, on executors from
    *make_executor* (called like the stdlib's pool classes)."""
    with multiprocessing.Manager() as manager:
        return any(attempt(make_executor(max_workers=THREADS), manager) for _ in range(ATTEMPTS))


def main() -> int:
    from distributed import Client, LocalCluster

    with (
        multiprocessing.Manager() as manager,
        LocalCluster(
            n_workers=1,
            threads_per_worker=THREADS,
            processes=False,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        for number in range(1, ATTEMPTS + 1):
            late = attempt(client.get_executor(pure=False), manager)
            if late:
                print(
                    f"BUG (attempt {number} of {ATTEMPTS}): calls {late} started after the "
                    "results iterator was closed, which had cancelled them."
                )
                return 1
    print(f"OK: in {ATTEMPTS} attempts no cancelled call started.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
