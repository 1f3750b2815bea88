"""loky ProcessPoolExecutor: a call that raises an unpicklable exception breaks the executor.

``concurrent.futures.ProcessPoolExecutor`` fails only that call's future when its exception
cannot be pickled back (since CPython 3.7 the worker sends a ``_ExceptionWithTraceback`` or,
failing that, a ``PicklingError`` about it; the pool goes on). loky's worker instead dies
while sending the result, so the executor breaks: the call's future fails with
``TerminatedWorkerError``/``BrokenProcessPool`` and every later ``submit()`` on that executor
fails too.

    python loky_unpicklable_exception.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; every wait is
bounded. ``probe(make_executor)`` is the same check for any executor factory called like
``make_executor(max_workers=1)``. Found by pytest-futures' exception specs (loky 3.7.0).
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
from typing import Any, Callable

BOUND = 60.0
"""Seconds any one wait may take (a process pool starting on a loaded machine)."""


class Unpicklable(Exception):
    """An exception whose lock attribute cannot be pickled (by pickle or cloudpickle)."""

    def __init__(self) -> None:
        super().__init__("carries a lock")
        self.lock = threading.Lock()


def raise_unpicklable() -> None:
    raise Unpicklable


def probe(make_executor: Callable[..., Any]) -> bool:
    """True when, after a call raised an unpicklable exception, the next call on the same
    executor fails (the executor broke) instead of returning its result."""
    executor = make_executor(max_workers=1)
    try:
        first = executor.submit(raise_unpicklable)
        try:
            first.result(timeout=BOUND)
        except concurrent.futures.TimeoutError:
            raise
        except BaseException:
            pass  # failing this call is right; what matters is the next one
        try:
            return executor.submit(pow, 2, 10).result(timeout=BOUND) != 1024
        except concurrent.futures.TimeoutError:
            raise
        except Exception:
            return True
    finally:
        executor.shutdown(wait=True)


def main() -> int:
    import loky

    executor = loky.ProcessPoolExecutor(max_workers=1)
    try:
        first = executor.submit(raise_unpicklable)
        error = first.exception(timeout=BOUND)
        try:
            executor.submit(pow, 2, 10).result(timeout=BOUND)
        except Exception as later:
            print(
                "BUG: a call raising an unpicklable exception broke the executor.\n"
                f"  that call failed with: {type(error).__name__}: {_first_line(error)}\n"
                f"  the next submit() failed with: {type(later).__name__}: {_first_line(later)}"
            )
            return 1
    finally:
        executor.shutdown(wait=True)
    print(f"OK: only that call failed ({type(error).__name__}); the executor still works.")
    return 0


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else ""


if __name__ == "__main__":
    sys.exit(main())
