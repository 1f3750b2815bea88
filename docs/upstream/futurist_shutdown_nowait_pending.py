"""futurist ThreadPoolExecutor: ``shutdown(wait=False)`` leaves queued calls PENDING for ever.

``concurrent.futures.Executor.shutdown`` documents for ``wait=False``: the method returns at
once, and "the resources associated with the executor will be freed when all pending futures
are done executing" -- the calls already submitted still run (unless ``cancel_futures``).
futurist stops its worker threads after the call each one is running, so the calls still in
the queue never run and their futures are never done: a ``result()`` on one waits for ever.

    python futurist_shutdown_nowait_pending.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; every wait is
bounded. ``probe(make_executor)`` is the same check for any executor factory called like
``make_executor(max_workers=1)``. Confirmed standalone on futurist 3.5.0 (the shutdown spec stops first at the error's wording).
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
from typing import Any, Callable

BOUND = 10.0
"""Seconds any one wait may take."""


def probe(make_executor: Callable[..., Any]) -> bool:
    """True when calls queued before ``shutdown(wait=False)`` are still not done after
    :data:`BOUND` seconds (and nothing cancelled them)."""
    started, release = threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        release.wait(BOUND)

    executor = make_executor(max_workers=1)
    try:
        running = executor.submit(block)
        if not started.wait(BOUND):
            raise RuntimeError(f"the first call did not start within {BOUND}s")
        queued = [executor.submit(pow, 2, n) for n in range(3)]
        executor.shutdown(wait=False)
        release.set()
        running.result(timeout=BOUND)
        _, not_done = concurrent.futures.wait(queued, timeout=BOUND)
        return bool(not_done)
    finally:
        release.set()


def main() -> int:
    import futurist

    if probe(futurist.ThreadPoolExecutor):
        print(
            "BUG: after shutdown(wait=False), calls submitted before it never run: their "
            f"futures are still PENDING {BOUND}s later, and a result() on them never returns."
        )
        return 1
    print("OK: calls queued before shutdown(wait=False) ran.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
