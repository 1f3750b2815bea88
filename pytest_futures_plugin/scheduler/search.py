"""Systematic search: every schedule up to a preemption bound, less the equivalent ones.

:func:`explore` runs a function again and again under the scheduler, each time on a new
schedule, until every schedule with at most *preemption_bound* preemptions (a switch away
from a thread that could have gone on) has been covered, a schedule fails, or the budget
(schedules or seconds) runs out. It is CHESS's iterative context bounding (Musuvathi and
Qadeer, PLDI 2007: the schedules with no preemption first, then one, ...) combined with
dynamic partial-order reduction (Flanagan and Godefroid, POPL 2005): each scheduling point
names the object it touches (a lock, a queue, a thread, or with :mod:`._tracing` a memory
location), so two steps of different threads that touch different objects commute, and
only one order of them is run. A race is a pair of conflicting steps that no other step
orders; after each schedule, every race found in it adds the reversed order, at the
decision where the first step was taken, to the schedules still to run.

So a passing search says "no failure in any schedule with at most K preemptions (N
distinct schedules)", within what the points see: code between two points runs as one
step, and with no fine-grained files a race with no lock in it is invisible. Reduction and
bounding together are not a completeness proof in every corner (Coons, Musuvathi and
McKinley, 2013), which is why the search says "schedules", not "states".

The search is deterministic: the same function and parameters give the same sequence of
schedules. A failing schedule is replayed once with source locations on, for the report.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import contextlib
import gc
import time
from typing import TYPE_CHECKING, Any, Callable

from ._core import Scheduler
from ._primitives import Event, Lock, RLock
from ._state import BLOCKED, FINISHED, RUNNABLE
from ._state import ManagedThread as _ManagedThread
from ._tracing import FineGrained, MemoryAccess, target_files
from .policies import FIFO, Policy

if TYPE_CHECKING:
    import types
    from collections.abc import Iterable, Iterator, Sequence

    from ._state import ManagedThread

__all__ = ["Exploration", "ExplorationFailed", "Systematic", "conflicts", "explore", "races"]

_Key = Any  # ("object", id) or a MemoryAccess key


class ExplorationFailed(AssertionError):
    """A schedule of a systematic search failed: the message is the search's report."""

    def __init__(self, exploration: Exploration) -> None:
        super().__init__(exploration.report())
        self.exploration = exploration


class _Step:
    """What one thread did from being picked to its next scheduling point."""

    __slots__ = (
        "accesses",
        "checked",
        "decision",
        "enabled",
        "memory",
        "preempted",
        "running",
        "signals",
        "tid",
        "waited",
    )

    def __init__(
        self, tid: int, decision: int, enabled: tuple[int, ...], running: int, preempted: int
    ) -> None:
        self.tid = tid
        self.decision = decision  # index of the decision that picked it, -1 if none
        self.enabled = enabled
        self.running = running  # the thread that could have gone on, -1 if none
        self.preempted = preempted  # preemptions before this step
        self.accesses: dict[_Key, bool] = {}  # key -> written
        self.memory: list[MemoryAccess] = []
        self.signals: set[_Key] = set()  # what it released, set, put, started, finished
        self.checked: _Key = None  # what it waits for with no timeout, checked at its start
        self.waited: _Key = None  # what woke it from blocking on that (or its start)


class Systematic(Policy):
    """Follows *prefix* (thread ids, one per decision), then no preemption (FIFO), and
    records what each step touches: one schedule of a systematic search."""

    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self.prefix = list(prefix)
        self.diverged = False
        self.recorder = self
        self.choices: list[str] = []
        self.preemptions = 0
        self.steps = [_Step(0, -1, (0,), -1, 0)]
        self._pending: dict[int, tuple[_Key, bool, MemoryAccess | None, bool, bool] | None] = {
            0: None
        }
        self._fifo = FIFO()

    def choose(self, candidates: Sequence[ManagedThread], decision: int) -> int:
        if decision < len(self.prefix) and not self.diverged:
            wanted = self.prefix[decision]
            for index, thread in enumerate(candidates):
                if thread.tid_name == wanted:
                    return index
            # The program did not behave as in the schedule this prefix comes from (state
            # kept between schedules, e.g. a pool's idle workers): the rest is FIFO, and what
            # it runs is recorded as it is.
            self.diverged = True
        return self._fifo.choose(candidates, decision)

    def point(self, me: ManagedThread, op: str, obj: object) -> None:
        """A point made after its operation (a release, a set, a start): it belongs to the
        step that ends here; or before a memory access, which is the next step's."""
        if isinstance(obj, MemoryAccess):
            self._pending[me.tid] = (obj.key, obj.write, obj, False, False)
            return
        if obj is None:  # a point of no object (the clock), or the one a wait just named
            return
        self._pending[me.tid] = None
        if not isinstance(obj, Scheduler):
            key = ("object", id(obj))
            self.steps[-1].accesses[key] = True
            self.steps[-1].signals.add(key)

    def waits(self, me: ManagedThread, waitable: object, timeout: float | None) -> None:
        """A blocking operation on *waitable*: it takes effect in the thread's next step.
        Waiting for an event or a thread changes neither: a read."""
        if waitable is None or isinstance(waitable, Scheduler):
            self._pending[me.tid] = None
        else:
            write = not isinstance(waitable, (Event, _ManagedThread))
            # A lock, an event or a thread is there or not, made so by the last release:
            # a wait that found it there could only have blocked until then.
            binary = isinstance(waitable, (Lock, RLock, Event, _ManagedThread))
            untimed = timeout is None
            self._pending[me.tid] = (("object", id(waitable)), write, None, untimed, binary)

    def step(self, me: ManagedThread, chosen: ManagedThread, enabled: list[ManagedThread]) -> None:
        last = self.steps[-1]
        if me.state == BLOCKED and last.tid == me.tid and last.checked is not None:
            # It only found that what it waits for, with no timeout, is not there yet: it
            # blocks, and a check that fails changes nothing another thread could see.
            last.accesses.pop(last.checked, None)
            last.checked = None
        if me.state == FINISHED:
            self.steps[-1].accesses[("object", id(me))] = True
            self.steps[-1].signals.add(("object", id(me)))
        decision = -1
        running = -1
        if len(enabled) > 1:
            decision = len(self.choices)
            self.choices.append(chosen.tid_name)
            if enabled[0] is me and me.state == RUNNABLE:
                running = me.tid
        step = _Step(chosen.tid, decision, tuple(t.tid for t in enabled), running, self.preemptions)
        if running != -1 and chosen is not me:
            self.preemptions += 1
        if chosen.tid not in self._pending:  # its first step, which its start enabled
            step.accesses[("object", id(chosen))] = False
            step.waited = ("object", id(chosen))
            self._pending[chosen.tid] = None
        pending = self._pending[chosen.tid]
        if pending is not None:
            key, write, access, untimed, binary = pending
            step.accesses[key] = write or step.accesses.get(key, False)
            if access is not None:
                step.memory.append(access)
                self._pending[chosen.tid] = None
            elif untimed:
                step.checked = key
                if binary or chosen.state == BLOCKED:  # what the last release made possible
                    step.waited = key
        self.steps.append(step)

    def describe(self) -> str:
        return f"Systematic(prefix={self.prefix!r})"


def races(steps: Sequence[_Step]) -> list[tuple[int, int]]:
    """The pairs (j, i), j < i, to reverse (Flanagan and Godefroid's race): for each step i,
    the last earlier step j of another thread that conflicts with it (same object, one
    writes), could have run at the same time (not a release of what i waited for), and
    does not happen before i's thread got there (through program order and conflicts)."""
    found: list[tuple[int, int]] = []
    accesses: dict[_Key, list[tuple[int, bool]]] = {}  # key -> (step, written), in order
    last_of: dict[int, int] = {}
    before: list[int] = []  # bitset of the steps that happen before each step
    for i, step in enumerate(steps):
        previous = last_of.get(step.tid)
        known = before[previous] | (1 << previous) if previous is not None else 0
        reach = known
        race = -1
        for key, write in step.accesses.items():
            for j, written in reversed(accesses.get(key, ())):
                if not (write or written):
                    continue
                reach |= before[j] | (1 << j)
                if _enabled_by(step, steps[j]):
                    continue  # look further back, for what competed for it (an acquire)
                if j > race and steps[j].tid != step.tid and not (known >> j) & 1:
                    race = j
                if written:  # the earlier accesses happen before this one
                    break
        for key, write in step.accesses.items():
            accesses.setdefault(key, []).append((i, write))
        if race >= 0:
            found.append((race, i))
        before.append(reach)
        last_of[step.tid] = i
    return found


def _enabled_by(waiter: _Step, signaller: _Step) -> bool:
    """Whether *waiter* was woken from blocking, with no timeout, on what *signaller* only
    released (a lock, an event, a queue, a thread's end...): they could not run in the other
    order (a waiter that did not block could have tried first: that order is searched)."""
    key = waiter.waited
    return key is not None and key in signaller.signals and signaller.waited != key


class _Node:
    __slots__ = ("children", "queued")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.queued: set[str] = set()


class Exploration:
    """What a systematic search did: ``schedules`` run, whether the bound was ``exhausted``,
    the ``failure`` (an exception) and its ``schedule``, ``trace`` and ``conflicts``."""

    def __init__(self, preemption_bound: int) -> None:
        self.preemption_bound = preemption_bound
        self.schedules = 0
        self.exhausted = False
        self.seconds = 0.0
        self.queued = 0
        self.beyond_bound = 0
        self.diverged = 0
        self.failure: BaseException | None = None
        self.schedule: list[str] = []
        self.preemptions = 0
        self.trace = ""
        self.conflicts: list[str] = []

    def report(self) -> str:
        text = self._report()
        if self.diverged:
            text += (
                f"\n{self.diverged} schedule(s) could not follow the prefix they were run for "
                "(the program does not run the same way each time: state kept between "
                "schedules, such as an executor made outside the searched function?)"
            )
        return text

    def _report(self) -> str:
        k, n = self.preemption_bound, self.schedules
        if self.failure is not None:
            lines = [
                (
                    f"schedule {n} of a systematic search (at most {k} preemptions) failed, with "
                    f"{self.preemptions} preemption(s): {type(self.failure).__name__}: "
                    f"{self.failure}"
                ),
                f"replay it with Scripted({self.schedule!r})",
            ]
            if self.conflicts:
                lines += ["conflicting accesses:", *(f"  {c}" for c in self.conflicts)]
            if self.trace:
                lines += ["the schedule's last points:", self.trace]
            return "\n".join(lines)
        if self.exhausted:
            beyond = (
                f"; {self.beyond_bound} reorderings needed more preemptions"
                if self.beyond_bound
                else ""
            )
            return (
                f"no failure in any schedule with at most {k} preemptions "
                f"({n} distinct schedules, {self.seconds:.2f} s{beyond})"
            )
        return (
            f"explored {n} schedules in {self.seconds:.2f} s; bound {k} not exhausted "
            f"({self.queued} schedules still queued): the budget ended first"
        )

    def __repr__(self) -> str:
        return f"<Exploration {self.report().splitlines()[0]}>"


def conflicts(steps: Sequence[_Step]) -> list[str]:
    """The memory accesses of a recorded schedule that conflict, as lines to read: a stale
    read (a thread reads a location, another writes it, then the first writes it) first."""
    seen: list[tuple[int, MemoryAccess]] = [(s.tid, a) for s in steps for a in s.memory]
    lines: list[str] = []
    for n, (tid, read) in enumerate(seen):
        if read.write:
            continue
        for m in range(n + 1, len(seen)):
            other, access = seen[m]
            if access.key != read.key or not access.write:
                continue
            if other == tid:
                break
            for later_tid, later in seen[m + 1 :]:
                if later_tid == tid and later.key == read.key and later.write:
                    what = f"{read.key[0]} {read.key[-1]}"
                    lines.append(
                        f"T{tid} read {what} at {read.where}; T{other} wrote it at "
                        f"{access.where}; then T{tid} wrote it at {later.where} (stale read)"
                    )
                    break
            break
    if lines:
        return lines
    writers: dict[Any, set[int]] = {}
    for tid, access in seen:
        if access.write:
            writers.setdefault(access.key, set()).add(tid)
    for tid, access in seen:
        if writers.get(access.key, set()) - {tid}:
            lines.append(f"T{tid} {access.describe()} at {access.where}")
    return lines[:20]


def explore(
    fn: Callable[[], Any],
    *,
    preemption_bound: int = 2,
    max_schedules: int | None = 10_000,
    max_seconds: float | None = None,
    fine: Iterable[types.ModuleType | str] = (),
    scheduler: Scheduler | None = None,
    raise_on_failure: bool = True,
    **options: Any,
) -> Exploration:
    """Run ``fn()`` under every schedule with at most *preemption_bound* preemptions, up to
    partial-order reduction, until one fails or the budget (*max_schedules*,
    *max_seconds*) ends; return the :class:`Exploration`, or raise
    :class:`ExplorationFailed` (an AssertionError carrying it) when a schedule failed and
    *raise_on_failure*.

    A schedule fails when ``fn`` raises (a ``DeadlockError`` included) or, in a scheduler of
    its own, leaves threads blocked for ever. *fine*: modules (or dotted names, or files) whose code gets a
    scheduling point at each shared-memory access (:mod:`._tracing`). *scheduler*: an
    active scheduler to run the schedules in (from its owner thread: the ``scheduler``
    fixture); else each schedule gets a new ``Scheduler(**options)``.
    """
    if preemption_bound < 0:
        raise ValueError(f"preemption_bound must be >= 0, not {preemption_bound!r}")
    if max_schedules is not None and max_schedules < 1:
        raise ValueError(f"max_schedules must be >= 1 or None, not {max_schedules!r}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0 or None, not {max_seconds!r}")
    if scheduler is not None and options:
        raise TypeError(f"options {sorted(options)} are for new schedulers, not an active one")
    result = Exploration(preemption_bound)
    files = target_files(fine)
    run = _in(scheduler, fn) if scheduler is not None else _fresh(fn, options)
    root = _Node()
    queues: list[list[list[str]]] = [[] for _ in range(preemption_bound + 1)]
    queues[0].append([])
    start = time.perf_counter()
    tracing = FineGrained(files) if files else contextlib.nullcontext()
    with tracing, _no_collection_during_a_schedule():
        while True:
            level = next((q for q in queues if q), None)
            if level is None:
                result.exhausted = True
                break
            if max_schedules is not None and result.schedules >= max_schedules:
                break
            if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                break
            policy = Systematic(level.pop())
            gc.collect(1)  # between schedules: a finalizer run inside one would add points
            error, _ = run(policy, False)
            result.schedules += 1
            result.diverged += policy.diverged
            if error is not None:
                result.failure, result.schedule = error, policy.choices
                result.preemptions = policy.preemptions
                replay = Systematic(policy.choices)
                _, sched = run(replay, True)
                result.trace = sched.format_trace(40)
                result.conflicts = conflicts(replay.steps)
                break
            _backtrack(policy, root, queues, result)
        if scheduler is not None:
            scheduler.restart(FIFO())
    result.seconds = time.perf_counter() - start
    result.queued = sum(len(q) for q in queues)
    if result.failure is not None and raise_on_failure:
        raise ExplorationFailed(result) from result.failure
    return result


@contextlib.contextmanager
def _no_collection_during_a_schedule() -> Iterator[None]:
    """No garbage collection during the search but where it asks for one (between
    schedules): a finalizer that takes a lock inside a schedule would change it, and the
    same search would not run the same schedules."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _backtrack(
    policy: Systematic, root: _Node, queues: list[list[list[str]]], result: Exploration
) -> None:
    path = [root]
    for choice in policy.choices:
        node = path[-1].children.get(choice)
        if node is None:
            node = path[-1].children[choice] = _Node()
        path.append(node)
    steps = policy.steps
    for j, i in races(steps):
        first = steps[j]
        if first.decision < 0:
            continue
        tid = steps[i].tid
        wanted = [tid] if tid in first.enabled else [t for t in first.enabled if t != first.tid]
        node = path[first.decision]
        for candidate in wanted:
            name = f"T{candidate}"
            if name in node.children or name in node.queued:
                continue
            preempts = first.running != -1 and candidate != first.running
            cost = first.preempted + preempts
            if cost >= len(queues):
                result.beyond_bound += 1
                continue
            node.queued.add(name)
            queues[cost].append([*policy.choices[: first.decision], name])


def _fresh(
    fn: Callable[[], Any], options: dict[str, Any]
) -> Callable[[Policy, bool], tuple[Exception | None, Scheduler]]:
    def run(policy: Policy, locations: bool) -> tuple[Exception | None, Scheduler]:
        sched = Scheduler(policy, **options)
        sched.locations = locations
        try:
            with sched:
                fn()
        except Exception as error:
            return error, sched
        if sched.leftovers:
            return _Leftovers(sched.leftovers), sched
        return None, sched

    return run


def _in(
    sched: Scheduler, fn: Callable[[], Any]
) -> Callable[[Policy, bool], tuple[Exception | None, Scheduler]]:
    def run(policy: Policy, locations: bool) -> tuple[Exception | None, Scheduler]:
        sched.restart(policy)
        sched.locations = locations
        try:
            fn()
            # Threads made outside fn (a pool's workers) may wait for ever: quiescence ends
            # a schedule here, and the run's end finds threads left blocked.
            sched.run_until_quiescent()
        except Exception as error:
            return error, sched
        finally:
            sched.locations = False
        return None, sched

    return run


class _Leftovers(RuntimeError):
    def __init__(self, leftovers: list[str]) -> None:
        super().__init__("threads left blocked at the end: " + "; ".join(leftovers))
