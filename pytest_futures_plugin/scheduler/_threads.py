"""The managed threads' side of a run: what a thread started under a scheduler runs (its
``run`` wrapped so that it parks until first picked and hands the baton on when it ends), and
the OS threads it runs on.

Starting an OS thread costs more than the rest of a short schedule (threading's start waits
for the new thread to report in; its join for the thread to exit), so a managed thread runs
on a *worker*: an OS thread started ahead of need that parks on its own lock until given a
thread to run. :func:`start` and :func:`start_on_spare` do for the worker what ``threading``
does for a thread it starts (its ident and native id, started, listed in
``threading.enumerate()``, the trace and profile functions set by ``threading.settrace`` and
``setprofile``, ``threading.excepthook`` for what ``run`` raises, an empty
``contextvars`` context) and mark the thread ended when ``run`` returns, for its ``join``
and ``is_alive``.

Two kinds of worker:

- a *spare* (:func:`start_on_spare`, the scheduler's default): a new OS thread, started in
  the background before it is needed, that runs one managed thread and exits. It is a fresh
  OS thread in every respect (its thread state, its ``threading.local`` values, its ident);
  only the wait for it to start is gone. Taking a spare starts another, so that
  :data:`SPARE_WORKERS` wait.
- a *reused* worker (:func:`start`): an OS thread that ran a managed thread of an earlier
  schedule and waits for another. No OS thread is started at all, but the values a
  ``threading.local`` made *before* the schedule holds for that OS thread are still there (a
  local made during the schedule starts empty in each thread: a worker never runs two managed
  threads of one schedule): a program whose path depends on such values may take another path
  in a later schedule.

Either waits :data:`IDLE_SECONDS` at most for a thread to run, then exits.

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
    "SPARE_WORKERS",
    "adopt",
    "idle_workers",
    "mark_ended",
    "mark_started",
    "spare_workers",
    "start",
    "start_on_spare",
]

_get_ident = _thread.get_ident
_get_native_id: Any = getattr(_thread, "get_native_id", None)
_make_thread_handle: Any = getattr(_thread, "_make_thread_handle", None)  # 3.13+

MAX_IDLE_WORKERS = 16
"""Idle workers kept for later schedules; one that ends a job beyond that many exits."""
IDLE_SECONDS = 2.0
"""Real seconds a worker waits for another thread to run before it exits (so that no idle
worker outlives the tests that schedule: a thread dump after them does not list it)."""
SPARE_WORKERS = 2
"""Spares kept started ahead of need (a schedule that starts more threads at once than wait
starts the others as threading does, waiting for each to report in)."""


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
    """An OS thread of the pool: it parks on ``go`` until given a ``job`` (a thread to run);
    a spare (*once*) runs one and exits."""

    __slots__ = ("go", "ident", "job", "native_id", "once", "schedule")

    def __init__(self, once: bool = False) -> None:
        self.once = once
        self.go = _thread.allocate_lock()
        self.go.acquire()
        self.job: threading.Thread | None = None
        self.ident = 0
        self.native_id: int | None = None
        self.schedule: object = None  # the schedule of the last thread it ran


_idle: list[_Worker] = []
_spares: list[_Worker] = []
_spares_starting = 0  # spares started, not yet in _spares
_pool_lock = _thread.allocate_lock()  # guards the above against a worker leaving them
_spare_joined = threading.Condition(_pool_lock)  # notified when a spare joins _spares


def idle_workers() -> int:
    """How many workers wait for a thread to run."""
    return len(_idle)


def spare_workers() -> int:
    """How many spares wait for a thread to run."""
    return len(_spares)


def start(thread: threading.Thread, schedule: object) -> None:
    """Start *thread* (adopted, not started) on an idle worker that has run no thread of
    *schedule* (a token of the current schedule), or on a new one."""
    _check(thread)
    with _pool_lock:
        worker = _take(schedule)
    if worker is None:
        worker = _new_worker()
    worker.schedule = schedule
    _hand_over(thread, worker)


def start_on_spare(thread: threading.Thread) -> None:
    """Start *thread* (adopted, not started) on a spare, a new OS thread started ahead of
    need, or on a new one started now if none waits; start a spare in its stead."""
    _check(thread)
    with _pool_lock:
        if not _spares and _spares_starting:  # one is coming: sooner than a new one
            _spare_joined.wait(ABORT_JOIN)
        worker = _spares.pop() if _spares else None
    if worker is None:
        worker = _new_worker(once=True)
    _hand_over(thread, worker)


def _check(thread: threading.Thread) -> None:
    if not thread._initialized:  # type: ignore[attr-defined]
        raise RuntimeError("thread.__init__() not called")
    if thread._started.is_set():  # type: ignore[attr-defined]
        raise RuntimeError("threads can only be started once")


def mark_started(thread: threading.Thread, ident: int, native_id: int | None) -> None:
    """Set what threading's bootstrap sets when *thread* starts running as *ident*: its ident
    (and native id), what ``join``/``is_alive`` ask, started, and its entry in ``_active``
    (``current_thread()``, ``enumerate()``)."""
    thread._ident = ident  # type: ignore[attr-defined]
    if native_id is not None:
        thread._native_id = native_id  # type: ignore[attr-defined]
    if _make_thread_handle is not None:  # 3.13+: join and is_alive ask the handle
        thread._handle = _make_thread_handle(ident)  # type: ignore[attr-defined]
    else:  # before: they ask the lock the thread holds while it runs
        ended = _thread.allocate_lock()
        ended.acquire()
        thread._tstate_lock = ended  # type: ignore[attr-defined]
    thread._started.set()  # type: ignore[attr-defined]
    with threading._active_limbo_lock:  # type: ignore[attr-defined]
        threading._active[ident] = thread  # type: ignore[attr-defined]


def mark_ended(thread: threading.Thread, ident: int) -> None:
    """Undo :func:`mark_started` as threading does when a thread's ``run`` returns:
    ``join`` returns and ``is_alive()`` is False from here on."""
    with threading._active_limbo_lock:  # type: ignore[attr-defined]
        if threading._active.get(ident) is thread:  # type: ignore[attr-defined]
            del threading._active[ident]  # type: ignore[attr-defined]
    if _make_thread_handle is not None:
        thread._handle._set_done()  # type: ignore[attr-defined]
    else:
        thread._tstate_lock.release()  # type: ignore[attr-defined]


def _hand_over(thread: threading.Thread, worker: _Worker) -> None:
    # What threading's bootstrap sets in the new thread, set here: the worker is parked.
    mark_started(thread, worker.ident, worker.native_id)
    worker.job = thread
    worker.go.release()


def _take(schedule: object) -> _Worker | None:
    for index in range(len(_idle) - 1, -1, -1):
        if _idle[index].schedule is not schedule:
            return _idle.pop(index)
    return None


def _new_worker(once: bool = False) -> _Worker:
    worker = _Worker(once)
    ready = _thread.allocate_lock()
    ready.acquire()
    _thread.start_new_thread(_serve, (worker, ready))
    if not ready.acquire(timeout=ABORT_JOIN):
        raise RuntimeError(f"a new worker thread did not start within {ABORT_JOIN} s")
    return worker


def _start_spares() -> None:
    """Start spares in the background until :data:`SPARE_WORKERS` wait or are starting."""
    global _spares_starting
    with _pool_lock:
        wanted = SPARE_WORKERS - len(_spares) - _spares_starting
        if wanted <= 0:
            return
        _spares_starting += wanted
    for started in range(wanted):
        try:
            _thread.start_new_thread(_serve, (_Worker(once=True), None))
        except RuntimeError:  # can't start new thread: the next start will say so
            with _pool_lock:
                _spares_starting = max(0, _spares_starting - (wanted - started))
            return


def _serve(worker: _Worker, ready: Any) -> None:
    """A worker's OS thread. *ready*: released once it runs; None for a spare started in
    the background, which joins the spares itself."""
    global _spares_starting
    worker.ident = _get_ident()
    worker.native_id = _get_native_id() if _get_native_id is not None else None
    pid = os.getpid()
    if ready is not None:
        ready.release()
    else:
        with _pool_lock:
            _spares_starting = max(0, _spares_starting - 1)
            _spares.append(worker)
            _spare_joined.notify()
    while True:
        if not worker.go.acquire(timeout=IDLE_SECONDS):
            with _pool_lock:
                waiting = _spares if worker.once else _idle
                if worker in waiting:  # else it was taken: its job comes at once
                    waiting.remove(worker)
                    return
            worker.go.acquire()
        thread, worker.job = worker.job, None
        if thread is None:
            return
        if worker.once:  # run one thread and exit, as a thread of threading's would
            _start_spares()  # here, not in the starting thread: in the background
            _run(thread, worker.ident)
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
        mark_ended(thread, ident)


def _forget_workers() -> None:
    global _pool_lock, _spare_joined, _spares_starting
    _idle.clear()
    _spares.clear()
    _spares_starting = 0
    _pool_lock = _thread.allocate_lock()  # another thread may have held it at the fork
    _spare_joined = threading.Condition(_pool_lock)


if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads
    os.register_at_fork(after_in_child=_forget_workers)
