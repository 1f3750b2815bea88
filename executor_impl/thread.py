"""ThreadPoolExecutor: run calls on a pool of reusable threads.

Data flow::

    submit() --(future, fn, args, kwargs)--> SimpleQueue --get()--> worker thread
       |                                                            runs fn, sets future
       +-- starts a worker when none is idle and fewer than max_workers exist

A worker counts itself idle just before it blocks on an empty queue,
and ``submit`` spends one idle count instead of starting a thread, so idle threads are reused
first.  ``None`` in the queue tells the worker that dequeues it to exit; it puts ``None``
back so the next worker exits too.  Workers hold only a weak reference to the executor:
dropping the executor makes them exit once the queue drains.

Differences from ``concurrent.futures.thread`` (each a bug fix, none a new API):

* ``shutdown(cancel_futures=True)`` also notifies ``wait()``/``as_completed()`` waiters of
  the futures it cancels (CPython gh-109934, gh-87893: the stdlib only cancels them, so a
  ``wait(fs)`` blocked on one of them never returns).
* When an initializer fails, queued futures that the user had already cancelled are
  notified as cancelled instead of raising ``InvalidStateError`` inside the worker; the others
  fail with ``BrokenThreadPool`` as in the stdlib.  Their callbacks run after the pool's lock
  is released, so a callback may call ``submit`` without deadlocking; the same for the
  futures ``shutdown(cancel_futures=True)`` cancels.
* A forked child gives every pool it inherited new locks, an empty queue and no threads
  (see ``_after_fork_in_child``).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import weakref
from concurrent.futures.thread import BrokenThreadPool
from typing import TYPE_CHECKING, Any, TypeVar

from . import _hooks, _sync
from ._executor import Executor
from ._future import LOGGER, Future

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

__all__ = ["BrokenThreadPool", "ThreadPoolExecutor"]

_T = TypeVar("_T")

_SHUTDOWN = "cannot schedule new futures after shutdown"
_INTERPRETER_SHUTDOWN = "cannot schedule new futures after interpreter shutdown"
_BROKEN = "A thread initializer failed, the thread pool is not usable anymore"

# Every pool not yet garbage-collected, so that interpreter exit can stop them all.
_live_pools: weakref.WeakSet[ThreadPoolExecutor] = weakref.WeakSet()
# Every worker thread still running -> its queue (it outlives a collected pool).
_live_workers: weakref.WeakKeyDictionary[threading.Thread, Any] = weakref.WeakKeyDictionary()
_interpreter_exiting = False

_cpu_count: Callable[[], int | None] = getattr(os, "process_cpu_count", os.cpu_count)


def _python_exit() -> None:
    """At interpreter exit: refuse new work, let queued work finish, join every worker."""
    global _interpreter_exiting
    _interpreter_exiting = True
    for pool in list(_live_pools):
        pool._close(_INTERPRETER_SHUTDOWN, cancel_futures=False)
    workers = list(_live_workers.items())
    for _thread, work_queue in workers:
        work_queue.put(None)
    for thread, _queue in workers:
        thread.join()


def _after_fork_in_child() -> None:
    """Give every pool a fresh start in a forked child, where none of its threads exist.

    A lock another thread held at the fork would otherwise be held for ever, and the
    child's exit (``_python_exit``) would hang on it (the stdlib's bpo-45021, for its global
    lock).  The parent's queued calls stay the parent's business: the child's pool starts
    empty and starts its own threads when used.
    """
    _live_workers.clear()
    for pool in list(_live_pools):
        pool._lock = _sync.allocate_lock()
        pool._idle_lock = _sync.allocate_lock()
        pool._work_queue = _sync.SimpleQueue()
        pool._threads = set()
        pool._idle = 0


_sync.register_atexit(_python_exit)
_sync.register_after_fork_in_child(_after_fork_in_child)


def _worker(
    pool_ref: weakref.ReferenceType[ThreadPoolExecutor],
    work_queue: Any,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
) -> None:
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            LOGGER.critical("Exception in initializer:", exc_info=True)
            pool = pool_ref()
            if pool is not None:
                pool._initializer_failed()
            return
    get, get_nowait, empty = work_queue.get, work_queue.get_nowait, _sync.Empty
    try:
        while True:
            try:
                item = get_nowait()
            except empty:
                pool = pool_ref()
                if pool is not None:
                    pool._mark_idle()
                del pool
                item = get()
            if item is None:
                work_queue.put(None)  # wake the next worker: it exits too
                return
            future, fn, args, kwargs = item
            del item
            if future.set_running_or_notify_cancel():
                if _hooks.watcher is not None:  # a deadlock watcher, while one runs
                    _hooks.watcher.started(future)
                try:
                    result = fn(*args, **kwargs) if kwargs else fn(*args)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
                    del result
            # Drop every reference before blocking again (CPython gh-60488).
            del future, fn, args, kwargs
    except BaseException:  # pragma: no cover - only a bug in this module gets here
        LOGGER.critical("Exception in worker", exc_info=True)


class ThreadPoolExecutor(Executor, concurrent.futures.ThreadPoolExecutor):
    """An executor that runs each call in one of at most *max_workers* threads.

    Drop-in for ``concurrent.futures.ThreadPoolExecutor``; it also derives from that class
    (without running its ``__init__``) because ``loop.set_default_executor`` accepts nothing
    else.
    """

    _counter = itertools.count().__next__
    # The stdlib's name and falsy value, which code polling for a broken pool reads (the
    # stdlib declares it bool; it holds the message once broken, as the stdlib's does).
    _broken: str | bool  # type: ignore[assignment]

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        """Create a pool of at most *max_workers* threads (default: min(32, CPUs + 4)).

        Threads are named ``f"{thread_name_prefix}_{n}"`` and each runs
        ``initializer(*initargs)`` first; if that raises, the pool is broken.

        Raises ``ValueError`` if *max_workers* <= 0, ``TypeError`` if *initializer* is not
        callable.
        """
        if max_workers is None:
            # As the stdlib: I/O-bound work wants more threads than cores, but not hundreds.
            max_workers = min(32, (_cpu_count() or 1) + 4)
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._max_workers = max_workers
        self._thread_name_prefix = thread_name_prefix or f"ThreadPoolExecutor-{self._counter()}"
        self._worker_args = (initializer, initargs)
        self._work_queue: Any = _sync.SimpleQueue()
        self._lock = _sync.allocate_lock()  # guards the fields below but _idle
        self._threads: set[threading.Thread] = set()
        # Workers that are (about to be) blocked on the empty queue.  A lock of its own, so
        # that a worker never waits for the pool's lock, which submit() holds while it starts
        # a thread: the new worker can finish its first call and count itself idle before
        # the next submit() looks.
        self._idle_lock = _sync.allocate_lock()
        self._idle = 0
        self._broken: str | bool = False  # the BrokenThreadPool message once broken
        self._shutdown_reason: str | None = None  # the RuntimeError message once shut down
        _live_pools.add(self)
        if _interpreter_exiting:
            self._shutdown_reason = _INTERPRETER_SHUTDOWN

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)`` and return a Future representing the call.

        Raises ``RuntimeError`` after ``shutdown()``, ``BrokenThreadPool`` once an
        initializer failed.
        """
        future: Future[_T] = Future()
        with self._lock:
            if self._broken:
                raise BrokenThreadPool(self._broken)
            if self._shutdown_reason is not None:
                raise RuntimeError(self._shutdown_reason)
            # An empty kwargs dict is dropped: a queued call then costs 64 bytes less.
            self._work_queue.put((future, fn, args, kwargs or None))
            if not self._take_idle() and len(self._threads) < self._max_workers:
                self._start_worker()
        return future

    def _start_worker(self) -> None:
        # Called with self._lock held.
        def wake_on_collect(_: object, work_queue: Any = self._work_queue) -> None:
            work_queue.put(None)

        thread = _sync.start_thread(
            f"{self._thread_name_prefix or self}_{len(self._threads)}",
            _worker,
            (weakref.ref(self, wake_on_collect), self._work_queue, *self._worker_args),
        )
        self._threads.add(thread)
        _live_workers[thread] = self._work_queue

    def _mark_idle(self) -> None:
        with self._idle_lock:
            self._idle += 1

    def _take_idle(self) -> bool:
        """Spend one idle worker on the call just queued; False if none is idle."""
        # The unlocked read only saves a lock round-trip on a busy pool (nobody idle): a
        # worker that becomes idle right after it is read as 0 costs at most one thread
        # more, never more than max_workers.
        if not self._idle:
            return False
        with self._idle_lock:
            if self._idle:
                self._idle -= 1
                return True
            return False

    def _drain(self) -> list[Future[Any]]:
        # Called with self._lock held: take every queued call's future off the queue.
        futures: list[Future[Any]] = []
        get_nowait, empty = self._work_queue.get_nowait, _sync.Empty
        while True:
            try:
                item = get_nowait()
            except empty:
                return futures
            if item is not None:
                futures.append(item[0])

    def _initializer_failed(self) -> None:
        with self._lock:
            self._broken = _BROKEN
            futures = self._drain()
        for future in futures:
            if future.set_running_or_notify_cancel():
                future.set_exception(BrokenThreadPool(_BROKEN))

    def _close(self, reason: str, *, cancel_futures: bool) -> list[Future[Any]]:
        """Refuse new calls with *reason*, tell the workers to exit once the queue drains.

        Returns the futures taken off the queue if *cancel_futures*, for the caller to
        cancel once the lock is released.
        """
        with self._lock:
            if self._shutdown_reason is None:
                self._shutdown_reason = reason
            cancelled = self._drain() if cancel_futures else []
            self._work_queue.put(None)
        return cancelled

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting calls and free the threads once the queue is empty.

        With *cancel_futures*, first cancel every call that has not started (their waiters
        are notified); with *wait*, return only after every worker thread exited.  Safe to
        call more than once.
        """
        for future in self._close(_SHUTDOWN, cancel_futures=cancel_futures):
            if future.cancel():
                future.set_running_or_notify_cancel()  # wake wait()/as_completed() too
        if wait:
            for thread in list(self._threads):
                thread.join()
