"""What every part of the deterministic scheduler shares: the managed threads' records and
states, the errors a run raises, and the slot that holds the active scheduler.

The slot, ``ACTIVE``, is rebound when a :class:`~.Scheduler` enters and leaves its run, and
read at every scheduling point: other modules read it as ``_state.ACTIVE`` at call time (a
``from ._state import ACTIVE`` would freeze the value it had at import). The functions here
that read it (``active``, ``scheduler_of_caller``, ``running_caller``, ``point``) read it as a
global of their own module, the fastest read there is.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import _thread
import logging
import threading
import time as _time_module
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ._core import Scheduler

# ACTIVE is left out on purpose: a star-import would copy the slot's value at import.
__all__ = [
    "ABORT_JOIN",
    "BLOCKED",
    "FINISHED",
    "NEW",
    "RUNNABLE",
    "DeadlockError",
    "DropAborts",
    "LivelockError",
    "ManagedThread",
    "ScheduleAborted",
    "ScheduleError",
    "UncontrolledBlockingError",
    "active",
    "manages_current_thread",
    "point",
    "real_monotonic",
    "real_sleep",
    "running_caller",
    "scheduler_of_caller",
    "wait_uncontrolled",
]

real_sleep = _time_module.sleep
real_monotonic = _time_module.monotonic
_get_ident = _thread.get_ident

NEW, RUNNABLE, BLOCKED, FINISHED = "new", "runnable", "blocked", "finished"
ABORT_JOIN = 5.0
"""Real seconds the end of an aborted run waits for each managed thread to exit."""


# -- errors ------------------------------------------------------------------------------------


class ScheduleAborted(BaseException):
    """Raised in the managed threads of a run that ended (a deadlock, an error in the owner):
    every blocking operation raises it, so that the threads unwind. A BaseException, so that
    task code's ``except Exception`` does not swallow it."""


class ScheduleError(RuntimeError):
    """A schedule that cannot be followed (a script naming a thread that cannot run)."""


class DeadlockError(RuntimeError):
    """Every managed thread is blocked and no deadline is pending.

    ``graph`` is the wait-for graph, a line per blocked thread; ``cycle`` the thread names of
    a cycle in it, if there is one.
    """

    def __init__(self, message: str, graph: list[str], cycle: list[str]) -> None:
        super().__init__(message)
        self.graph = graph
        self.cycle = cycle


class LivelockError(RuntimeError):
    """The run took more than ``max_steps`` scheduling points."""


class UncontrolledBlockingError(RuntimeError):
    """A managed thread blocked in something the scheduler does not control."""


# -- managed threads ---------------------------------------------------------------------------


class ManagedThread:
    """The scheduler's record of one managed thread (what policies see). Its ``tid`` and
    ``tid_name`` (``T<tid>``) are fixed when it is made."""

    __slots__ = (
        "deadline",
        "greenlet",
        "ident",
        "last_ran",
        "name",
        "op",
        "owner",
        "polled_at",
        "polls",
        "ready",
        "running",
        "state",
        "tid",
        "tid_name",
        "waiting",
        "wake",
    )

    def __init__(self, tid: int, name: str, *, owner: bool = False) -> None:
        self.tid = tid
        self.tid_name = f"T{tid}"  # read at every scheduling point: made once
        self.name = name
        self.owner = owner
        self.ident: int | None = None
        self.state = RUNNABLE
        self.running = False  # ran last, and can go on (set on the candidates[0] only)
        self.last_ran = -1
        self.waiting: Any = None  # what it is blocked on
        self.op = ""  # the operation it is blocked in
        self.ready: Callable[[], bool] | None = None
        self.deadline: float | None = None
        self.polled_at: tuple[float, int] | None = None  # (virtual time, id of what)
        self.polls = 0
        self.greenlet: Any = None  # the greenlet it runs as, in thread_mode "greenlet"
        self.wake = _thread.allocate_lock()
        self.wake.acquire()  # locked: the thread parks on it until it is picked

    def can_run(self, now: float) -> bool:
        if self.state == RUNNABLE:
            return True
        if self.state == BLOCKED:
            if self.deadline is not None and self.deadline <= now:
                return True
            return self.ready is not None and self.ready()
        return False

    def __repr__(self) -> str:
        return f"<ManagedThread {self.tid_name} {self.name!r} {self.state}>"


# -- the active scheduler ---------------------------------------------------------------------

ACTIVE: Scheduler | None = None
"""The scheduler whose run is on in this process: set and cleared by ``Scheduler.__enter__``
and ``__exit__`` only; read it as ``_state.ACTIVE``, at the moment it is needed."""


def active() -> Scheduler | None:
    """The scheduler controlling this process right now, if any."""
    return ACTIVE


def manages_current_thread() -> bool:
    """Whether the calling thread is a managed thread of the running scheduler."""
    sched = ACTIVE
    return sched is not None and _get_ident() in sched._threads_by_ident


def scheduler_of_caller() -> tuple[Scheduler | None, ManagedThread | None]:
    """The active scheduler (None if none) and its record of the calling thread (None if it
    does not manage it)."""
    sched = ACTIVE
    if sched is None:
        return None, None
    return sched, sched._threads_by_ident.get(_get_ident())


def running_caller() -> tuple[Scheduler, ManagedThread] | None:
    """The active scheduler and the calling thread's record, when the caller is the managed
    thread that holds the baton and may make a scheduling point; None otherwise."""
    sched, me = scheduler_of_caller()
    if sched is None or me is None or sched._aborting or me.state == FINISHED:
        return None
    if sched._switching or sched._current is not me:
        # A GC callback inside the scheduler itself, or in a thread that has handed the
        # baton on (it runs a few lines before it parks): only the running thread schedules.
        return None
    return sched, me


def point(op: str, obj: object = None) -> None:
    """A scheduling point named *op* of the calling thread, if it is the running managed
    thread (see :func:`running_caller`); nothing otherwise. *obj*: what it touched."""
    caller = running_caller()
    if caller is not None:
        caller[0]._point(caller[1], op, obj)


def wait_uncontrolled(ready: Callable[[], bool], timeout: float | None, op: str) -> bool:
    """A controlled primitive used by a thread no scheduler manages (or after its run)."""
    if ready():
        return True
    if timeout is not None and timeout <= 0:
        return False
    raise RuntimeError(
        f"{op}: this primitive belongs to a deterministic scheduler's run, and the calling "
        f"thread {threading.current_thread().name!r} is not managed by a running scheduler, "
        "so it cannot block on it"
    )


class DropAborts(logging.Filter):
    """Drops the log records of pool workers unwinding from an aborted run, and formats the
    message of the others at once.

    Formatting calls the arguments' ``repr``, and a future's takes its (controlled) lock: a
    scheduling point. Left to the handler, it would come while the handler holds its own
    lock, a real one: the thread parked there would keep every other thread that logs
    blocked outside the scheduler's control (the pool logs a callback that raised). A
    logger's filters run before any handler's lock is taken.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ScheduleAborted):
            return False
        if record.args and manages_current_thread():
            record.msg, record.args = record.getMessage(), None
        return True
