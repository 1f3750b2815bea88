"""Parking a managed thread that has handed the baton on, on an OS thread of its own (every
thread mode but ``"greenlet"``): it waits on its ``wake`` lock until it is picked again. The
owner, parked, watches the running thread for a wait the scheduler does not control.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._report import uncontrolled_error
from ._state import ManagedThread, real_monotonic
from ._uncontrolled import StillWatch

if TYPE_CHECKING:
    from ._core import Scheduler

__all__ = ["park"]


def park(sched: Scheduler, me: ManagedThread) -> None:
    """Park *me*, which has handed the baton on, until it is picked again. The owner, with
    an ``uncontrolled_timeout``, watches the running thread meanwhile (``_uncontrolled``)."""
    try:
        if me.owner and sched.uncontrolled_timeout is not None:
            steps, since = sched.steps, real_monotonic()
            watch = StillWatch(sched._stuck)
            while not me.wake.acquire(timeout=0.25):
                if sched._aborting:
                    break
                if sched.steps != steps:
                    steps, since = sched.steps, real_monotonic()
                elif blocked := watch.check(sched._current):
                    sched._fail(me, blocked)
                elif real_monotonic() - since > sched.uncontrolled_timeout:
                    sched._fail(
                        me,
                        uncontrolled_error(
                            sched._current, sched._threads, sched.uncontrolled_timeout
                        ),
                    )
        else:
            me.wake.acquire()
    except BaseException as error:  # a signal (the hang guard, Ctrl-C) while parked
        if not sched._aborting:
            sched._failure, sched._failure_raised = error, True
            sched._abort_others(me)
        raise
    if sched._aborting:
        sched._raise_abort(me)
