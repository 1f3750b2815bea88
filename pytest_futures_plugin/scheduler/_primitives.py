"""The controlled primitives: ``threading``'s Lock, RLock, Condition, Event, Semaphore,
BoundedSemaphore and Thread, and ``queue``'s SimpleQueue, Queue, LifoQueue and PriorityQueue,
as the controlled modules of a run see them.

Each blocking operation is a scheduling point of the active scheduler: it blocks the calling
managed thread in the scheduler (``Scheduler._wait``) rather than in the operating system, so
that the scheduler can hand the baton to another thread. A primitive belongs to the run that
made it; a thread no scheduler manages may use it only where it does not block.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import _thread
import collections
import heapq
import queue as _queue_module
import threading
from typing import Any, Callable

from . import _state
from ._state import (
    ABORT_JOIN,
    FINISHED,
    RUNNABLE,
    ManagedThread,
    point,
    running_caller,
    scheduler_of_caller,
    wait_uncontrolled,
)
from ._virtual_time import monotonic

__all__ = [
    "BoundedSemaphore",
    "Condition",
    "Event",
    "LifoQueue",
    "Lock",
    "PriorityQueue",
    "Queue",
    "RLock",
    "Semaphore",
    "SimpleQueue",
    "Thread",
]

_get_ident = _thread.get_ident


def _check_timeout(timeout: float | None, blocking: bool = True) -> float | None:
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return timeout if blocking else 0


class _Primitive:
    _kind = "Primitive"

    def __init__(self) -> None:
        sched = _state.ACTIVE
        self._sched = sched
        self._label = sched._label(self._kind) if sched is not None else f"{self._kind}-?"

    def _wait(
        self, ready: Callable[[], bool], timeout: float | None, op: str, *, poll: bool = True
    ) -> bool:
        sched = self._sched or _state.ACTIVE
        if sched is None:
            return wait_uncontrolled(ready, timeout, f"{op} {self._label}")
        return sched._wait(self, ready, timeout, f"{op} {self._label}", poll=poll)

    def __repr__(self) -> str:
        return f"<controlled {self._label}>"


class Lock(_Primitive):
    """``threading.Lock`` / ``_thread.allocate_lock()`` under the scheduler."""

    _kind = "Lock"

    def __init__(self) -> None:
        super().__init__()
        self._locked = False
        self._holder: ManagedThread | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        if timeout < 0 and timeout != -1:
            raise ValueError("timeout value must be a non-negative number")
        wait = (None if timeout == -1 else timeout) if blocking else 0
        if not self._wait(lambda: not self._locked, wait, "acquire"):
            return False
        self._locked = True
        self._holder = scheduler_of_caller()[1]
        return True

    def release(self) -> None:
        if not self._locked:
            raise RuntimeError("release unlocked lock")
        self._locked = False
        self._holder = None
        point(f"release {self._label}", self)

    def locked(self) -> bool:
        return self._locked

    def _at_fork_reinit(self) -> None:
        self._locked, self._holder = False, None

    __enter__ = acquire

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class RLock(_Primitive):
    """``threading.RLock`` under the scheduler."""

    _kind = "RLock"

    def __init__(self) -> None:
        super().__init__()
        self._holder: ManagedThread | None = None
        self._ident: int | None = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = _get_ident()
        if self._count and self._ident == me:
            self._count += 1
            return True
        if not blocking and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        wait = (None if timeout == -1 else timeout) if blocking else 0
        if not self._wait(lambda: self._count == 0, wait, "acquire"):
            return False
        self._ident, self._count = me, 1
        self._holder = scheduler_of_caller()[1]
        return True

    def release(self) -> None:
        if not self._count or self._ident != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._ident = self._holder = None
            point(f"release {self._label}", self)

    def _is_owned(self) -> bool:
        return bool(self._count) and self._ident == _get_ident()

    def _release_save(self) -> int:
        count, self._count, self._ident, self._holder = self._count, 0, None, None
        point(f"release {self._label}", self)
        return count

    def _acquire_restore(self, count: int) -> None:
        self._wait(lambda: self._count == 0, None, "acquire")
        self._ident, self._count = _get_ident(), count
        self._holder = scheduler_of_caller()[1]

    def locked(self) -> bool:
        return bool(self._count)

    __enter__ = acquire

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class Condition(_Primitive):
    """``threading.Condition`` under the scheduler (its lock a controlled Lock or RLock)."""

    _kind = "Condition"

    def __init__(self, lock: Lock | RLock | None = None) -> None:
        super().__init__()
        self._lock: Lock | RLock = lock if lock is not None else RLock()
        self._waiters: collections.deque[list[bool]] = collections.deque()
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def _is_owned(self) -> bool:
        lock = self._lock
        if isinstance(lock, RLock):
            return lock._is_owned()
        return lock._locked and lock._holder is scheduler_of_caller()[1]

    def wait(self, timeout: float | None = None) -> bool:
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = [False]
        self._waiters.append(waiter)
        lock = self._lock
        saved = lock._release_save() if isinstance(lock, RLock) else None
        if saved is None:
            lock.release()
        try:
            notified = self._wait(lambda: waiter[0], timeout, "wait")
        finally:
            if not waiter[0]:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            if isinstance(lock, RLock):
                lock._acquire_restore(saved or 1)
            else:
                lock.acquire()
        return notified

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        end = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if end is None:
                    end = monotonic() + waittime
                else:
                    waittime = end - monotonic()
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        for _ in range(min(n, len(self._waiters))):
            self._waiters.popleft()[0] = True
        point(f"notify {self._label}", self)

    def notify_all(self) -> None:
        self.notify(len(self._waiters))

    notifyAll = notify_all


class Event(_Primitive):
    """``threading.Event`` under the scheduler."""

    _kind = "Event"

    def __init__(self) -> None:
        super().__init__()
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    isSet = is_set

    def set(self) -> None:
        self._flag = True
        point(f"set {self._label}", self)

    def clear(self) -> None:
        self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        return self._wait(lambda: self._flag, timeout, "wait")


class Semaphore(_Primitive):
    """``threading.Semaphore`` under the scheduler."""

    _kind = "Semaphore"

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        super().__init__()
        self._value = value

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        wait = timeout if blocking else 0
        if not self._wait(lambda: self._value > 0, wait, "acquire"):
            return False
        self._value -= 1
        return True

    __enter__ = acquire

    def release(self, n: int = 1) -> None:
        if n < 1:
            raise ValueError("n must be one or more")
        self._value += n
        point(f"release {self._label}", self)

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class BoundedSemaphore(Semaphore):
    """``threading.BoundedSemaphore`` under the scheduler."""

    _kind = "BoundedSemaphore"

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._initial = value

    def release(self, n: int = 1) -> None:
        if n < 1:
            raise ValueError("n must be one or more")
        if self._value + n > self._initial:
            raise ValueError("Semaphore released too many times")
        super().release(n)


class SimpleQueue(_Primitive):
    """``queue.SimpleQueue`` under the scheduler."""

    _kind = "SimpleQueue"

    def __init__(self) -> None:
        super().__init__()
        self._items: collections.deque[Any] = collections.deque()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self._items.append(item)
        point(f"put {self._label}", self)

    put_nowait = put

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        wait = _check_timeout(timeout, block) if block else 0
        if not self._wait(lambda: bool(self._items), wait, "get"):
            raise _queue_module.Empty
        return self._items.popleft()

    def get_nowait(self) -> Any:
        return self.get(False)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class Queue(_Primitive):
    """``queue.Queue`` under the scheduler (``LifoQueue`` and ``PriorityQueue`` below)."""

    _kind = "Queue"

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__()
        self.maxsize = maxsize
        self.unfinished_tasks = 0
        self._init(maxsize)

    def _init(self, maxsize: int) -> None:
        self.queue: Any = collections.deque()

    def _qsize(self) -> int:
        return len(self.queue)

    def _put(self, item: Any) -> None:
        self.queue.append(item)

    def _get(self) -> Any:
        return self.queue.popleft()

    def _full(self) -> bool:
        return 0 < self.maxsize <= self._qsize()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        wait = _check_timeout(timeout, block) if block else 0
        if not self._wait(lambda: not self._full(), wait, "put"):
            raise _queue_module.Full
        self._put(item)
        self.unfinished_tasks += 1

    def put_nowait(self, item: Any) -> None:
        self.put(item, False)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        wait = _check_timeout(timeout, block) if block else 0
        if not self._wait(lambda: self._qsize() > 0, wait, "get"):
            raise _queue_module.Empty
        return self._get()

    def get_nowait(self) -> Any:
        return self.get(False)

    def task_done(self) -> None:
        if self.unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self.unfinished_tasks -= 1
        point(f"task_done {self._label}", self)

    def join(self) -> None:
        self._wait(lambda: self.unfinished_tasks == 0, None, "join")

    def qsize(self) -> int:
        return self._qsize()

    def empty(self) -> bool:
        return not self._qsize()

    def full(self) -> bool:
        return self._full()


class LifoQueue(Queue):
    _kind = "LifoQueue"

    def _init(self, maxsize: int) -> None:
        self.queue = []

    def _get(self) -> Any:
        return self.queue.pop()


class PriorityQueue(Queue):
    _kind = "PriorityQueue"

    def _init(self, maxsize: int) -> None:
        self.queue = []

    def _put(self, item: Any) -> None:
        heapq.heappush(self.queue, item)

    def _get(self) -> Any:
        return heapq.heappop(self.queue)


class Thread(threading.Thread):
    """``threading.Thread``: started from a managed thread, the new thread is managed too.

    Made during a run, its hash is its creation order, not its address: a pool that keeps
    its threads in a set joins them in the same order in every run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        sched = _state.ACTIVE  # hashed already in threading.Thread.__init__ (its _dangling set)
        self._pytest_futures_hash = sched._stable_id(self) if sched is not None else None
        super().__init__(*args, **kwargs)

    def __hash__(self) -> int:
        number = self._pytest_futures_hash
        return object.__hash__(self) if number is None else number

    def start(self) -> None:
        caller = running_caller()
        if caller is None:
            super().start()
            return
        sched, me = caller
        record = sched._adopt(self)
        self._pytest_futures_record = record
        # No scheduling while threading starts it: a GC callback in here would park this
        # thread while it holds threading's own (real) locks.
        sched._switching = True
        try:
            sched._start(self, super().start)
        finally:
            sched._switching = False
        sched._threads_by_ident[self.ident] = record  # type: ignore[index]
        record.ident = self.ident
        record.state = RUNNABLE
        sched._point(me, f"start {record.tid_name}", record)

    def join(self, timeout: float | None = None) -> None:
        record: ManagedThread | None = getattr(self, "_pytest_futures_record", None)
        sched = _state.ACTIVE
        if record is None or sched is None or running_caller() is None:
            if record is not None and sched is not None and self.ident in sched._stuck:
                timeout = 0  # blocked for good outside the run's control: not waited for
            super().join(ABORT_JOIN if timeout is None and record is not None else timeout)
            return
        if sched._wait(
            record, lambda: record.state == FINISHED, timeout, f"join {record.tid_name}"
        ):
            super().join(ABORT_JOIN)  # it has handed the baton on: it exits at once
