"""The managed threads' side of a run: what a thread started under a scheduler runs (its
``run`` wrapped so that it parks until first picked and hands the baton on when it ends), and
the OS threads it runs on.

Starting an OS thread costs more than the rest of a short schedule (threading's start waits
for the new thread to report in; its join for the thread to exit), so a managed thread runs
on an idle *worker*: an OS thread of a process-wide pool that ran a managed thread of an
earlier schedule and parks on its own lock in between. :func:`start` does for the worker
what ``threading`` does for a thread it starts (its ident and native id, started, listed in
``threading.enumerate()``, the trace and profile functions set by ``threading.settrace`` and
``setprofile``, ``threading.excepthook`` for what ``run`` raises, an empty
``contextvars`` context) and marks the thread ended when ``run`` returns, for its ``join``
and ``is_alive``.

What a fresh OS thread has and a worker may not: the values a ``threading.local`` made
*before* the schedule holds for that OS thread (a local made during the schedule starts
empty in each thread: a worker never runs two managed threads of one schedule). A program
whose path depends on such values runs with ``Scheduler(reuse_threads=False)``.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import _thread
import contextvars
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from ._state import ABORT_JOIN, FINISHED, NEW, ManagedThread, ScheduleAborted

if TYPE_CHECKING:
    from ._core import Scheduler

__all__ = [
    "IDLE_SECONDS",
    "MAX_IDLE_WORKERS",
    "adopt",
    "idle_workers",
    "start",
]

_get_ident = _thread.get_ident
_get_native_id: Any = getattr(_thread, "get_native_id", None)
_make_thread_handle: Any = getattr(_thread, "_make_thread_handle", None)  # 3.13+

MAX_IDLE_WORKERS = 16
"""Idle workers kept for later schedules; one that ends a job beyond that many exits."""
IDLE_SECONDS = 2.0
"""Real seconds a worker waits for another thread to run before it exits (so that no idle
worker outlives the tests that schedule: a thread dump after them does not list it)."""


def adopt(sched: Scheduler, thread: threading.Thread) -> ManagedThread:
    """Register *thread* (not yet started) as managed by *sched*; wrap its ``run``."""
    record = ManagedThread(sched._next_tid, thread.name)
    sched._next_tid += 1
    record.state = NEW  # not schedulable before its real thread exists
    sched._threads.append(record)
    sched._real_threads.append(thread)
    run = thread.run

    def managed_run() -> None:
        sched._threads_by_ident[_get_ident()] = record
        record.ident = _get_ident()
        record.wake.acquire()  # parked until first picked
        try:
            if not sched._aborting:
                run()
        except ScheduleAborted:
            pass
        finally:
            record.state = FINISHED
            # Break the cycle thread -> managed_run -> scheduler -> thread, so that the
            # thread object goes as soon as its pool drops it: threading keeps every
            # thread in a weak set, where garbage threads of earlier runs, whose stable
            # hashes are the same few numbers, would pile up in one hash chain.
            vars(thread).pop("run", None)
            if not sched._aborting:
                try:
                    sched._switch(record)
                except ScheduleAborted:
                    pass

    thread.run = managed_run  # type: ignore[method-assign]
    return record


# -- the workers -------------------------------------------------------------------------------


class _Worker:
    """An OS thread of the pool: it parks on ``go`` until given a ``job`` (a thread to run)."""

    __slots__ = ("go", "ident", "job", "native_id", "schedule")

    def __init__(self) -> None:
        self.go = _thread.allocate_lock()
        self.go.acquire()
        self.job: threading.Thread | None = None
        self.ident = 0
        self.native_id: int | None = None
        self.schedule: object = None  # the schedule of the last thread it ran


_idle: list[_Worker] = []
_pool_lock = _thread.allocate_lock()  # guards _idle against a worker leaving it


def idle_workers() -> int:
    """How many workers wait for a thread to run."""
    return len(_idle)


def start(thread: threading.Thread, schedule: object) -> None:
    """Start *thread* (adopted, not started) on an idle worker that has run no thread of
    *schedule* (a token of the current schedule), or on a new one."""
    if not thread._initialized:  # type: ignore[attr-defined]
        raise RuntimeError("thread.__init__() not called")
    if thread._started.is_set():  # type: ignore[attr-defined]
        raise RuntimeError("threads can only be started once")
    with _pool_lock:
        worker = _take(schedule)
    if worker is None:
        worker = _new_worker()
    worker.schedule = schedule
    ident = worker.ident
    # What threading's bootstrap sets in the new thread, set here: the worker is parked.
    thread._ident = ident  # type: ignore[attr-defined]
    if worker.native_id is not None:
        thread._native_id = worker.native_id  # type: ignore[attr-defined]
    if _make_thread_handle is not None:  # 3.13+: join and is_alive ask the handle
        thread._handle = _make_thread_handle(ident)  # type: ignore[attr-defined]
    else:  # before: they ask the lock the thread holds while it runs
        ended = _thread.allocate_lock()
        ended.acquire()
        thread._tstate_lock = ended  # type: ignore[attr-defined]
    thread._started.set()  # type: ignore[attr-defined]
    with threading._active_limbo_lock:  # type: ignore[attr-defined]
        threading._active[ident] = thread  # type: ignore[attr-defined]
    worker.job = thread
    worker.go.release()


def _take(schedule: object) -> _Worker | None:
    for index in range(len(_idle) - 1, -1, -1):
        if _idle[index].schedule is not schedule:
            return _idle.pop(index)
    return None


def _new_worker() -> _Worker:
    worker = _Worker()
    ready = _thread.allocate_lock()
    ready.acquire()
    _thread.start_new_thread(_serve, (worker, ready))
    if not ready.acquire(timeout=ABORT_JOIN):
        raise RuntimeError(f"a new worker thread did not start within {ABORT_JOIN} s")
    return worker


def _serve(worker: _Worker, ready: Any) -> None:
    worker.ident = _get_ident()
    worker.native_id = _get_native_id() if _get_native_id is not None else None
    ready.release()
    pid = os.getpid()
    while True:
        if not worker.go.acquire(timeout=IDLE_SECONDS):
            with _pool_lock:
                if worker in _idle:  # else start() took it: its job comes at once
                    _idle.remove(worker)
                    return
            worker.go.acquire()
        thread, worker.job = worker.job, None
        if thread is None:
            return
        _run(thread, worker.ident)
        del thread
        with _pool_lock:
            if len(_idle) >= MAX_IDLE_WORKERS or os.getpid() != pid:
                return
            _idle.append(worker)


def _run(thread: threading.Thread, ident: int) -> None:
    """Run *thread* as threading's bootstrap would in a new OS thread, then mark it ended."""
    sys.settrace(getattr(threading, "_trace_hook", None))  # set by threading.settrace
    sys.setprofile(getattr(threading, "_profile_hook", None))
    try:
        try:
            contextvars.Context().run(thread.run)
        except BaseException:  # what threading does with what run raises
            thread._invoke_excepthook(thread)  # type: ignore[attr-defined]
    finally:
        sys.settrace(None)
        sys.setprofile(None)
        with threading._active_limbo_lock:  # type: ignore[attr-defined]
            if threading._active.get(ident) is thread:  # type: ignore[attr-defined]
                del threading._active[ident]  # type: ignore[attr-defined]
        if _make_thread_handle is not None:
            thread._handle._set_done()  # type: ignore[attr-defined]
        else:
            thread._tstate_lock.release()  # type: ignore[attr-defined]


def _forget_workers() -> None:
    global _pool_lock
    _idle.clear()
    _pool_lock = _thread.allocate_lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads
    os.register_at_fork(after_in_child=_forget_workers)
