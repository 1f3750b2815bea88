"""Waits that register themselves while a deadlock watcher runs: no other thread's frames read.

The deadlock watcher (:mod:`._deadlocks`) needs to know, for every thread, whether it is
blocked with no timeout on futures (and on which), and which thread runs which future.  Reading
that from other threads' stacks (``sys._current_frames()`` and ``frame.f_back``) can crash
CPython 3.11 (gh-99110 family: a frame object of a running thread may point at a popped
interpreter frame), so instead, while at least one watcher is active (:func:`activate` ...
:func:`deactivate`, counted), each such wait records itself from its own thread, and so does
each pool worker that starts a call:

* the stdlib's futures (and subclasses that keep its methods, loky's among them):
  ``Future.result()``/``exception()``, and the waiter that ``wait()``/``as_completed()`` look
  up at call time (``_base._create_and_install_waiters``), are patched at class/module level;
  ``concurrent.futures.thread._WorkItem.run`` records the running future; ``Thread.join()``;
* executor_impl calls the hook :data:`executor_impl._hooks.watcher` where it is about to
  block with no timeout, and where a worker starts a call.

Everything is put back exactly as it was when the last watcher stops; a patched function
called after that (someone else patched on top of ours) simply calls the original.  A wait
records its kind, its futures, its thread, the user's source line (read from its own frames,
which is safe) and how to wake it without completing anything (:attr:`Wait.wake`).  Waking
a stdlib ``result()`` notifies its future's condition: another thread in ``result(timeout=)``
on that same deadlocked future then sees its ``TimeoutError`` early, as on the spurious
wake-up the stdlib allows.  Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import sysconfig
import threading
import weakref
from concurrent.futures import _base
from typing import TYPE_CHECKING, Any, Callable

import executor_impl._hooks

if TYPE_CHECKING:
    from types import FrameType

__all__ = [
    "LOCK_BOUND",
    "Wait",
    "activate",
    "active",
    "deactivate",
    "running",
    "user_frame",
    "waits",
]

LOCK_BOUND = 1.0
"""Seconds a wake-up waits for a future's lock (its holder is running, it releases it soon)."""

_DONE = frozenset((_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED, _base.FINISHED))
_NOTIFIED = frozenset((_base.CANCELLED_AND_NOTIFIED, _base.FINISHED))
_AS_COMPLETED = "_AS_COMPLETED"  # the stdlib's (and executor_impl's) waiter mode
_MAP = ("concurrent/futures/_base.py", "executor_impl/_executor.py")
_POOLS = (
    "concurrent/futures/thread.py",
    "concurrent/futures/process.py",
    "executor_impl/thread.py",
    "executor_impl/process.py",
)
# Frames of the stdlib, this plugin and executor_impl are not "the user's code" in a report.
_PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_DIRS = tuple(
    os.path.normpath(path).replace(os.sep, "/") + "/"
    for path in (sysconfig.get_paths()["stdlib"], _PLUGIN_DIR, _PLUGIN_DIR + "/../executor_impl")
)

waits: dict[int, Wait] = {}
"""id(wait) -> every wait in progress (written by the waiting threads, read by watchers)."""
running: dict[int, weakref.ref[Any]] = {}
"""Thread ident -> (a weak reference to) the future that pool worker runs (executor_impl's: the
last one it started; weak, so that no future outlives its call because a watcher looked)."""

_sequence = itertools.count()
_lock = threading.Lock()
_active = 0
_patches: list[tuple[Any, str, Any, Any]] = []  # (owner, name, original, ours)


def active() -> bool:
    """Whether some watcher is active (waits register themselves)."""
    return _active > 0


class Wait:
    """One thread's wait with no timeout: what it needs, where it is, how to wake it."""

    __slots__ = ("every", "futures", "ident", "joined", "kind", "seq", "via", "wake", "where")

    def __init__(self, kind: str, futures: list[Any], *, every: bool = True) -> None:
        self.kind = kind  # result, exception, wait, as_completed, join
        self.futures = futures
        self.every = every  # needs every future (else any one)
        self.ident = threading.get_ident()
        self.joined: threading.Thread | None = None
        self.wake: Callable[[], bool] | None = None  # unblock without completing anything
        self.where = ""
        self.via: list[str] = []
        self.seq = next(_sequence)

    def __enter__(self) -> Wait:
        frame = sys._getframe(1)  # our own stack: safe to read
        self.where = user_frame(frame)
        self.via = _contexts(frame)
        waits[id(self)] = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        waits.pop(id(self), None)


def _path(frame: FrameType) -> str:
    return frame.f_code.co_filename.replace(os.sep, "/")


def user_frame(frame: FrameType | None) -> str:
    """``file:line in function`` of the first frame outside the stdlib and this package."""
    while frame is not None:
        path = _path(frame)
        if not path.startswith(_LIBRARY_DIRS) and not path.startswith("<"):
            return f"{os.path.basename(path)}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return ""


def _contexts(frame: FrameType | None) -> list[str]:
    """The enclosing API calls worth naming (``map``'s iterator, ``shutdown``), outermost first."""
    found: list[str] = []
    while frame is not None:
        name, path = frame.f_code.co_name, _path(frame)
        if name in ("result_iterator", "_results_in_order") and path.endswith(_MAP):
            found.append("Executor.map() results")
        elif name == "shutdown" and path.endswith(_POOLS):
            found.append(f"{type(frame.f_locals.get('self')).__name__}.shutdown()")
        frame = frame.f_back
    return found[::-1]


# -- the stdlib ---------------------------------------------------------------------------------


def _block_on_stdlib_future(future: Any, kind: str) -> None:
    """Wait, registered, until *future* is done or a watcher woke this wait (then raise
    ``TimeoutError``, as the stdlib's ``result()`` does on a spurious wake-up)."""
    condition = future._condition
    with Wait(kind, [future]) as wait:
        woken = []

        def wake() -> bool:
            if not condition.acquire(True, LOCK_BOUND):
                return False
            try:
                woken.append(True)
                condition.notify_all()  # the others re-check their own state
            finally:
                condition.release()
            return True

        wait.wake = wake
        with condition:
            while future._state not in _DONE and not woken:
                condition.wait()
    if future._state not in _DONE:
        raise _base.TimeoutError()


def _patched_result(original: Any) -> Any:
    @functools.wraps(original)
    def result(self: Any, timeout: float | None = None) -> Any:
        if timeout is None and _active and self._state not in _DONE:
            _block_on_stdlib_future(self, "result")
        return original(self, timeout)

    return result


def _patched_exception(original: Any) -> Any:
    @functools.wraps(original)
    def exception(self: Any, timeout: float | None = None) -> Any:
        if timeout is None and _active and self._state not in _DONE:
            _block_on_stdlib_future(self, "exception")
        return original(self, timeout)

    return exception


_Event = threading.Event  # the real one, whatever a scheduler patches later


class _WatchedEvent(_Event):
    """The event of a ``wait()``/``as_completed()`` waiter of the stdlib: registers its waits."""

    def __init__(self, fs: Any, return_when: str) -> None:
        super().__init__()
        self._fs = fs  # the caller's set: as_completed() takes yielded futures out of it
        self._return_when = return_when

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None or not _active or self.is_set():
            return super().wait(timeout)
        return_when = self._return_when
        kind = "as_completed" if return_when == _AS_COMPLETED else "wait"
        futures = [f for f in list(self._fs) if f._state not in _NOTIFIED]
        with Wait(kind, futures, every=return_when == _base.ALL_COMPLETED) as wait:
            if kind == "wait":  # wait() then returns what is done (as_completed would loop)
                wait.wake = self._wake
            return super().wait()

    def _wake(self) -> bool:
        self.set()
        return True


def _patched_waiters(original: Any) -> Any:
    @functools.wraps(original)
    def _create_and_install_waiters(fs: Any, return_when: str) -> Any:
        waiter = original(fs, return_when)
        # The caller holds every future's lock: nothing has set the event yet.  An event of
        # another type (a scheduler's, say) is left alone.
        if _active and type(waiter.event) is _Event:
            waiter.event = _WatchedEvent(fs, return_when)
        return waiter

    return _create_and_install_waiters


def _patched_run(original: Any) -> Any:
    @functools.wraps(original)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _active:
            return original(self, *args, **kwargs)
        ident = threading.get_ident()
        running[ident] = weakref.ref(self.future)
        try:
            return original(self, *args, **kwargs)
        finally:
            running.pop(ident, None)

    return run


def _patched_join(original: Any) -> Any:
    @functools.wraps(original)
    def join(self: threading.Thread, timeout: float | None = None) -> None:
        if timeout is not None or not _active or self is threading.current_thread():
            return original(self, timeout)  # type: ignore[no-any-return]
        with Wait("join", []) as wait:
            wait.joined = self
            return original(self, timeout)  # type: ignore[no-any-return]

    return join


# -- executor_impl ------------------------------------------------------------------------------


class _Hook:
    """What executor_impl calls (see :mod:`executor_impl._hooks`) while a watcher runs."""

    def park(self, future: Any, parked: Any) -> None:
        caller = sys._getframe(2).f_code.co_name  # our own stack: result() or exception()
        with Wait("exception" if caller == "exception" else "result", [future]) as wait:
            wait.wake = lambda: _wake_parked(future, parked)
            parked.acquire()

    def take(self, waiter: Any, waiting_on: Any) -> bool:
        futures = [f for f in list(waiting_on) if f._state not in _NOTIFIED]
        mode = waiter._mode
        kind = "as_completed" if mode == _AS_COMPLETED else "wait"
        with Wait(kind, futures, every=mode == _base.ALL_COMPLETED) as wait:
            if kind == "wait":  # wait() then returns what is done (as_completed would loop)
                wait.wake = lambda: _open_gate(waiter)
            return bool(waiter._gate.acquire())

    def started(self, future: Any) -> None:
        running[threading.get_ident()] = weakref.ref(future)


def _wake_parked(future: Any, parked: Any) -> bool:
    """Unpark one ``result()`` of executor_impl: it finds the future not done (TimeoutError)."""
    lock = future._condition
    if not lock.acquire(True, LOCK_BOUND):
        return False
    try:
        blocked = future._blocked
        if not blocked or not any(p is parked for p in blocked):
            return False
        blocked.remove(parked)
    finally:
        lock.release()
    parked.release()
    return True


def _open_gate(waiter: Any) -> bool:
    """Open the gate of one executor_impl ``wait()``: it returns what finished so far."""
    guard = waiter._lock
    if not guard.acquire(True, LOCK_BOUND):
        return False
    try:
        if waiter._open:
            return False
        waiter._open = True
        waiter._gate.release()
    finally:
        guard.release()
    return True


# -- installing -----------------------------------------------------------------------------------


def activate() -> None:
    """One more watcher watches: the first one installs the patches and the hook."""
    global _active
    import concurrent.futures.thread as stdlib_thread

    with _lock:
        if _active == 0:
            targets = [
                (_base.Future, "result", _patched_result),
                (_base.Future, "exception", _patched_exception),
                (_base, "_create_and_install_waiters", _patched_waiters),
                (stdlib_thread._WorkItem, "run", _patched_run),
                (threading.Thread, "join", _patched_join),
            ]
            for owner, name, patch in targets:
                original = owner.__dict__[name]
                ours = patch(original)
                _patches.append((owner, name, original, ours))
                setattr(owner, name, ours)
            executor_impl._hooks.watcher = _Hook()
        _active += 1


def deactivate() -> None:
    """One watcher less: the last one puts everything back as it was."""
    global _active
    with _lock:
        if _active == 0:
            raise RuntimeError("deactivate() without activate()")
        _active -= 1
        if _active:
            return
        executor_impl._hooks.watcher = None
        alive = {thread.ident for thread in threading.enumerate()}
        for ident in [ident for ident in running if ident not in alive]:
            running.pop(ident, None)  # workers that ended
        while _patches:
            owner, name, original, ours = _patches.pop()
            if owner.__dict__.get(name) is ours:  # else someone patched on top: leave theirs
                setattr(owner, name, original)
