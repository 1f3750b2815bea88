"""What a managed thread that blocked outside the scheduler's control is blocked on: a lock,
event, condition, semaphore, queue or thread the scheduler does not control (made before the
run, or by code the run does not control), named as the code names it.

A managed thread that waits on such an object waits in the operating system, where no
scheduling point comes: the thread that would release it is parked by the scheduler. The
owner, parked meanwhile, looks at the running thread's stack; when it has stood still at the
same instruction for a while, inside such a wait, and the object it waits on cannot let it
go on (a lock that is held, an event not set, an empty queue), the run fails at once with an
:class:`~._state.UncontrolledBlockingError` naming the object (its type, and the variable,
attribute or module global that holds it), the thread and its source line, rather than after
``uncontrolled_timeout`` seconds with a bare stack.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import _thread
import ctypes
import linecache
import os
import queue
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any

from ._locations import frame_location, is_library_file
from ._state import ManagedThread, ScheduleAborted, UncontrolledBlockingError, real_monotonic

if TYPE_CHECKING:
    import types

__all__ = ["STILL_FOR", "StillWatch"]

STILL_FOR = 1.0
"""Real seconds the running thread must stand still in a wait on an uncontrolled object that
cannot let it go on before the run fails (a thread of no scheduler's that holds it would
have let it go by then)."""

_LOCK_TYPES = (_thread.LockType, type(threading.RLock()))
_PY_KINDS = (
    threading.Event,
    threading.Condition,
    threading.Semaphore,
    threading.Barrier,
    threading.Thread,
    queue.Queue,
    queue.SimpleQueue,
)
_STDLIB_WAITS = {
    "threading.py": {"wait", "wait_for", "acquire", "join", "_wait_for_tstate_lock", "__enter__"},
    "queue.py": {"get", "put", "join"},
}


class StillWatch:
    """What the parked owner of a run calls every so often (a quarter of a second) while
    the running thread makes no scheduling point: :meth:`check`. *stuck* receives the ident
    of a thread found blocked for good, which the end of the run does not wait for."""

    def __init__(self, stuck: set[int | None]) -> None:
        self._stuck = stuck
        self._sample: tuple[int, int, int] | None = None
        self._since = 0.0

    def check(self, current: ManagedThread | None) -> UncontrolledBlockingError | None:
        """The error for *current* (the running managed thread) if it has stood still for
        :data:`STILL_FOR` seconds in a wait on an object the scheduler does not control and
        that cannot let it go on; None otherwise."""
        if current is None or current.ident is None:
            return None
        frame = sys._current_frames().get(current.ident)
        if frame is None:
            return None
        sample = (id(frame), frame.f_lasti, current.ident)
        if self._sample != sample:
            self._sample, self._since = sample, real_monotonic()
            return None
        if real_monotonic() - self._since < STILL_FOR:
            return None
        found = _waited_object(frame)
        if found is None or not _cannot_go_on(found[0]):
            return None
        error = _error(current, found[0], found[1], frame)
        if not _unblock(current.ident, frame):
            self._stuck.add(current.ident)
        return error


def _waited_object(innermost: types.FrameType) -> tuple[Any, types.FrameType] | None:
    """The object the stack whose innermost frame is *innermost* waits on, with the first
    frame of the user's code; None when it does not look like such a wait."""
    waiter: Any = None
    frame: types.FrameType | None = innermost
    while frame is not None and is_library_file(frame.f_code.co_filename):
        code = frame.f_code
        names = _STDLIB_WAITS.get(os.path.basename(code.co_filename))
        if names is None or code.co_name not in names:
            return None  # inside other library code: not a wait we can name
        this = frame.f_locals.get("self")
        if isinstance(this, _PY_KINDS):
            waiter = this  # the outermost one: Event.wait, not the Condition inside it
        frame = frame.f_back
    if frame is None:
        return None
    if waiter is not None:
        return waiter, frame
    # The user's code itself waits in C: ``with LOCK:``, ``lock.acquire()``, ``q.get()``.
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    candidates = [
        (name, value)
        for name, value in _visible(frame)
        if isinstance(value, (*_LOCK_TYPES, queue.SimpleQueue)) and name.split(".")[-1] in line
    ]
    if not candidates:
        return None
    return candidates[0][1], frame


def _visible(frame: types.FrameType, *, globals_too: bool = True) -> list[tuple[str, Any]]:
    """The names of *frame* and their values: its variables and their attributes
    (``box.lock``, ``self.lock``), then its globals."""
    pairs = []
    for name, value in list(frame.f_locals.items()):
        pairs.append((name, value))
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict) and not isinstance(value, type):
            pairs += [(f"{name}.{attr}", item) for attr, item in list(attributes.items())]
    return pairs + list(frame.f_globals.items()) if globals_too else pairs


def _cannot_go_on(target: Any) -> bool:
    """Whether a wait on *target* can only end when another thread acts on it."""
    if isinstance(target, _LOCK_TYPES):
        if target.acquire(False):  # free: the thread is about to take it
            target.release()
            return False
        return True
    if isinstance(target, threading.Event):
        return not target.is_set()
    if isinstance(target, (queue.Queue, queue.SimpleQueue)):
        return target.empty() or (isinstance(target, queue.Queue) and target.full())
    if isinstance(target, threading.Thread):
        return target.is_alive()
    return True  # a condition, semaphore or barrier: its state is its waiters'


def _unblock(ident: int, frame: types.FrameType | None) -> bool:
    """Let the thread *ident*, blocked in a ``Condition.wait`` (an event's, a queue's...) on
    an object the run does not control, unwind as the run's other threads do: raise
    ScheduleAborted in it, and wake it by releasing its own waiter lock (only it waits on
    that lock; the object's state is not touched). False when it waits elsewhere (a lock
    taken in C: it goes on once the thread holding it unwinds, or never)."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "wait" and os.path.basename(code.co_filename) == "threading.py":
            waiter = frame.f_locals.get("waiter")
            if isinstance(waiter, _thread.LockType):
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(ScheduleAborted)
                )
                try:
                    waiter.release()
                except RuntimeError:  # woken meanwhile
                    pass
                return True
        frame = frame.f_back
    return False


def _kind(target: Any) -> str:
    kind = type(target)
    if isinstance(target, _thread.LockType):
        return "threading.Lock"
    module = {"_thread": "threading", "_queue": "queue"}.get(kind.__module__, kind.__module__)
    return f"{module}.{kind.__qualname__.lstrip('_')}"


def _names_of(target: Any, frame: types.FrameType) -> list[str]:
    """How the code reaches *target*: a variable of *frame* or an attribute of one, or a
    global of a loaded module."""
    names = [f"`{name}`" for name, value in _visible(frame, globals_too=False) if value is target]
    for module_name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        names += [
            f"the module-level `{n}` of {module_name}"
            for n, value in list(namespace.items())
            if value is target
        ]
    return names


def _error(
    current: ManagedThread, target: Any, user_frame: types.FrameType, frame: types.FrameType
) -> UncontrolledBlockingError:
    names = _names_of(target, user_frame)
    what = f"{', '.join(names)} (a {_kind(target)})" if names else f"a {_kind(target)}"
    stack = "".join(traceback.format_stack(frame))
    return UncontrolledBlockingError(
        f"thread {current.name!r} ({current.tid_name}) is blocked at "
        f"{frame_location(user_frame)} on {what} that the scheduler does not control: "
        "it was made before the run (or by "
        "code the run does not control), so waiting on it blocks the thread in the "
        "operating system while the thread that would release it is parked by the "
        "scheduler. Objects made during the run, on a managed thread, are controlled; a "
        "module-level lock is swapped for a controlled one when its module is named in "
        "futures_scheduler(modules=[...]).\n"
        f"Its stack, most recent call last:\n{stack}"
    )
