"""The scheduler's core: :class:`Scheduler`, which runs managed threads one at a time.

Every scheduling point of the running thread comes to :meth:`Scheduler._point` (or
``_wait``, when it may block); ``_switch`` asks the policy which thread that can run goes on,
hands it the baton (its ``wake`` lock) and parks the caller on its own. When no thread can
run, the virtual clock jumps to the earliest deadline, or the run ends in a
:class:`~._state.DeadlockError`.

The controlled primitives and virtual time (``_primitives``, ``_virtual_time``, ``_state``)
drive a Scheduler through its underscore members (``_point``, ``_wait``, ``_adopt``,
``_label``, ``_stable_id``, ``_threads_by_ident``, ``_current``, ``_switching``,
``_aborting``): the package's own interface to it, kept off the public face users see.
The core reads and moves its clock only through :class:`~.clock.Clock`.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import _thread
import collections
import logging
import threading
import time as _time_module
from typing import TYPE_CHECKING, Any, Callable

from . import _state
from ._greenlets import GreenRun, refuse_fine_grained
from ._greenlets import require as require_greenlet
from ._locations import caller_location
from ._parking import park
from ._patching import Patches
from ._report import deadlock_error
from ._state import (
    ABORT_JOIN,
    BLOCKED,
    FINISHED,
    RUNNABLE,
    DeadlockError,
    DropAborts,
    LivelockError,
    ManagedThread,
    ScheduleAborted,
    wait_uncontrolled,
)
from ._threads import adopt, start_on_spare
from ._threads import start as start_on_worker
from ._virtual_time import GLOBAL_TIME
from .clock import Clock, VirtualClock
from .policies import FIFO, OwnerFirst, Policy, RandomPolicy

if TYPE_CHECKING:
    import types
    from collections.abc import Iterable

__all__ = [
    "POLLS_BEFORE_TIME_PASSES",
    "POLL_QUANTUM",
    "THREAD_MODES",
    "Scheduler",
]

_get_ident = _thread.get_ident

THREAD_MODES = ("prespawned", "fresh", "reused", "greenlet")
"""What ``Scheduler(thread_mode=...)`` accepts."""
POLL_QUANTUM = 1e-6
"""Virtual seconds that pass when a thread polls in a loop (see Scheduler._wait)."""
POLLS_BEFORE_TIME_PASSES = 3


class Scheduler:
    """Runs the code of a ``with`` block (or :meth:`run`) and every thread it starts through
    a controlled module, one thread at a time, in the order *policy* chooses.

    Parameters: *policy* (default ``RandomPolicy(seed)``), *seed* (for the default policy),
    *autojump* (jump virtual time when every thread is blocked), *max_steps* (scheduling
    points before :class:`LivelockError`), *uncontrolled_timeout* (real seconds a thread may
    run without reaching a scheduling point before :class:`UncontrolledBlockingError`; None
    never), *modules* (controlled for every run, see :meth:`control`), *thread_mode* (the OS
    threads managed threads run on, see :mod:`._threads`: ``"fresh"`` (default), a new OS
    thread each, started by ``threading.Thread.start``; ``"prespawned"``, a new OS thread each,
    started ahead of need (spares live on for 2 s); ``"reused"``, OS threads kept from earlier schedules,
    but a ``threading.local`` made before the schedule keeps its values there; ``"greenlet"``,
    greenlets on the owner's OS thread, the fastest, with the limits of :mod:`._greenlets`),
    *everywhere* (the user's other modules see ``threading``, ``sleep``... switched:
    ``_patching``).
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        seed: int = 0,
        autojump: bool = True,
        max_steps: int = 200_000,
        uncontrolled_timeout: float | None = 10.0,
        modules: Iterable[types.ModuleType | str] = (),
        record: bool = True,
        thread_mode: str = "fresh",
        everywhere: bool = True,
    ) -> None:
        if thread_mode not in THREAD_MODES:
            raise ValueError(f"thread_mode must be one of {THREAD_MODES}, not {thread_mode!r}")
        if thread_mode == "greenlet":
            require_greenlet()
        self.policy = policy if policy is not None else RandomPolicy(seed)
        self.clock = VirtualClock(autojump=autojump)
        self._clock: Clock = self.clock  # what the core uses of it
        self.max_steps = max_steps
        self.uncontrolled_timeout = uncontrolled_timeout
        self.record = record
        self.thread_mode = thread_mode
        self._schedule_token = object()  # a worker runs one managed thread per schedule
        self.everywhere = everywhere
        self.locations = False
        """Append to each point's operation the ``file:line (function)`` of the code that
        made it (see :func:`~._locations.caller_location`): slower, so off unless asked."""
        self._recorder: Any = getattr(self.policy, "recorder", None)
        self.trace: list[tuple[str, str]] = []
        """``(thread id, operation)`` per scheduling point."""
        self.schedule: list[str] = []
        """The thread id chosen at each decision: ``Scripted(schedule)`` replays the run."""
        self.steps = 0
        self.switches = 0
        self.leftovers: list[str] = []
        """Threads that were still blocked when the run ended (they were aborted)."""
        self._modules: list[types.ModuleType | str] = list(modules)
        self._threads: list[ManagedThread] = []
        self._threads_by_ident: dict[int, ManagedThread] = {}
        self._real_threads: list[threading.Thread] = []
        self._current: ManagedThread | None = None
        self._owner: ManagedThread | None = None
        self._labels: collections.Counter[str] = collections.Counter()
        self._aborting = False
        self._failure: BaseException | None = None
        self._failure_raised = False
        self._patches = Patches()
        self._log_filter = DropAborts()
        self._ids: dict[int, int] = {}
        self._keep_alive: list[object] = []
        self._entered = False
        self._finished = False
        self._switching = False
        self._next_tid = 1  # T0 is the owner
        self._stuck: set[int | None] = set()  # blocked for good outside the run: not joined
        self._green: GreenRun | None = None  # thread_mode "greenlet": the run's greenlets

    # -- public ----------------------------------------------------------------------------------

    def control(self, *modules: types.ModuleType | str) -> None:
        """Control *modules* (objects or dotted names): their references to ``threading``,
        ``queue``, ``time`` and ``_thread``, and names imported from those, are replaced by
        controlled equivalents for the run; their module-level locks are swapped for
        controlled ones. Takes effect at once inside a run."""
        self._modules.extend(modules)
        if self._entered and not self._finished:
            for module in modules:
                self._patches.patch_module(module)

    def restart(self, policy: Policy) -> None:
        """Begin a new schedule within this run, decided by *policy*: what a property-based
        test calls before each example, so that every example is a schedule of its own and
        replaying an example replays its schedule (Hypothesis replays a failing example while
        it shrinks it, and once more to print it).

        Resets what a schedule is measured by: ``schedule`` (so the decisions passed to the
        policy count from 0 again), ``trace``, ``steps`` (``max_steps`` bounds each schedule)
        and ``switches``, the labels of primitives made from here on (``Lock-1``) and the
        stable ids (``id()`` in controlled modules, the hash of a controlled thread). When
        every other managed thread has finished, their records go, the threads started from
        here on are numbered from T1 again and virtual time goes back to where a run starts;
        a thread still alive keeps its number (new ones are numbered after it) and the clock
        (the new schedule then shares what that thread does, and may not replay).

        The threads that could still run are first let run (FIFO) until each has finished or
        blocks; after a schedule that ended in an error (``DeadlockError``...), its threads
        are first unwound. Only the owner thread, during the run, may call it. Raises RuntimeError
        otherwise.
        """
        owner = self._owner
        if not self.active or owner is None or _get_ident() != owner.ident:
            raise RuntimeError("restart() is for the owner thread of a running scheduler")
        if self._aborting:
            # The last schedule ended in an error (a deadlock): its threads unwind and exit
            # (those that do not are listed in ``leftovers``), and the run goes on.
            self._abort_all()
            for thread in self._threads:
                if thread is not owner:
                    thread.state = FINISHED
            self._aborting, self._failure, self._failure_raised = False, None, False
            self._current, self._switching = owner, False  # the error may have come elsewhere
        # The threads the last schedule left runnable (one that set an event and would have
        # exited next) run first, in FIFO order, until each has finished or blocks.
        self.policy, self._recorder = FIFO(), None
        self._wait(self, self._others_quiet, None, "restart")
        self.policy, self._recorder = policy, getattr(policy, "recorder", None)
        self.schedule = []
        self.trace = []
        self.steps = self.switches = 0
        self._labels.clear()
        self._schedule_token = object()
        self._ids.clear()
        self._keep_alive.clear()
        alive = [t for t in self._threads if t.state != FINISHED]
        self._threads = alive
        self._real_threads = [t for t in self._real_threads if t.is_alive()]
        self._next_tid = max(t.tid for t in alive) + 1  # the same numbers in each schedule
        if alive == [owner]:
            self._clock.reset()
        for thread in alive:
            thread.last_ran = -1

    def explore(self, fn: Callable[[], Any], **options: Any) -> Any:
        """From the owner thread: a systematic search of ``fn()``'s schedules in this run
        (:func:`~.search.explore`, with its options: ``preemption_bound``, ``max_schedules``,
        ``max_seconds``, ``fine``); returns its ``Exploration``."""
        self._owner_only("explore()")
        if self._green is not None:
            refuse_fine_grained(options.get("fine"))
        from .search import explore

        return explore(fn, scheduler=self, **options)

    def run_until_quiescent(self) -> int:
        """From the owner thread: let the other managed threads run, in the order the policy
        picks, until none of them can run at this virtual instant (each has finished, or
        waits for something nobody has done, or for a later time: the clock does not jump).
        Return how many scheduling points they made.

        Raises RuntimeError from any other thread, or outside the run; ``DeadlockError``
        and the like as any wait does.
        """
        self._owner_only("run_until_quiescent()")
        start = self.steps
        self._wait(self, self._others_quiet, None, "run until quiescent")
        return self.steps - start - 1  # not the owner's own point

    def step(self) -> bool:
        """From the owner thread: let one other managed thread, the one the policy picks, run
        to its next scheduling point, then take control back. Return False (and run nothing)
        when no other thread can run at this virtual instant.

        Raises RuntimeError from any other thread, or outside the run.
        """
        self._owner_only("step()")
        if self._others_quiet():
            return False
        owner, policy = self._owner, self.policy
        target = self.steps + 2  # this point of the owner's, then one of another thread

        def stepped() -> bool:
            return self.steps >= target or self._others_quiet()

        self.policy = OwnerFirst(policy, owner)
        try:
            self._wait(self, stepped, None, "step")
        finally:
            self.policy = policy
        return True

    def _owner_only(self, what: str) -> None:
        owner = self._owner
        if not self.active or owner is None or _get_ident() != owner.ident:
            raise RuntimeError(f"{what} is for the owner thread of a running scheduler")

    def _others_quiet(self) -> bool:
        now = self._clock.now()
        return not any(t.can_run(now) for t in self._threads if t is not self._owner)

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` under control (the calling thread is the owner, T0)
        and return its result once every thread it started has finished."""
        with self:
            return fn(*args, **kwargs)

    @property
    def active(self) -> bool:
        return self._entered and not self._finished

    @property
    def threads(self) -> list[ManagedThread]:
        return list(self._threads)

    @property
    def decisions(self) -> int:
        return len(self.schedule)

    def stats(self) -> dict[str, Any]:
        """Counts of the run so far: steps, decisions, switches, threads, clock jumps."""
        return {
            "policy": self.policy.describe(),
            "steps": self.steps,
            "decisions": len(self.schedule),
            "switches": self.switches,
            "threads": len(self._threads),
            "virtual_seconds": self._clock.elapsed(),
            "clock_jumps": self._clock.jumps,
        }

    def format_trace(self, last: int | None = None) -> str:
        """The trace as text, a line per point (the *last* ones only, if given)."""
        names = {t.tid_name: t.name for t in self._threads}
        entries = self.trace if last is None else self.trace[-last:]
        start = len(self.trace) - len(entries)
        return "\n".join(
            f"{start + n:6d} {tid} ({names.get(tid, '?')}): {op}"
            for n, (tid, op) in enumerate(entries)
        )

    # -- entering and leaving ----------------------------------------------------------------

    def __enter__(self) -> Scheduler:
        if self._entered:
            raise RuntimeError("a Scheduler runs once; make a new one for another run")
        if _state.ACTIVE is not None:
            raise RuntimeError(f"another scheduler is active in this process: {_state.ACTIVE!r}")
        self._entered = True
        owner = ManagedThread(0, threading.current_thread().name, owner=True)
        owner.ident = _get_ident()
        owner.running = True
        self._threads.append(owner)
        self._threads_by_ident[owner.ident] = owner
        self._owner = self._current = owner
        _state.ACTIVE = self
        try:
            if self.thread_mode == "greenlet":
                self._green = GreenRun(self, owner)
                self._green.patch(self._patches)
            for name, function in GLOBAL_TIME.items():
                self._patches.patch(_time_module, name, function)
            self._patches.patch_run(self._modules, everywhere=self.everywhere)
            logging.getLogger("concurrent.futures").addFilter(self._log_filter)
        except BaseException:
            self._patches.unpatch()
            if self._green is not None:
                self._green.close()
            _state.ACTIVE = None
            raise
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        owner = self._owner
        assert owner is not None
        try:
            if exc is None and not self._aborting:
                self._finish_others(owner)
        finally:
            self._abort_all()
            self._finished = True
            # Drop the run's threads and the objects given stable ids: a pool's queue (a
            # controlled primitive, which refers to this scheduler) may be the value of a
            # weak-keyed entry for its thread (the stdlib's ``_threads_queues``), which would
            # otherwise keep the thread, this scheduler and all it refers to alive for good.
            self._real_threads = [t for t in self._real_threads if t.is_alive()]
            self._keep_alive.clear()  # ids are stable during the run only
            self._patches.unpatch()
            if self._green is not None:
                self._green.close()
            logging.getLogger("concurrent.futures").removeFilter(self._log_filter)
            _state.ACTIVE = None
        if exc is None and self._failure is not None and not self._failure_raised:
            self._failure_raised = True
            raise self._failure

    def _finish_others(self, owner: ManagedThread) -> None:
        """Let the other threads run until they finish; those left blocked for ever are
        recorded in ``leftovers`` (and aborted)."""

        def others_done() -> bool:
            return all(t.state == FINISHED for t in self._threads if t is not owner)

        try:
            self._wait(self, others_done, None, "end of run")
        except DeadlockError as error:
            self.leftovers = [line for line in error.graph if not line.startswith(owner.name)]
            self._failure = None
            self._failure_raised = True

    def _abort_all(self) -> None:
        self._aborting = True
        owner = self._owner
        if self._green is not None:
            self._green.abort_all()
        for thread in self._threads:
            if thread is not owner and thread.state != FINISHED:
                _release(thread.wake)
        for real in self._real_threads:
            real.join(0 if real.ident in self._stuck else ABORT_JOIN)
        alive = [t.name for t in self._real_threads if t.is_alive()]
        if alive:
            self.leftovers.append(f"threads still alive after the run was aborted: {alive}")

    def _stable_id(self, obj: object) -> int:
        number = self._ids.get(id(obj))
        if number is None:
            number = self._ids[id(obj)] = len(self._ids) + 1
            self._keep_alive.append(obj)  # so that its id is not reused during the run
        return number

    # -- the core: scheduling points, blocking, switching --------------------------------------

    def _label(self, kind: str) -> str:
        self._labels[kind] += 1
        return f"{kind}-{self._labels[kind]}"

    def _point(self, me: ManagedThread, op: str, obj: object = None) -> None:
        """A scheduling point of the running thread *me*: the policy may run another. *obj*
        is what the operation touches (a primitive, a thread's record, a memory access), for
        a policy that records it (partial-order reduction)."""
        self.steps += 1
        if self.locations:
            op = f"{op} at {caller_location()}"
        recorder = self._recorder
        if recorder is not None:
            recorder.point(me, op, obj)
        if self.record:
            self.trace.append((me.tid_name, op))
        if self.steps > self.max_steps:
            self._fail(
                me,
                LivelockError(
                    f"the run took more than {self.max_steps} scheduling points (a busy loop "
                    f"polling the clock or a flag?); the last ones:\n{self.format_trace(20)}"
                ),
            )
        self._switch(me)

    def _wait(
        self,
        waitable: Any,
        ready: Callable[[], bool],
        timeout: float | None,
        op: str,
        *,
        poll: bool = True,
    ) -> bool:
        """Block the calling managed thread until ``ready()`` or *timeout* virtual seconds
        pass; return ``ready()``. A scheduling point even when ready at once.

        A thread that polls the same primitive (a timed wait of 0 seconds that finds
        nothing) :data:`POLLS_BEFORE_TIME_PASSES` times at the same virtual instant makes
        :data:`POLL_QUANTUM` of virtual time pass: ``while (left := end - monotonic()) >= 0:
        event.wait(left)`` (``as_completed``) must reach its end although time only jumps to
        deadlines, exactly, while a pool's single ``acquire(timeout=0)`` per submit costs
        no time.
        """
        # scheduler_of_caller(), inlined: this runs at most scheduling points
        me = self._threads_by_ident.get(_get_ident()) if _state.ACTIVE is self else None
        if me is None or me.state == FINISHED:
            return wait_uncontrolled(ready, timeout, op)
        if self._aborting:
            if ready():
                return True
            if timeout is not None and timeout <= 0:
                return False
            self._raise_abort(me)
        if self._switching or self._current is not me:
            return wait_uncontrolled(ready, timeout, op)
        recorder = self._recorder
        if recorder is not None:
            recorder.waits(me, waitable, timeout)
        self._point(me, op)
        if ready():
            return True
        if timeout is not None and self._clock.now() + timeout <= self._clock.now():
            # 0 seconds, or too few to move the clock (end - monotonic() after a jump)
            if poll:
                key = (self._clock.now(), id(waitable))
                me.polls = me.polls + 1 if me.polled_at == key else 1
                me.polled_at = key
                if me.polls >= POLLS_BEFORE_TIME_PASSES:  # polling in a loop: let time pass
                    self._clock.advance(POLL_QUANTUM)
            return False
        me.state, me.waiting, me.ready, me.op = BLOCKED, waitable, ready, op
        me.deadline = None if timeout is None else self._clock.now() + timeout
        try:
            self._switch(me)
        finally:
            me.state, me.waiting, me.ready, me.deadline = RUNNABLE, None, None, None
        return ready()

    def _switch(self, me: ManagedThread) -> None:
        """Pick the next thread to run (maybe *me*) and, if it is another, hand it the baton
        and park *me* until it is picked again."""
        self._switching = True  # a GC callback that runs in here must not schedule
        while True:
            now = self._clock.now()
            threads = self._threads
            # ManagedThread.can_run, inlined for the runnable ones (most of them)
            enabled = [
                t for t in threads if t.state == RUNNABLE or (t.state == BLOCKED and t.can_run(now))
            ]
            if enabled:
                break
            deadlines = [t.deadline for t in threads if t.state == BLOCKED and t.deadline]
            if deadlines and self._clock.autojump:
                self._clock.jump_to(min(deadlines))
                continue
            self._switching = False
            error = deadlock_error(
                self._threads,
                steps=self.steps,
                elapsed=self._clock.elapsed(),
                timers=bool(deadlines),
            )
            self._fail(me, error)
        if len(enabled) == 1:
            chosen = enabled[0]
        else:
            if me in enabled and enabled[0] is not me:
                enabled.remove(me)
                enabled.insert(0, me)
            me.running = enabled[0] is me and me.state == RUNNABLE
            try:
                index = self.policy.choose(enabled, len(self.schedule))
            except BaseException:
                self._switching = False
                raise
            finally:
                me.running = False
            chosen = enabled[index]
            self.schedule.append(chosen.tid_name)
        if self._recorder is not None:
            self._recorder.step(me, chosen, enabled)
        chosen.last_ran = self.steps
        if chosen is me:
            self._switching = False
            return
        self.switches += 1
        # From here on *me* is not the current thread, so a GC callback that runs in it
        # (allocating a bound method can collect) does not schedule.
        self._current = chosen
        self._switching = False
        if self._green is not None:
            self._green.hand_over(me, chosen)
            return
        chosen.wake.release()
        if me.state != FINISHED:
            self._park(me)

    def _park(self, me: ManagedThread) -> None:
        park(self, me)

    def _abort_others(self, me: ManagedThread) -> None:
        self._aborting = True
        if self._green is not None:
            return  # the owner lets them unwind (_abort_all) once it runs again
        for thread in self._threads:
            if thread is not me and thread.state != FINISHED:
                _release(thread.wake)

    def _raise_abort(self, me: ManagedThread) -> None:
        if me.owner and self._failure is not None and not self._failure_raised:
            self._failure_raised = True
            raise self._failure
        raise ScheduleAborted(f"the scheduler's run was aborted ({me.name} was blocked)")

    def _fail(self, me: ManagedThread, error: BaseException) -> None:
        """End the run: every managed thread unwinds (ScheduleAborted at its next blocking
        operation); the owner raises *error*."""
        if self._failure is None:
            self._failure = error
        self._abort_others(me)
        self._raise_abort(me)

    # -- managed threads -----------------------------------------------------------------------

    def _adopt(self, thread: threading.Thread) -> ManagedThread:
        """Register *thread* (not yet started) as managed; wrap its ``run``."""
        return adopt(self, thread)

    def _start(self, thread: threading.Thread, start_os_thread: Callable[[], None]) -> None:
        """Start adopted *thread* as ``thread_mode`` says: on a spare, on a worker kept from
        an earlier schedule, or with *start_os_thread* (``threading.Thread.start``)."""
        if self._green is not None:
            self._green.start(thread)
        elif self.thread_mode == "prespawned":
            start_on_spare(thread)
        elif self.thread_mode == "reused":
            start_on_worker(thread, self._schedule_token)
        else:
            start_os_thread()

    def __repr__(self) -> str:
        state = "active" if self.active else ("finished" if self._finished else "new")
        return f"<Scheduler {self.policy.describe()} {state} steps={self.steps}>"


def _release(lock: Any) -> None:
    try:
        lock.release()
    except RuntimeError:  # already released: the thread is being woken
        pass
