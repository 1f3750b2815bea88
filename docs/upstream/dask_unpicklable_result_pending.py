"""dask.distributed ClientExecutor: a call whose result cannot be pickled leaves its future
pending for ever (a cluster of worker processes).

``concurrent.futures``' process pool: a result that cannot be pickled fails that call's future
with the pickling error, and the pool goes on. On a ``LocalCluster`` of worker processes, the
worker runs the call, fails to serialize the result when the client asks for it (it logs
"Could not serialize object"), and the client's future never completes: ``result()`` and
``exception()`` wait until their timeout, for ever without one. After one such call the
executor goes on (the next call returns); after three on a cluster of two workers, the next
call stays pending as well (seen once, distributed 2026.11.0).

Other calls are lost with it: ``Client._gather`` fetches the results wanted at the same moment
in one request (a gather that starts while another is pending joins it), and the unpicklable
value fails that request as a whole, so a call whose result was fetched together with it stays
pending for good too, whichever was submitted first. The script shows it with a few calls
released together with the unpicklable one (a race: in our runs at least one of three was lost
every time); the exit status depends on the first part only.

    python dask_unpicklable_result_pending.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; every wait is
bounded. Confirmed standalone on distributed 2026.11.0.
"""

from __future__ import annotations

import concurrent.futures
import logging
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


def released_together(gate: str, unpicklable: bool) -> Any:
    """Wait for the distributed Event *gate* (bounded), then return 7 or an Unpicklable."""
    from distributed import Event

    Event(gate).wait(BOUND)
    return Unpicklable() if unpicklable else 7


SIBLINGS = 3
"""Calls released together with the unpicklable one (each on a thread of its own)."""


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
            threads_per_worker=SIBLINGS + 1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
            silence_logs=logging.CRITICAL,  # the worker's "Could not serialize object" logs
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
                print(lost_together(client, executor))
                return 1
            print(f"OK: the future failed with {error!r}.")
            return 0
        finally:
            executor.shutdown(wait=False)


def lost_together(client: Any, executor: Any) -> str:
    """Release SIBLINGS calls returning 7 together with one returning an unpicklable value;
    say how many of the SIBLINGS are still pending after the bound."""
    from distributed import Event

    gate = "dask-unpicklable-result-pending"
    siblings = [executor.submit(released_together, gate, False) for _ in range(SIBLINGS)]
    executor.submit(released_together, gate, True)
    Event(gate, client=client).set()
    _, pending = concurrent.futures.wait(siblings, timeout=BOUND)
    return (
        f"Also: of {SIBLINGS} calls returning 7, released together with another call returning "
        f"an unpicklable value, {len(pending)} still pending after {BOUND}s."
    )


if __name__ == "__main__":
    sys.exit(main())
