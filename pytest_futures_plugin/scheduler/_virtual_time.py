"""Virtual time in a run: ``time.sleep``, ``monotonic``, ``monotonic_ns``, ``perf_counter``
and ``time`` as the controlled modules see them, the process-wide ``time.sleep`` and
``time.monotonic`` of a run (virtual for managed threads only), and the stable ``id`` and
``hash`` that make a run's sets of futures iterate in the same order every time.

A managed thread that reads the clock makes a scheduling point; one that sleeps blocks until
the scheduler's clock reaches its deadline (see ``clock.py``). Any other thread sees the real
functions.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import _thread
import time as _time_module

from . import _state
from ._state import ScheduleAborted, point, real_monotonic, real_sleep, running_caller

__all__ = [
    "GLOBAL_TIME",
    "global_monotonic",
    "global_monotonic_ns",
    "global_perf_counter",
    "global_sleep",
    "monotonic",
    "monotonic_ns",
    "sleep",
    "stable_hash",
    "stable_id",
    "wall",
]

_get_ident = _thread.get_ident
_real_time = _time_module.time
_real_perf_counter = _time_module.perf_counter
_real_monotonic_ns = _time_module.monotonic_ns


def sleep(seconds: float) -> None:
    """``time.sleep`` in controlled modules: a managed thread waits *seconds* of virtual time
    (0: a scheduling point); any other thread sleeps for real."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    caller = running_caller()
    if caller is None:
        sched = _state.ACTIVE
        if sched is not None and sched._aborting and _get_ident() in sched._threads_by_ident:
            raise ScheduleAborted("the scheduler's run was aborted (in sleep)")
        real_sleep(seconds)
        return
    sched, me = caller
    if seconds == 0:
        sched._point(me, "sleep 0")
        return
    sched._wait(None, lambda: False, seconds, f"sleep {seconds:g}")


def monotonic() -> float:
    """``time.monotonic`` (and ``perf_counter``) in controlled modules: the virtual clock for a
    managed thread (a scheduling point when it runs), the real one for any other."""
    caller = running_caller()
    if caller is None:
        sched = _state.ACTIVE
        if sched is not None and _get_ident() in sched._threads_by_ident:
            return sched.clock.now()
        return real_monotonic()
    sched, me = caller
    sched._point(me, "clock")
    return sched.clock.now()


def global_sleep(seconds: float) -> None:
    """``time.sleep`` for the whole process during a run: virtual in managed threads only."""
    sched = _state.ACTIVE
    if sched is not None and _get_ident() in sched._threads_by_ident:
        sleep(seconds)
    else:
        real_sleep(seconds)


def global_monotonic() -> float:
    """``time.monotonic`` for the whole process during a run: virtual in managed threads only."""
    sched = _state.ACTIVE
    if sched is not None and _get_ident() in sched._threads_by_ident:
        return monotonic()
    return real_monotonic()


def stable_id(obj: object) -> int:
    """``id`` in controlled modules: creation order within the run (see Scheduler)."""
    sched = _state.ACTIVE
    return id(obj) if sched is None else sched._stable_id(obj)


def stable_hash(obj: object) -> int:
    """``hash()`` of a controlled module's ``Future`` during a run: the order in which the
    run first hashed it (as ``id`` in controlled modules), kept for the object's lifetime."""
    attributes = getattr(obj, "__dict__", None)
    number = attributes.get("_pytest_futures_hash") if attributes is not None else None
    if number is None:
        number = stable_id(obj)
        if attributes is not None:
            attributes["_pytest_futures_hash"] = number
    return int(number)


def monotonic_ns() -> int:
    """``time.monotonic_ns`` in controlled modules (see :func:`monotonic`)."""
    return int(monotonic() * 1e9)


def wall() -> float:
    """``time.time`` in controlled modules: the virtual wall clock in managed threads."""
    sched = _state.ACTIVE
    if sched is not None and _get_ident() in sched._threads_by_ident:
        point("clock")
        return sched.clock.wall()
    return _real_time()


def _managed() -> bool:
    sched = _state.ACTIVE
    return sched is not None and _get_ident() in sched._threads_by_ident


def global_perf_counter() -> float:
    """``time.perf_counter`` for the whole process during a run: virtual in managed threads."""
    return monotonic() if _managed() else _real_perf_counter()


def global_monotonic_ns() -> int:
    """``time.monotonic_ns`` for the whole process during a run: virtual in managed threads."""
    return monotonic_ns() if _managed() else _real_monotonic_ns()


GLOBAL_TIME = {
    "sleep": global_sleep,
    "monotonic": global_monotonic,
    "monotonic_ns": global_monotonic_ns,
    "perf_counter": global_perf_counter,
    "time": wall,
}
"""What the ``time`` module's functions are for the whole process during a run: the virtual
ones in managed threads, wherever the code that calls them lives; the real ones elsewhere."""
