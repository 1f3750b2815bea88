"""executorlib: ``cancel()`` right after ``submit()`` kills the scheduler thread; later calls never run.

``concurrent.futures.Future.cancel``: a call that has not started is cancelled and will not
run; the executor goes on with the other calls. executorlib's ``SingleNodeExecutor`` hands
each submitted call to a scheduler thread (``_execute_tasks_with_dependencies``), which asks
the call's future for its exception (``check_exception_was_raised`` in
``executorlib/standalone/interactive/arguments.py``: ``future.exception(timeout=...)``). On a
future cancelled before the thread took the call, that raises ``CancelledError``, which nothing
catches: the thread dies. From then on no call submitted to the executor runs (its future stays
PENDING), and ``shutdown(wait=True)`` waits for ever for the queue the dead thread no longer
empties.

    python executorlib_cancel_kills_scheduler.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; every wait is
bounded. ``probe(make_executor)`` is the same check for any executor factory called like
``make_executor(max_workers=1)``. The scheduler thread sleeps between polls, so a ``cancel()``
right after ``submit()`` nearly always comes first; the script tries up to ``ATTEMPTS`` fresh
executors until one ``cancel()`` succeeds. Confirmed standalone on executorlib 1.11.0
(CPython 3.11).

Left behind while the bug is present: the ``shutdown()`` thread (a daemon, still waiting) and
the executor's worker thread (not a daemon: it waits for work that never comes, and would keep
the interpreter from exiting, so the script ends with ``os._exit``).
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
from typing import Any, Callable

BOUND = 10.0
"""Seconds any one wait may take."""

ATTEMPTS = 3
"""Fresh executors tried until a ``cancel()`` right after ``submit()`` succeeds."""


def shut_down(executor: Any) -> bool:
    """``executor.shutdown(wait=True)`` in a daemon thread; whether it returned within
    :data:`BOUND` seconds (if not, the thread is left waiting)."""
    shutdown = threading.Thread(target=executor.shutdown, name="shutdown", daemon=True)
    shutdown.start()
    shutdown.join(BOUND)
    return not shutdown.is_alive()


def attempt(make_executor: Callable[..., Any]) -> tuple[bool, bool, bool]:
    """One fresh executor: whether ``cancel()`` right after ``submit()`` succeeded, whether a
    call submitted after it then failed to run within :data:`BOUND` seconds, and whether
    ``shutdown(wait=True)`` then returned within :data:`BOUND` seconds."""
    executor = make_executor(max_workers=1)
    stuck = False
    try:
        cancelled = executor.submit(pow, 2, 3).cancel()
        if cancelled:
            later = executor.submit(pow, 2, 4)
            try:
                stuck = later.result(timeout=BOUND) != 16
            except concurrent.futures.TimeoutError:
                stuck = True
    finally:
        returned = shut_down(executor)
    return cancelled, stuck, returned


def probe(make_executor: Callable[..., Any]) -> bool:
    """True when, after a pending call was cancelled, a later call does not run within
    :data:`BOUND` seconds (tried on up to :data:`ATTEMPTS` executors until one ``cancel()``
    succeeds; False if none does)."""
    for _ in range(ATTEMPTS):
        cancelled, stuck, _ = attempt(make_executor)
        if cancelled:
            return stuck
    return False


def main() -> int:
    from executorlib import SingleNodeExecutor

    for number in range(1, ATTEMPTS + 1):
        cancelled, stuck, returned = attempt(SingleNodeExecutor)
        if not cancelled:
            print(f"attempt {number}: the call had started; cancel() returned False.")
            continue
        bugs = []
        if stuck:
            bugs.append(
                "after cancel() of a pending call returned True, a call submitted later "
                f"had not run {BOUND}s later (the scheduler thread died of CancelledError)"
            )
        if not returned:
            bugs.append(f"shutdown(wait=True) had not returned after {BOUND}s")
        if bugs:
            print("BUG: " + "; ".join(bugs) + ".")
            return 1
        print("OK: the later call ran and shutdown(wait=True) returned.")
        return 0
    print(f"NOT SHOWN: in {ATTEMPTS} attempts the call had always started before cancel().")
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # the bug leaves a non-daemon worker thread waiting for ever
