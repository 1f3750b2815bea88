"""``Scheduler(thread_mode="greenlet")``: the managed threads of a run as greenlets on the
owner's OS thread, so that handing the baton on is a greenlet switch (well under a
microsecond) instead of a lock hand-off between OS threads, and starting a thread starts no
OS thread.

What a program sees is kept as for OS threads while the run lasts:

- an ident per managed thread: ``threading.get_ident()``, ``_thread.get_ident()``,
  ``get_native_id()`` and ``threading.current_thread()`` (and the scheduler's own lookups)
  give each greenlet a number of its own (the owner keeps its OS thread's); called from any
  other OS thread, the real ones;
- ``threading.local``: a local made during the run is keyed by ``current_thread()`` (the
  standard library's pure-Python ``_threading_local.local``), so each managed thread sees
  its own values;
- a ``contextvars`` context of its own, empty at start; ``Thread.join``/``is_alive``;
  ``threading.excepthook`` for what ``run`` raises.

Limits (see docs/scheduler_speed.md): a ``threading.local`` made *before* the run, a real
(C) lock taken across a scheduling point, and any wait in C (a socket, a subprocess) are
shared by, or block, every managed thread at once, since they all are one OS thread. A
watchdog on a helper thread reports such a wait as :class:`UncontrolledBlockingError`
naming the object (``_uncontrolled``); when the wait is in a Python ``Condition.wait`` it
unwinds the blocked thread and the run fails with that error, when it is a lock taken in C
the error is written to stderr (no Python code runs on that OS thread until the lock is
released). Thread dumps (``sys._current_frames()``) show only the running greenlet;
``sys.settrace`` hooks are the owner's.

Needs the ``greenlet`` package (``pip install 'pytest-futures[greenlet]'``).

Standard library and greenlet only: no pytest, no hypothesis.
"""

from __future__ import annotations

import _thread
import _threading_local
import contextvars
import ctypes
import importlib
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from ._report import uncontrolled_error
from ._state import FINISHED, ManagedThread, ScheduleAborted, real_monotonic
from ._threads import mark_ended, mark_started
from ._uncontrolled import StillWatch

if TYPE_CHECKING:
    from ._core import Scheduler
    from ._patching import Patches

_greenlet: Any
try:  # by name: greenlet ships no type information, and is optional
    _greenlet = importlib.import_module("greenlet")
except ImportError:  # the optional extra is not installed
    _greenlet = None

__all__ = [
    "FINE_TOOL",
    "IDLE_SECONDS",
    "WATCH_EVERY",
    "GreenRun",
    "available",
    "refuse_fine_grained",
    "require",
]

_real_get_ident = _thread.get_ident
_real_get_native_id: Any = getattr(_thread, "get_native_id", None)
_make_thread_handle: Any = getattr(_thread, "_make_thread_handle", None)  # 3.13+

WATCH_EVERY = 0.25
"""Real seconds between two looks of the watchdog at a greenlet run."""


def available() -> bool:
    """Whether the greenlet package can be imported."""
    return _greenlet is not None


FINE_TOOL = "pytest-futures fine-grained points"
"""The name ``_tracing.FineGrained`` gives its ``sys.monitoring`` tool (3.12+)."""


def refuse_fine_grained(fine: object = None) -> None:
    """Raise ValueError when fine-grained points (``fine=...``, ``_tracing.FineGrained``) are
    on or asked for: they are made from inside the interpreter's trace hooks, and a greenlet
    switch there leaves the next greenlet untraced (no points in it at all)."""
    monitoring: Any = getattr(sys, "monitoring", None)
    tools = [monitoring.get_tool(t) for t in range(6)] if monitoring is not None else []
    hook = getattr(getattr(threading, "_trace_hook", None), "__self__", None)
    if fine or FINE_TOOL in tools or type(hook).__name__ == "FineGrained":
        raise ValueError(
            "thread_mode='greenlet' cannot make fine-grained scheduling points (fine=...): "
            "they come from the interpreter's trace hooks, which do not follow a greenlet "
            "switch; use thread_mode='fresh' (the default) for them"
        )


def require() -> None:
    """Raise RuntimeError naming the missing package unless greenlet is installed."""
    if _greenlet is None:
        raise RuntimeError(
            "Scheduler(thread_mode='greenlet') needs the 'greenlet' package, which is not "
            "installed: pip install 'pytest-futures[greenlet]' (or pip install greenlet)"
        )


class GreenRun:
    """One run's greenlets: made by ``Scheduler.__enter__`` in greenlet mode."""

    def __init__(self, sched: Scheduler, owner: ManagedThread) -> None:
        require()
        self.sched = sched
        self.owner = _greenlet.getcurrent()
        owner.greenlet = self.owner
        self.os_ident = _real_get_ident()
        self.idents: dict[Any, int] = {}  # greenlet -> its fake ident
        self.next: Any = None  # where a greenlet that ended passes control

    # -- identity --------------------------------------------------------------------------

    def patch(self, patches: Patches) -> None:
        """Give each greenlet its own ident, and locals made during the run per thread."""
        refuse_fine_grained()
        lookup, getcurrent = self.idents.get, _greenlet.getcurrent

        # A greenlet of another OS thread is in no run's table: its OS thread's ident.
        def get_ident() -> int:
            return lookup(getcurrent()) or _real_get_ident()

        def get_native_id() -> int:
            return lookup(getcurrent()) or int(_real_get_native_id())

        for module in (_thread, threading):
            patches.patch(module, "get_ident", get_ident)
            if _real_get_native_id is not None:
                patches.patch(module, "get_native_id", get_native_id)
        # The scheduler's own lookups key its records by greenlet (the owner's too): the C
        # function itself, no Python frame, on every scheduling point.
        for module in _ident_users():
            patches.patch(module, "_get_ident", getcurrent)
        owner = self.sched._owner
        assert owner is not None
        owner.ident = self.owner
        self.sched._threads_by_ident[self.owner] = owner
        patches.patch(threading, "local", _threading_local.local)
        _watch(self)

    # -- threads ---------------------------------------------------------------------------

    def start(self, thread: threading.Thread) -> None:
        """Start adopted *thread* as a greenlet (run when first picked)."""
        record: ManagedThread = thread._pytest_futures_record  # type: ignore[attr-defined]
        glet = _greenlet.greenlet(self._bootstrap_of(thread, record), parent=self.owner)
        ident = id(glet)
        self.idents[glet] = ident
        record.greenlet = glet
        record.wake.release()  # the greenlet runs when switched to: no parking on it
        mark_started(thread, ident, ident)

    def _bootstrap_of(self, thread: threading.Thread, record: ManagedThread) -> Any:
        def bootstrap(*_: object) -> None:
            sched = self.sched
            try:
                try:
                    contextvars.Context().run(thread.run)
                except BaseException as error:
                    if not isinstance(error, (Exception, ScheduleAborted)) and not sched._aborting:
                        # A signal (Ctrl-C, the hang guard) raised in this greenlet: the run
                        # ends with it in the owner, as it would have reached the owner.
                        sched._failure, sched._aborting, self.next = error, True, None
                    else:
                        thread._invoke_excepthook(thread)  # type: ignore[attr-defined]
            finally:
                record.state = FINISHED
                mark_ended(thread, thread.ident)  # type: ignore[arg-type]
                glet = _greenlet.getcurrent()
                self.idents.pop(glet, None)
                following, self.next = self.next, None
                if following is not None:  # picked by the last scheduling point
                    glet.parent = following

        return bootstrap

    def hand_over(self, me: ManagedThread, chosen: ManagedThread) -> None:
        """Run *chosen* instead of *me*; return when *me* is picked again. A thread that has
        ended passes control once its greenlet has finished (``next``)."""
        if me.state == FINISHED:
            self.next = chosen.greenlet
            return
        chosen.greenlet.switch()
        if self.sched._aborting:
            self.sched._raise_abort(me)

    def abort_all(self) -> None:
        """From the owner: let every managed thread that has not ended unwind."""
        sched = self.sched
        for thread in list(sched._threads):
            glet = thread.greenlet
            if thread is sched._owner or glet is None or glet.dead or glet is self.owner:
                continue
            sched._aborting = True
            self.next = None
            glet.switch()
            thread.state = FINISHED

    def close(self) -> None:
        global _watched
        if _watched is self:
            _watched = None


_IDENT_USERS: tuple[Any, ...] = ()


def _ident_users() -> tuple[Any, ...]:
    """The scheduler's modules that keep ``_thread.get_ident`` as a global of their own."""
    global _IDENT_USERS
    if not _IDENT_USERS:
        from . import _core, _primitives, _state, _threads, _virtual_time

        _IDENT_USERS = (_core, _primitives, _state, _threads, _virtual_time)
    return _IDENT_USERS


# -- the watchdog ------------------------------------------------------------------------------

_watched: GreenRun | None = None
_watchdog_lock = _thread.allocate_lock()
_watchdog_running = False
IDLE_SECONDS = 2.0
"""Real seconds the watchdog thread waits for another greenlet run before it exits."""


def _watch(run: GreenRun) -> None:
    """Have the watchdog thread look at *run* (starting it if none is running)."""
    global _watched, _watchdog_running
    if run.sched.uncontrolled_timeout is None:
        return
    _watched = run
    with _watchdog_lock:
        if _watchdog_running:
            return
        _watchdog_running = True
    _thread.start_new_thread(_watchdog, ())


class _Running:
    """The running managed thread as the watchdog's reports see it, from another OS thread:
    its stack is that of the OS thread it runs on."""

    def __init__(self, thread: ManagedThread, os_ident: int) -> None:
        self.ident = os_ident
        self.greenlet = None
        self.name, self.tid_name = thread.name, thread.tid_name


def _watchdog() -> None:
    global _watchdog_running
    run: GreenRun | None = None
    steps, since, idle_since = -1, real_monotonic(), real_monotonic()
    stuck: set[int | None] = set()
    watch = StillWatch(stuck)
    sleeper = _thread.allocate_lock()
    sleeper.acquire()
    while True:
        sleeper.acquire(timeout=WATCH_EVERY)
        now = real_monotonic()
        current_run = _watched
        if current_run is None:
            with _watchdog_lock:
                if now - idle_since > IDLE_SECONDS and _watched is None:
                    _watchdog_running = False
                    return
            continue
        idle_since = now
        sched = current_run.sched
        if current_run is not run or sched.steps != steps or sched._aborting:
            run, steps, since = current_run, sched.steps, now
            stuck.clear()
            watch = StillWatch(stuck)
            continue
        current = sched._current
        timeout = sched.uncontrolled_timeout
        if current is None or current.owner or timeout is None:
            continue
        running: Any = _Running(current, current_run.os_ident)
        error: Exception | None = watch.check(running)
        if error is None and now - since > timeout:
            error = uncontrolled_error(running, [running], timeout)
            _raise_in(current_run.os_ident)  # a busy loop: it unwinds at its next line
            stuck.add(current_run.os_ident)  # or it waits in C: say so at once
        if error is not None:
            _fail_from_watchdog(sched, error, tell=bool(stuck))
            run = None


def _raise_in(os_ident: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(os_ident), ctypes.py_object(ScheduleAborted)
    )


def _fail_from_watchdog(sched: Scheduler, error: Exception, *, tell: bool) -> None:
    """End the run with *error*: the running thread unwinds (the watchdog has raised
    ScheduleAborted in it), and the owner raises *error*. *tell*: it may wait in C, where
    it cannot be unwound: the error goes to stderr now, not when the wait ends."""
    if sched._failure is None:
        sched._failure = error
    sched._aborting = True
    if tell:
        print(
            "pytest-futures: a greenlet run is blocked outside the scheduler's control (its "
            f"one OS thread waits in C, so it cannot be ended):\n{error}",
            file=sys.__stderr__,
            flush=True,
        )


def _forget_watchdog() -> None:
    global _watched, _watchdog_running, _watchdog_lock
    _watched, _watchdog_running = None, False  # a forked child has no watchdog thread
    _watchdog_lock = _thread.allocate_lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_watchdog)
