"""dask.distributed ClientExecutor: a call raising a BaseException that is not an Exception
makes ``map()`` wait for ever and ``shutdown(wait=True)`` hang.

``concurrent.futures.Executor.map``: "If a fn call raises an exception, then that exception
will be raised when its value is retrieved from the iterator". A call raising a subclass of
``BaseException`` that is not an ``Exception`` (the stdlib's pools deliver any) makes
ClientExecutor's iterator wait until its timeout, then raise TimeoutError; without a timeout
it waits for ever. ``submit()`` delivers the same exception. The iterator takes each result
with the distributed ``Future.result()``, which runs ``distributed.utils.sync``: its coroutine
wrapper catches only ``Exception``, so the BaseException escapes into the event loop (tornado
logs "Exception in callback") and the waiting thread is never woken. ``shutdown(wait=True)``
waits for the executor's futures through the same ``sync`` (its ``_wait_on_futures`` catches
only ``Exception`` too), so once such a call ran it never returns. (The worker side was
fixed for dask/distributed#5958; this is the client side. dask/distributed#8514 mentions the
``except Exception`` in ``sync`` in passing, for another symptom.)

    python dask_base_exception_hangs.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; every wait is
bounded. Confirmed standalone on distributed 2026.11.0.
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
from typing import Any

BOUND = 10.0
"""Seconds the script waits for the result (a correct executor takes milliseconds)."""


class Stop(BaseException):
    """A BaseException that is not an Exception (as KeyboardInterrupt, SystemExit are)."""


def stop(value: int) -> int:
    raise Stop(value)


def probe(make_executor: Any) -> bool:
    """True when the bug shows on an executor from *make_executor*: ``map()`` gives no result
    for a call raising a BaseException that is not an Exception."""
    executor = make_executor(max_workers=1)
    try:
        next(executor.map(stop, [2], timeout=BOUND))
    except Stop:
        return False
    except concurrent.futures.TimeoutError:
        return True
    finally:
        executor.shutdown(wait=False)
    return True


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
            submitted = executor.submit(stop, 1).exception(timeout=BOUND)
            print(f"submit(): the future's exception is {submitted!r}")
            bugs = []
            try:
                next(executor.map(stop, [2], timeout=BOUND))
                bugs.append("map() yielded a value for a call that raised")
            except Stop as error:
                print(f"map() raised {error!r}.")
            except concurrent.futures.TimeoutError:
                bugs.append(f"map() gave no result and raised TimeoutError after {BOUND}s")
            shutdown = threading.Thread(target=executor.shutdown, daemon=True)
            shutdown.start()
            shutdown.join(BOUND)
            if shutdown.is_alive():
                bugs.append(f"shutdown(wait=True) had not returned after {BOUND}s")
        finally:
            executor.shutdown(wait=False)
    if bugs:
        print("BUG: " + "; ".join(bugs) + ".")
        return 1
    print("OK: map() raised the exception and shutdown(wait=True) returned.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
