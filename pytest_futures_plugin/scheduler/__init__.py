"""The deterministic scheduler: real threads, one at a time, in an order a policy chooses.

Under a :class:`Scheduler`, the *managed* threads (the one that entered the scheduler, and
every thread started from a managed thread through a controlled module) are real Python
threads, but only one of them runs at a time. Every synchronising operation is a *scheduling
point*: acquiring or releasing a lock, waiting on or setting a condition, event or semaphore,
putting to or getting from a queue, starting or joining a thread, sleeping, reading the clock.
At each point the scheduler lists the threads that could go on and a *policy* picks one::

    owner thread ──point──► policy picks T1 ──► T1 runs to its next point ──► policy picks ...
         ▲                                                                          │
         └──────────────── the one picked holds the baton; the others are parked ◄──┘

The policies: :class:`FIFO` (no preemption: the running thread goes on until it blocks, then
the one that waited longest), :class:`RandomPolicy` (seeded, uniform), :class:`PCT`
(probabilistic concurrency testing: random priorities with *depth* - 1 priority change
points), :class:`Scripted` (an explicit list of thread ids, e.g. a printed failing schedule)
and :class:`Choices` (a function of the number of candidates, e.g. Hypothesis data, so that a
failing schedule shrinks; index 0 always means "the running thread goes on").

Time is virtual (:class:`~pytest_futures_plugin.clock.VirtualClock`): it jumps to the next
deadline when every managed thread is blocked. When every managed thread is blocked and no
deadline is pending, the scheduler raises :class:`DeadlockError` in the owner thread, with the
wait-for graph (thread -> future -> the worker running it, thread -> lock -> its holder),
instead of hanging. A thread that blocks on something the scheduler does not own (a socket, a
C lock) is reported as :class:`UncontrolledBlockingError` after ``uncontrolled_timeout`` real
seconds; a schedule that goes on for ever (a busy loop polling the clock) as
:class:`LivelockError` after ``max_steps`` points.

A run is a pure function of its policy (its seed or script): the same seed gives the same
:attr:`Scheduler.trace`. Threads are named in the trace by run-local ids (``T0`` is the owner,
``T1`` the first thread started, ...), primitives by run-local labels (``Lock-3``).

What is controlled: :meth:`Scheduler.control` takes modules whose references to ``threading``,
``queue``, ``time`` and ``_thread`` (the modules, or names imported from them) are replaced,
for the duration of the run, by controlled equivalents, and whose module-level locks are
swapped for controlled ones. ``time.sleep`` and ``time.monotonic`` are patched globally for
the run, for managed threads only (other threads see the real ones). executor_impl's seam
(``executor_impl._sync``) and the stdlib's ``concurrent.futures._base`` and ``.thread`` are
ordinary controlled modules: the very same code runs, under control.

The package, by concept: ``_state`` (managed threads, errors, the active scheduler),
``policies``, ``_core`` (the Scheduler), ``_threads`` (what a managed thread runs), ``_report`` (deadlock and uncontrolled-blocking
reports), ``_primitives`` (controlled Lock ... Thread, queues), ``_virtual_time`` (sleep,
monotonic, stable ids), ``_patching`` (what a controlled module sees) and ``clock``.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import types as _types

from ._core import POLL_QUANTUM, POLLS_BEFORE_TIME_PASSES, Scheduler
from ._primitives import (
    BoundedSemaphore,
    Condition,
    Event,
    LifoQueue,
    Lock,
    PriorityQueue,
    Queue,
    RLock,
    Semaphore,
    SimpleQueue,
    Thread,
)
from ._state import (
    ABORT_JOIN,
    BLOCKED,
    FINISHED,
    NEW,
    RUNNABLE,
    DeadlockError,
    LivelockError,
    ManagedThread,
    ScheduleAborted,
    ScheduleError,
    UncontrolledBlockingError,
    active,
    manages_current_thread,
)
from .policies import FIFO, PCT, Choices, Policy, Preemptions, RandomPolicy, Scripted

__all__ = [
    "ABORT_JOIN",
    "BLOCKED",
    "FIFO",
    "FINISHED",
    "NEW",
    "PCT",
    "POLLS_BEFORE_TIME_PASSES",
    "POLL_QUANTUM",
    "RUNNABLE",
    "BoundedSemaphore",
    "Choices",
    "Condition",
    "DeadlockError",
    "Event",
    "LifoQueue",
    "LivelockError",
    "Lock",
    "ManagedThread",
    "Policy",
    "Preemptions",
    "PriorityQueue",
    "Queue",
    "RLock",
    "RandomPolicy",
    "ScheduleAborted",
    "ScheduleError",
    "Scheduler",
    "Scripted",
    "Semaphore",
    "SimpleQueue",
    "Thread",
    "UncontrolledBlockingError",
    "active",
    "manages_current_thread",
]

# Tracebacks, reprs and pickles name the public classes and functions by this face, as they did
# when the scheduler was one module: ``pytest_futures_plugin.scheduler.DeadlockError``.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, (type, _types.FunctionType)):
        _value.__module__ = __name__
del _name, _value
