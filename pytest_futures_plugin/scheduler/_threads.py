"""The managed threads' side of a run: what a thread started under a scheduler runs (its
``run`` wrapped so that it parks until first picked and hands the baton on when it ends).

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import _thread
from typing import TYPE_CHECKING

from ._state import FINISHED, NEW, ManagedThread, ScheduleAborted

if TYPE_CHECKING:
    import threading

    from ._core import Scheduler

__all__ = [
    "adopt",
]

_get_ident = _thread.get_ident


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
