"""What every spec module shares: Hypothesis profiles, bounded waits, and how a state machine
is run against one backend.

Profiles (``HYPOTHESIS_PROFILE=dev|ci|thorough``, default ``dev``) are our own settings objects,
passed to each state machine; they are not registered globally, so a project that runs our specs
keeps its own Hypothesis profiles of the same names untouched.

Nothing here blocks without a bound: the bounded waits (:data:`BOUND`, :func:`result_within`,
:func:`call_within_bound`, :class:`Background`, :func:`shut_down_within_bound`,
:func:`join_threads_started_since`, ...) live in :mod:`._bounded` and are imported from here.

A machine on a real pool chooses its steps from what its model knows whatever the
interleaving: a precondition, or the choices of a draw, that depend on how the pool ran (which
calls a process pool refused to cancel, which futures happened to be done) make Hypothesis
stop with ``FlakyStrategyDefinition`` when a later example shares the first steps. Draw from
the model, then filter by what was observed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, initialize

from pytest_futures_plugin import backends as _backends
from pytest_futures_plugin import controls, guards, tasks
from pytest_futures_plugin import scheduler as _scheduler
from pytest_futures_plugin.guards import describe_threads

from ._bounded import (
    BOUND,
    Background,
    call_within_bound,
    drain_before_shutdown,
    hung,
    join_threads_started_since,
    result_within,
    shut_down_within_bound,
)
from ._random_state import other_threads_may_use_random
from ._steps import StepRecorder

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Executor, Future

    from pytest_futures_plugin.backends import Backend
    from pytest_futures_plugin.controls import Gate, Recorder

_real_monotonic = time.monotonic  # the real clock, whatever a scheduler patches later

EXPIRES = 0.02
"""Seconds of a timeout the spec expects to expire (the future is held by a gate)."""

_COMMON: dict[str, Any] = {
    # Executors are slow to start and stop next to Hypothesis' expectations of a pure function.
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
    # The example database would make a run depend on earlier runs; a failure is printed as
    # a program to replay instead.
    "database": None,
    "print_blob": True,
}

PROFILES: dict[str, settings] = {
    "dev": settings(max_examples=15, stateful_step_count=12, **_COMMON),
    "ci": settings(max_examples=40, stateful_step_count=20, **_COMMON),
    "thorough": settings(
        max_examples=400, stateful_step_count=40, verbosity=Verbosity.normal, **_COMMON
    ),
}


NO_SHRINKING = (Phase.explicit, Phase.reuse, Phase.generate)
"""The phases of a machine that runs on real threads or processes (``run_spec(...,
phases=NO_SHRINKING)``). Such a run does not repeat itself: shrinking re-rolls the
interleaving, replays any wait that ran out its ``BOUND`` dozens of times, and ends in a
FlakyFailure; the failing run is reported as found."""


_EXPECTED_FAILURES: list[str] = []
"""Why the running test is expected to fail (a strict KNOWN-BUG xfail, a declared deviation):
see :func:`expecting_failure`. A stack, though one test runs at a time per process."""


@contextlib.contextmanager
def expecting_failure(reason: str) -> Iterator[None]:
    """While inside, :func:`run_spec` expects the machine to fail for *reason* (the test is an
    xfail: a known bug the backend shows, or a declared deviation) and runs it without
    shrinking: Hypothesis stops at the first failing example. Shrinking an expected failure
    only re-runs it; every example still runs until one fails, so a backend whose bug is
    fixed still passes them all (and the strict xfail reports XPASS)."""
    _EXPECTED_FAILURES.append(reason)
    try:
        yield
    finally:
        _EXPECTED_FAILURES.pop()


def expected_failure() -> str | None:
    """The reason the running test is expected to fail, if it is (see
    :func:`expecting_failure`)."""
    return _EXPECTED_FAILURES[-1] if _EXPECTED_FAILURES else None


def profile() -> settings:
    """The settings of the profile ``HYPOTHESIS_PROFILE`` names (``dev`` by default).

    Raises ValueError naming the bad value and the valid ones.
    """
    name = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"HYPOTHESIS_PROFILE={name!r}: pytest-futures' specs know {', '.join(PROFILES)}"
        ) from None


CONTROLLED_SCALE = 3
"""The least *scale* of a machine under the deterministic scheduler: its examples take
milliseconds, and a race needs its preemption to fall in the right place."""

MAX_PREEMPTIONS = 8
"""Preemptions an example may draw under the deterministic scheduler."""

MAX_GAP = 120
"""Decisions a preemption may let go by (FIFO) after the one before it."""

MAX_CHOICE = 4
"""A preemption picks ``candidates[choice % n]``, *choice* in ``1..MAX_CHOICE``."""

MAX_TIME_SLICE = 30
"""The longest time slice an example may draw (0: none)."""

PREEMPTIONS = st.lists(
    st.tuples(st.integers(0, MAX_GAP), st.integers(1, MAX_CHOICE)), max_size=MAX_PREEMPTIONS
)
"""The listed preemptions of one example, as Hypothesis data (see :class:`Interleaved`)."""


class Interleaved(RuleBasedStateMachine):
    """Mixed into a machine that runs under the deterministic scheduler (``run_spec`` does
    it): the machine's first step draws the example's schedule, which is then Hypothesis
    data like any rule's arguments.

    The schedule (:class:`~pytest_futures_plugin.scheduler.Preemptions`) is a list of
    preemptions, ``(after, choice)``: let *after* scheduling decisions go as FIFO takes them
    (the running thread goes on until it blocks), then switch to ``candidates[choice % n]``;
    and a *time_slice*: when not 0, a thread that went on at so many decisions in a row is
    preempted. Shrinking deletes preemptions, lowers the numbers and turns the time slice
    off, so a failing program prints the fewest preemptions that still fail it, e.g.
    ``state.interleaving(preemptions=[(5, 1)], time_slice=0)``. The machine's ``__init__``
    runs before that step, without preemptions.
    """

    @initialize(preemptions=PREEMPTIONS, time_slice=st.integers(0, MAX_TIME_SLICE))
    def interleaving(self, preemptions: list[tuple[int, int]], time_slice: int) -> None:
        sched = _scheduler.active()
        if sched is not None:
            sched.policy = _scheduler.Preemptions(preemptions, time_slice)


_INTERLEAVED: dict[type[RuleBasedStateMachine], type[RuleBasedStateMachine]] = {}


def _interleaved(machine: type[RuleBasedStateMachine]) -> type[RuleBasedStateMachine]:
    """*machine* with :class:`Interleaved` mixed in, under the same name (the printed program
    reads ``state = MapResults()``); made once per class."""
    mixed = _INTERLEAVED.get(machine)
    if mixed is None:
        namespace = {"__module__": machine.__module__, "__qualname__": machine.__qualname__}
        mixed = type(machine.__name__, (Interleaved, machine), namespace)
        _INTERLEAVED[machine] = mixed
    return mixed


def controlled() -> bool:
    """Whether the calling thread runs under the deterministic scheduler (a ``deterministic``
    backend): its interleavings are then Hypothesis data and replay exactly."""
    return _scheduler.active() is not None and _scheduler.manages_current_thread()


def run_spec(
    machine: type[RuleBasedStateMachine] | Callable[[], RuleBasedStateMachine],
    *args: Any,
    seed: int,
    scale: int = 1,
    **overrides: Any,
) -> None:
    """Run the state machine ``machine(*args)`` under the current profile, with Hypothesis
    seeded from *seed* (the test's ``futures_seed``): a run is a function of the seed, and the
    plugin's replay command (``--futures-seed=N``) reproduces a failure. *overrides* are
    Hypothesis settings.

    *scale* multiplies the profile's ``max_examples`` (machines with no executor run hundreds
    of examples a second; at least :data:`CONTROLLED_SCALE` under the deterministic
    scheduler); a :class:`Backend` in *args* runs the share it declares (``examples``).

    Under the deterministic scheduler (see :func:`controlled`) every example is a schedule
    of its own (``Scheduler.restart``), with garbage collected before it and not during it,
    so that replaying an example replays its interleaving; when *machine* is a class, the
    example draws its preemptions (:class:`Interleaved`), so that a failing interleaving
    shrinks. A ``phases`` override is replaced there by every phase but ``explain``: it is for
    real threads, whose examples do not replay (:data:`NO_SHRINKING`). A factory that is not a
    class gets the same seeded random schedule in every example.

    A test expected to fail (:func:`expecting_failure`: a KNOWN-BUG or DEVIATION cell) runs
    with :data:`NO_SHRINKING` everywhere: it stops at its first failing example.
    """
    base = profile()
    sched = _scheduler.active() if controlled() else None
    if sched is not None:
        # Not explain: it traces the test's thread alone, and triples a found race's report time.
        overrides["phases"] = tuple(phase for phase in Phase if phase is not Phase.explain)
        scale = max(scale, CONTROLLED_SCALE)
    if expected_failure() is not None:
        overrides["phases"] = NO_SHRINKING
    planned = base.max_examples * scale
    backend = next((arg for arg in args if isinstance(arg, _backends.Backend)), None)
    if backend is not None and sched is None:
        planned = _backends.examples(backend, planned)  # a backend slow to start or stop
    overrides.setdefault("max_examples", planned)
    chosen = settings(base, **overrides)
    if sched is None:
        factory: Callable[[], RuleBasedStateMachine] = lambda: machine(*args)  # noqa: E731
        _run(factory, chosen, seed, watch_hangs=True)
        return
    mixed = _interleaved(machine) if isinstance(machine, type) else None
    policy, collecting = sched.policy, gc.isenabled()

    def example() -> RuleBasedStateMachine:
        guards.rearm_guards()  # the hang guard bounds an example, not the whole search
        # The garbage of earlier examples, collected here rather than in the middle of this
        # one (a collection runs weakref callbacks, which take locks: scheduling points).
        # Frozen, what survives is not scanned again: each collection costs one example.
        gc.collect()
        gc.freeze()
        gc.disable()
        sched.restart(_scheduler.FIFO() if mixed else _scheduler.RandomPolicy(seed))
        return mixed(*args) if mixed is not None else machine(*args)

    try:
        _run(example, chosen, seed)
    except Exception as failure:
        _check_the_replay(failure, example, chosen, sched)
        raise
    finally:
        gc.unfreeze()
        if collecting:
            gc.enable()
    sched.policy = policy  # on a failure, the report names the failing example's policy


class SpecHang(BaseException):
    """Raised as a hung example ends (see :class:`_HangWatch`): not an ``Exception``, so that
    Hypothesis stops at once instead of shrinking, i.e. re-running the hang; :func:`run_spec`
    turns it into :class:`SpecHangError`."""


class SpecHangError(AssertionError):
    """A spec example hung: it failed after waiting a whole :data:`BOUND` (or more); the message
    names the failure, how long the example ran, and what every thread waited on. The example
    was not shrunk nor re-run (the seed replays the run)."""


class _HangWatch:
    """Makes the machines of one Hypothesis run, watching how each example ends.

    An example that fails after running at least :data:`BOUND` seconds hung somewhere (a wait
    ran out its bound, or the plugin's hang guard interrupted it), and so does one that
    "passed" that long while a control's wait ran out its bound (an executor swallowed the
    task's ``ControlTimeout``): its failure and a thread dump are kept, and its teardown, once done, raises :class:`SpecHang` in place of the
    failure, which Hypothesis does not catch: no shrinking, no re-run. (Raised at the start of
    a later example instead, it would make Hypothesis' replay of a known path inconsistent.)
    A hang thus costs one bound per test, not one per shrink step. Each example also rearms the plugin's hang guard, which so bounds an
    example, not the whole test: a slow but correct executor is not cut short.
    """

    def __init__(self, factory: Callable[[], RuleBasedStateMachine]) -> None:
        self.factory = factory
        self.hung: str | None = None
        self.failure: BaseException | None = None

    def example(self) -> RuleBasedStateMachine:
        guards.rearm_guards()
        started = _real_monotonic()
        expired = controls.expired_waits()
        machine = self.factory()
        steps = StepRecorder(machine)  # for the report: a hung example is never replayed
        teardown: Callable[[], None] = machine.teardown  # Hypothesis leaves it untyped

        def watched_teardown() -> None:
            # Hypothesis calls teardown() in a `finally`: exc_info is the example's failure.
            failure = sys.exc_info()[1]
            elapsed = _real_monotonic() - started
            if elapsed >= BOUND and failure is None and controls.expired_waits() > expired:
                # It "passed", yet a gate or latch waited out its bound: an executor that
                # swallowed the ControlTimeout of a hung task (it runs calls inside submit()
                # under `except BaseException`). Every further example would wait as long.
                failure = AssertionError(
                    f"{controls.expired_waits() - expired} control wait(s) ran out their bound "
                    f"in this example, and the executor swallowed the ControlTimeout"
                )
            # Only a failure: Hypothesis' own control flow (StopTest) is a BaseException.
            if not isinstance(failure, Exception) or elapsed < BOUND:
                teardown()
                return
            self.failure = failure
            self.hung = (
                f"{type(failure).__name__}: {failure}\nThe example hung: it failed after "
                f"{elapsed:.1f}s (bound {BOUND:g}s per blocking call, --futures-spec-bound); "
                f"not shrunk, nor re-run. Its steps:\n{steps.program()}\n"
                f"What every thread waited on when it failed:\n{describe_threads()}"
            )
            try:
                teardown()
            finally:
                # Replaces the example's failure as it leaves: Hypothesis stops at once.
                raise SpecHang(self.hung)

        machine.teardown = watched_teardown  # type: ignore[method-assign]
        return machine


def _run(
    factory: Callable[[], RuleBasedStateMachine],
    chosen: settings,
    seed: int,
    reproduce: tuple[str, bytes] | None = None,
    *,
    watch_hangs: bool = False,
) -> None:
    """Run the machines *factory* makes; with *watch_hangs* (real threads, not the
    deterministic scheduler, whose waits are on virtual time and whose failing schedules
    must shrink) a hung example stops the run (:class:`_HangWatch`), and the executor's threads
    may use ``random`` during a draw (:mod:`._random_state`)."""
    watch = _HangWatch(factory)
    test = get_state_machine_test(watch.example if watch_hangs else factory, settings=chosen)  # type: ignore[arg-type,no-untyped-call,unused-ignore]
    hypothesis.seed(seed)(test)
    if reproduce is not None:
        test = hypothesis.reproduce_failure(*reproduce)(test)
    try:
        with other_threads_may_use_random() if watch_hangs else contextlib.nullcontext():
            test()
    except SpecHang as hang:
        raise SpecHangError(str(hang)) from watch.failure


_BLOB = re.compile(r"@reproduce_failure\('([^']+)', b'([^']+)'\)")

NOT_REPLAYED = (
    "pytest-futures: the failing example did not replay under the deterministic scheduler: "
    "run twice more, {how}. Something outside the scheduler's control decides (real time, a "
    "thread it does not manage, state kept from an earlier example), so the schedule printed "
    "may not reproduce the failure."
)


def _check_the_replay(
    failure: BaseException,
    factory: Callable[[], RuleBasedStateMachine],
    chosen: settings,
    sched: _scheduler.Scheduler,
) -> None:
    """Run the failing example twice more, from the ``@reproduce_failure`` blob Hypothesis
    printed, and add a note to *failure* if either run passes or their traces differ: the
    uncontrolled nondeterminism check. (Not against the run Hypothesis reported: that one
    also prints the program, which takes the futures' locks in the owner thread: points
    that the silent runs do not make.) Nothing is checked without the blob."""
    notes = "\n".join(getattr(failure, "__notes__", ()))
    found = _BLOB.search(notes)
    if found is None:
        return
    reproduce = (found.group(1), found.group(2).encode())
    traces: list[list[Any]] = []
    passed = 0
    for _ in range(2):
        try:
            _run(factory, chosen, 0, reproduce=reproduce)
        except BaseException:  # the failure is the one reported already
            pass
        else:
            passed += 1
        traces.append(list(sched.trace))
    first, again = traces
    if passed:
        how = f"{passed} of the 2 runs passed"
    elif again != first:
        at = next(
            (n for n, (a, b) in enumerate(zip(first, again)) if a != b), min(len(first), len(again))
        )
        how = (
            f"their traces differed ({len(first)} scheduling points, then {len(again)}; they "
            f"part at point {at})"
        )
    else:
        return
    note = NOT_REPLAYED.format(how=how)
    failure.__notes__ = [*getattr(failure, "__notes__", ()), note]  # type: ignore[attr-defined]


def backend_module(backend: Backend) -> str:
    """The module that ``backend`` takes its API from, for messages."""
    return backend.api_module


__all__ = [
    "BOUND",
    "CONTROLLED_SCALE",
    "EXPIRES",
    "MAX_PREEMPTIONS",
    "MAX_TIME_SLICE",
    "NOT_REPLAYED",
    "NO_SHRINKING",
    "PREEMPTIONS",
    "PROFILES",
    "Background",
    "Interleaved",
    "SpecHang",
    "SpecHangError",
    "backend_module",
    "call_within_bound",
    "controlled",
    "drain_before_shutdown",
    "expected_failure",
    "expecting_failure",
    "hung",
    "join_threads_started_since",
    "profile",
    "result_within",
    "run_spec",
    "shut_down_within_bound",
]


@dataclasses.dataclass
class Call:
    """One submitted call: it returns its label; a held one first waits for the gate."""

    label: int
    future: Future[Any]
    held: bool

    def __str__(self) -> str:
        return f"call {self.label}{' (held)' if self.held else ''}"


def submit_call(
    pool: Executor, recorder: Recorder, hold: Gate, calls: dict[int, Call], held: bool
) -> int:
    """Submit the next call of *calls* (labelled by its position), which records its start
    and finish in *recorder*, first waiting for *hold* if *held*; return its label."""
    label = len(calls)
    future = pool.submit(tasks.record_start_finish, recorder, label, label, hold if held else None)
    calls[label] = Call(label, future, held)
    return label
