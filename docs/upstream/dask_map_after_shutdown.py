"""dask.distributed ClientExecutor: ``map()`` after ``shutdown()`` still runs the calls.

``concurrent.futures.Executor.map`` is documented as equivalent to submitting each call, and
``submit()`` after ``shutdown()`` raises RuntimeError ("cannot schedule new futures after
shutdown"); ClientExecutor's own ``submit()`` does raise it. Its ``map()`` does not check
whether the executor was shut down: the calls are sent to the cluster and run.

    python dask_map_after_shutdown.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; every wait is
bounded. ``probe(make_executor)`` is the same check for any executor factory called like
``make_executor(max_workers=2)``. Found by pytest-futures' specs on
distributed 2026.11.0.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

BOUND = 30.0
"""Seconds any one wait may take."""


def probe(make_executor: Callable[..., Any]) -> bool:
    """True when the bug shows on an executor from *make_executor*."""
    executor = make_executor(max_workers=2)
    executor.shutdown(wait=False)
    try:
        results = executor.map(abs, [-1, -2], timeout=BOUND)
        list(results)
    except RuntimeError:
        return False  # refused, as documented
    finally:
        executor.shutdown(wait=True)
    return True


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
        print("BUG: map() after shutdown() ran its calls instead of raising RuntimeError.")
        return 1
    print("OK: map() after shutdown() raised RuntimeError.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
