"""dask.distributed ClientExecutor: a call whose result cannot be pickled leaves its future
pending for ever (a cluster of worker processes).

``concurrent.futures``' process pool: a result that cannot be pickled fails that call's future
with the pickling error, and the pool goes on. On a ``LocalCluster`` of worker processes, the
worker runs the call, fails to serialize the result when the client asks for it (it logs
"Could not serialize object"), and the client's future never completes: ``result()`` and
``exception()`` wait until their timeout, for ever without one. After one such call the
executor goes on (the next call returns); after three on a cluster of two workers, the next
call stays pending as well (seen once, distributed 2026.11.0; this script checks the first
part only).

    python dask_unpicklable_result_pending.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; every wait is
bounded. Confirmed standalone on distributed 2026.11.0.
"""

from __future__ import annotations

import concurrent.futures
import sys
from typing import Any

BOUND = 20.0
"""Seconds the script waits for the future (a correct executor takes well under one)."""


class Unpicklable:
    """A value that refuses to be pickled."""

    def __reduce__(self) -> Any:
        raise TypeError("an Unpicklable cannot be pickled")


def make_unpicklable() -> Unpicklable:
    return Unpicklable()


def probe(make_executor: Any) -> bool:
    """True when the bug shows on an executor from *make_executor* (a pool of processes):
    the future of a call returning an unpicklable value is still pending after the bound.
    (On a pool of threads nothing is pickled: the call returns its value.)"""
    executor = make_executor(max_workers=1)
    try:
        future = executor.submit(make_unpicklable)
        try:
            future.exception(timeout=BOUND)
        except concurrent.futures.TimeoutError:
            return True
        return False
    finally:
        executor.shutdown(wait=False)


def main() -> int:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        executor = client.get_executor(pure=False)
        try:
            future = executor.submit(make_unpicklable)
            try:
                error = future.exception(timeout=BOUND)
            except concurrent.futures.TimeoutError:
                later = executor.submit(abs, -1).result(timeout=BOUND)
                print(
                    f"BUG: the future of a call returning an unpicklable value is still "
                    f"pending after {BOUND}s ({future!r}); the next call returned {later!r}."
                )
                return 1
            print(f"OK: the future failed with {error!r}.")
            return 0
        finally:
            executor.shutdown(wait=False)


if __name__ == "__main__":
    sys.exit(main())
