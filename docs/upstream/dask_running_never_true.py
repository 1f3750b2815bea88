"""dask.distributed ClientExecutor: ``Future.running()`` is never True.

``concurrent.futures.Future.running()``: "Return True if the call is currently being executed
and cannot be cancelled." ClientExecutor's futures go from PENDING straight to FINISHED (it
never calls ``set_running_or_notify_cancel()``), so ``running()`` is False while the call
runs, and code that waits for a call to start by polling ``running()`` never sees it.

    python dask_running_never_true.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; every wait is
bounded. ``probe(make_executor)`` is the same check for any executor factory called like
``make_executor(max_workers=2)`` (the gate is a ``multiprocessing.Manager`` event, so a
cluster of worker processes shows the same). Found by pytest-futures' specs on
distributed 2026.11.0.
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import Any, Callable

BOUND = 30.0
"""Seconds any one wait may take."""


def block(started: Any, release: Any) -> int:
    """A call that says it started, then waits (bounded) to be released."""
    started.set()
    release.wait(BOUND)
    return 1


def probe(make_executor: Callable[..., Any]) -> bool:
    """True when the bug shows on an executor from *make_executor*."""
    manager = multiprocessing.Manager()
    started, release = manager.Event(), manager.Event()
    executor = make_executor(max_workers=2)
    try:
        future = executor.submit(block, started, release)
        if not started.wait(BOUND):
            raise RuntimeError(f"the call did not start within {BOUND}s")
        running = future.running()
        release.set()
        future.result(timeout=BOUND)
        return not running
    finally:
        release.set()
        executor.shutdown(wait=True)
        manager.shutdown()


def make_executor(max_workers: int = 2) -> Any:
    """dask's ``Client.get_executor(pure=False)`` on a ``LocalCluster`` of threads; its
    ``shutdown(wait=True)`` also closes the client and the cluster."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=max_workers,
        processes=False,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": ":0"},
    )
    client = Client(cluster, set_as_default=False)
    executor = client.get_executor(pure=False)
    shutdown = executor.shutdown

    def shutdown_and_close(wait: bool = True) -> None:
        shutdown(wait=wait)
        if wait:
            client.close()
            cluster.close()

    executor.shutdown = shutdown_and_close
    return executor


def main() -> int:
    if probe(make_executor):
        print("BUG: future.running() is False while its call is executing.")
        return 1
    print("OK: future.running() is True while its call is executing.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
