"""futurist ThreadPoolExecutor: ``shutdown(cancel_futures=True)`` cancels nothing.

``concurrent.futures.Executor.shutdown`` documents: "If cancel_futures is True, this method
will cancel all pending futures that the executor has not started running."
futurist's ``ThreadPoolExecutor.shutdown`` accepts the keyword and ignores it: the queued
calls still run after the shutdown.

    python futurist_shutdown_cancel_futures.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; every wait is
bounded. ``probe(make_executor)`` is the same check for any executor factory called like
``make_executor(max_workers=1)``. Found by pytest-futures' cancellation specs (futurist 3.5.0).
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

BOUND = 10.0
"""Seconds any one wait may take."""


def probe(make_executor: Callable[..., Any]) -> bool:
    """True when ``shutdown(wait=True, cancel_futures=True)`` lets queued calls run."""
    started, release = threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        release.wait(BOUND)

    executor = make_executor(max_workers=1)
    try:
        executor.submit(block)
        if not started.wait(BOUND):
            raise RuntimeError(f"the first call did not start within {BOUND}s")
        queued = [executor.submit(pow, 2, n) for n in range(3)]
        closer = threading.Thread(
            target=executor.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True
        )
        closer.start()
        # The stdlib cancels the queued calls before it waits for the running one; give the
        # closer a moment on the clock, bounded, then let the running call finish.
        closer.join(0.5)
        release.set()
        closer.join(BOUND)
        if closer.is_alive():
            raise RuntimeError(f"shutdown(wait=True) did not return within {BOUND}s")
        ran = [f for f in queued if f.done() and not f.cancelled()]
        return bool(ran)
    finally:
        release.set()


def main() -> int:
    import futurist

    if probe(futurist.ThreadPoolExecutor):
        print(
            f"BUG (futurist {futurist_version()}): shutdown(cancel_futures=True) did not cancel "
            "the calls still queued; they ran after the shutdown."
        )
        return 1
    print("OK: shutdown(cancel_futures=True) cancelled the queued calls.")
    return 0


def futurist_version() -> str:
    from importlib.metadata import version

    return version("futurist")


if __name__ == "__main__":
    sys.exit(main())
