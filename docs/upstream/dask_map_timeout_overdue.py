"""dask.distributed ClientExecutor: a ``map()`` result taken after the deadline raises ValueError.

``concurrent.futures.Executor.map``: "The returned iterator raises a TimeoutError if
__next__() is called and the result isn't available after timeout seconds from the original
call to Executor.map()". ClientExecutor's iterator waits for each result with
``future.result(end_time - time())``; once the deadline has passed that number is negative,
and ``dask.utils.parse_timedelta`` turns ``-0.01`` into the string ``"1-0.01"``, which it
cannot parse: ``next()`` raises ``ValueError: could not convert string to float``, not
TimeoutError. The same root cause as https://github.com/dask/distributed/issues/4583 (open;
reported there from a failing CI test). In the specs it shows when a result is taken after the
deadline, which depends on how fast the first results come: a race there, certain here.

    python dask_map_timeout_overdue.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; every wait is
bounded. Confirmed standalone on distributed 2026.11.0.
"""

from __future__ import annotations

import concurrent.futures
import sys
from typing import Any

BOUND = 30.0
"""Seconds any one wait may take."""

DEADLINE = 1e-9
"""map()'s timeout: past before map() returns, so the time left is negative at next()."""


def probe(make_executor: Any) -> bool:
    """True when the bug shows on an executor from *make_executor* (called like the stdlib's
    pool classes): ``next()`` after the deadline raises ValueError."""
    executor = make_executor(max_workers=1)
    try:
        results = executor.map(abs, [-1], timeout=DEADLINE)
        try:
            next(results)
        except ValueError:
            return True
        except concurrent.futures.TimeoutError:
            return False
        return False
    finally:
        executor.shutdown(wait=True)


def main() -> int:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        executor = client.get_executor(pure=False)
        try:
            if executor.submit(abs, -1).result(timeout=BOUND) != 1:  # the worker is up
                raise RuntimeError("abs(-1) did not return 1")
            results: Any = executor.map(abs, [-1], timeout=DEADLINE)
            try:
                got = next(results)
            except concurrent.futures.TimeoutError:
                print("OK: next() raised TimeoutError once the deadline had passed.")
                return 0
            except ValueError as error:
                print(f"BUG: next() after map()'s deadline raised ValueError: {error}")
                return 1
            print(f"OK: next() gave {got!r} (the result was there in time).")
            return 0
        finally:
            executor.shutdown(wait=True)


if __name__ == "__main__":
    sys.exit(main())
