"""The one hook a deadlock watcher sets while it runs: ``None`` the rest of the time.

executor_impl never imports a watcher; a watcher (e.g. pytest-futures' ``DeadlockWatcher``)
sets :data:`watcher` to an object of its own for as long as it watches and puts ``None``
back after.  executor_impl reads it at call time, and only where a thread is about to block
with no timeout or a worker starts a call, so that costs one attribute read when nobody
watches.  The object must provide:

``park(future, parked)``
    Block the calling thread on ``parked.acquire()`` (the lock it parked on in
    ``Future.result()``/``exception()`` with no timeout), knowing that it waits on *future*.
``take(waiter, futures)``
    Block on ``waiter._gate.acquire()`` in ``wait()``/``as_completed()`` with no timeout,
    knowing that the thread waits on the not-yet-done *futures*; return what it returned.
``started(future)``
    The calling pool worker starts running *future* (it runs it until it picks its next call).

Each of them must block exactly as the call it replaces would, and must not raise.
"""

from __future__ import annotations

from typing import Any

__all__ = ["watcher"]

watcher: Any = None
