"""futurist ThreadPoolExecutor: deadlock when a done callback calls ``submit()`` while
``shutdown(wait=True)`` waits.

``concurrent.futures`` documents that ``submit()`` after ``shutdown()`` raises RuntimeError,
and that a done callback runs in the thread that completes the future. futurist's
``shutdown(wait=True)`` holds the executor's lock while it waits for the queue to drain, and
``submit()`` takes that lock before checking whether the executor is shut down. A call that
completes during the wait runs its done callback in the worker; the callback's ``submit()``
blocks on the lock, the worker never finishes the call, and ``shutdown`` waits for ever.

    python futurist_callback_submit_deadlock.py

exits 1 and says what is wrong while the bug is present, 0 once it is fixed; the deadlock is
detected by a bounded wait, after which the callback gives up so that the script ends.
``probe(make_executor)`` is the same check for any executor factory called like
``make_executor(max_workers=1)``.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

BOUND = 10.0
"""Seconds any one wait may take."""


def probe(make_executor: Callable[..., Any]) -> bool:
    """True when a done callback's ``submit()``, called while ``shutdown(wait=True)`` waits
    for that very call, neither returns nor raises within :data:`BOUND` seconds.

    The callback makes its ``submit()`` in a helper thread and gives up on it after the
    bound, so the worker finishes, the shutdown returns and no thread stays deadlocked.
    """
    started, release = threading.Event(), threading.Event()
    stuck: list[bool] = []

    def block() -> None:
        started.set()
        release.wait(BOUND)

    executor = make_executor(max_workers=1)

    def try_submit() -> None:
        try:
            executor.submit(pow, 2, 2)
        except RuntimeError:  # what the documentation promises after shutdown
            pass

    def resubmit(_: object) -> None:
        helper = threading.Thread(target=try_submit, daemon=True)
        helper.start()
        helper.join(BOUND)
        stuck.append(helper.is_alive())

    future = executor.submit(block)
    if not started.wait(BOUND):
        release.set()
        raise RuntimeError(f"the first call did not start within {BOUND}s")
    future.add_done_callback(resubmit)
    closer = threading.Thread(target=executor.shutdown, kwargs={"wait": True}, daemon=True)
    closer.start()
    closer.join(0.5)  # let shutdown reach its wait (bounded); the call is still blocked
    release.set()
    closer.join(3 * BOUND)
    if closer.is_alive():
        raise RuntimeError(f"shutdown(wait=True) did not return within {3 * BOUND}s")
    return stuck == [True]


def main() -> int:
    import futurist

    if probe(futurist.ThreadPoolExecutor):
        print(
            f"BUG: a done callback's submit() was still blocked after {BOUND}s: during "
            "shutdown(wait=True) it waits on the lock that shutdown holds while waiting for "
            "the very call whose callback this is -- a deadlock (the callback gave up so that "
            "this script can end)."
        )
        return 1
    print("OK: shutdown(wait=True) returned; the callback's submit() was refused or ran.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
