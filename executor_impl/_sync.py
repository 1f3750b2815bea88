"""The synchronisation seam: the only module of executor_impl that touches threads or time.

Every other module reaches the primitives below through this module's attributes at call
time (``_sync.allocate_lock()``, never ``from ._sync import allocate_lock``), so that a
controlled scheduler can replace them for the duration of a run and drive the very same
Future, wait, as_completed and ThreadPoolExecutor code through chosen interleavings.

The contract of each primitive is the contract of the stdlib object it stands for; a
replacement must keep it exactly:

``allocate_lock()``
    A new, released, non-reentrant lock with ``acquire(blocking=True, timeout=-1) -> bool``
    and ``release()`` (``RuntimeError`` when released while unlocked), usable as a context
    manager. executor_impl builds everything else from these: a thread that must block
    parks on a lock of its own that the waking thread releases.
``SimpleQueue()`` / ``Empty``
    An unbounded FIFO queue with ``put(item)``, ``get()`` (blocks), ``get_nowait()``
    (raises ``Empty``).
``start_thread(name, target, args)``
    Start a non-daemon thread running ``target(*args)`` and return an object with
    ``join(timeout=None)`` and ``name``.
``monotonic()``
    Seconds from a clock that never goes backwards; timeouts are measured on it.
``register_atexit(fn)``
    Call ``fn()`` at interpreter exit *before* non-daemon threads are joined (so that it can
    tell idle workers to exit), as ``concurrent.futures`` does.
``register_after_fork_in_child(fn)``
    Call ``fn()`` in the child process after a ``fork()``, where only the forking thread
    exists and any lock another thread held is held for ever.
``identity(obj)``
    An integer that orders objects consistently while they live (``id``): the order in
    which ``wait()`` and ``as_completed()`` lock several futures. A scheduler replays a run
    only if this order is the same in every run, so it replaces it with creation order.
"""

from __future__ import annotations

import _thread
import atexit
import os
import threading
from queue import Empty, SimpleQueue
from time import monotonic
from typing import Any, Callable

__all__ = [
    "Empty",
    "SimpleQueue",
    "allocate_lock",
    "identity",
    "monotonic",
    "register_after_fork_in_child",
    "register_atexit",
    "start_thread",
]

allocate_lock = _thread.allocate_lock
identity = id


def start_thread(
    name: str, target: Callable[..., object], args: tuple[Any, ...]
) -> threading.Thread:
    """Start and return a non-daemon thread named *name* running ``target(*args)``."""
    thread = threading.Thread(name=name, target=target, args=args)
    thread.start()
    return thread


def register_atexit(fn: Callable[[], object]) -> None:
    """Run *fn* at interpreter exit, before the threading module joins non-daemon threads."""
    # threading._register_atexit (3.9+) is what concurrent.futures itself uses: plain atexit
    # runs too late, after threading._shutdown() has already blocked joining our workers.
    hook = getattr(threading, "_register_atexit", None)
    if hook is None:  # pragma: no cover - every supported CPython has it
        atexit.register(fn)
    else:
        hook(fn)


def register_after_fork_in_child(fn: Callable[[], object]) -> None:
    """Run *fn* in the child process after ``os.fork()`` (nothing where fork does not exist)."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=fn)
