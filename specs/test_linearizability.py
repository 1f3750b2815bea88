"""Parallel sections: calls on one ``Future`` from two or three threads are linearizable.

    "Future instances are created by Executor.submit() and should not be created directly
    except for testing." Yet a future is shared by design: the executor's worker calls
    set_running_or_notify_cancel() and set_result() while the caller calls cancel(), result()
    or add_done_callback(). "Added callables are called in the order that they were added and
    are always called in a thread belonging to the process that added them." (The
    ``concurrent.futures`` documentation.)

Every call must take effect at one instant between its invocation and its response: the
outcomes of a parallel section (an optional sequential prefix, then 2-3 threads each making
1-4 calls on one shared future, then a fixed suffix of queries) must be those of *some*
sequential order of the calls that respects real time, on the sequential ``Future`` of
:mod:`pytest_futures_plugin.linearizability` (its docstring has the table). A done callback
is part of the outcome of the call whose thread ran it: the call that completed the future,
or ``add_done_callback`` on a future already done.

Two runs of each section, on ``futures_api.Future`` of every backend (the contract is the
Future's, whichever pool makes it):

- under the deterministic scheduler, with a schedule Hypothesis draws as a few preemptions
  (:data:`schedules`: elsewhere the running thread goes on), so that a failing interleaving
  shrinks to the fewest; the modules of the Future's class (and its bases, and executor_impl's
  seam) are controlled, each example in a scheduler of its own (not the ``scheduler``
  fixture's, so that ``futures_backend`` is not used: :func:`lone_backend`);
- on real threads (not for ``deterministic`` backends), :data:`REPETITIONS` times per section
  with a short GIL switch interval, every wait bounded. Such a run does not repeat itself, so
  it is not shrunk; a race it finds is for the scheduled run to pin down.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import sys
from typing import TYPE_CHECKING, Any, Callable

import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_futures_plugin import backends, guards, sections
from pytest_futures_plugin.linearizability import Call, NotLinearizableError, check
from pytest_futures_plugin.scheduler import Choices, Policy, Scheduler
from pytest_futures_plugin.scheduler.search import Exploration, explore
from pytest_futures_plugin.sections import FutureErrors, run_section

from ._harness import BOUND, NO_SHRINKING, profile

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from pytest_futures_plugin.backends import Backend

pytestmark = pytest.mark.futures_area("linearizability")

SUFFIX = (Call("cancelled"), Call("running"), Call("exception"))
"""Queries made once every thread finished: they tell the four states apart."""

REPETITIONS = 4
"""Runs of each section on real threads."""

SWITCH_INTERVAL = 1e-5
"""The GIL switch interval (seconds) while a section runs on real threads: the default 5 ms
lets a thread make all its calls before another starts."""

MAX_PREEMPTIONS = 8
"""The most preemptions a drawn schedule makes; between and after them the running thread
goes on."""

calls = st.sampled_from(
    [
        # The calls that change the future first (Hypothesis shrinks towards the first)...
        Call("add_done_callback"),
        Call("cancel"),
        Call("set_running_or_notify_cancel"),
        Call("set_result", 1),
        Call("set_exception", 2),
        Call("set_result", 3),
        # ...then those that only look at it.
        Call("done"),
        Call("result"),
        Call("exception"),
        Call("cancelled"),
        Call("running"),
    ]
)


@dataclasses.dataclass(frozen=True)
class Section:
    """A parallel section: *prefix* calls, then one list of calls per thread."""

    prefix: tuple[Call, ...]
    threads: tuple[tuple[Call, ...], ...]


def _numbered(prefix: list[Call], threads: list[list[Call]]) -> Section:
    """The section with its done callbacks numbered cb0, cb1, ... in reading order."""
    count = 0

    def number(call: Call) -> Call:
        nonlocal count
        if call.name != "add_done_callback":
            return call
        count += 1
        return Call("add_done_callback", count - 1)

    return Section(
        tuple(map(number, prefix)), tuple(tuple(map(number, calls)) for calls in threads)
    )


prefixes = st.lists(
    st.sampled_from([Call("add_done_callback"), Call("set_running_or_notify_cancel")]),
    max_size=2,
)
"""The sequential prefix leaves the future undone: a done one has nothing left to race for."""

parallel_sections = st.builds(
    _numbered,
    prefixes,
    st.lists(st.lists(calls, min_size=1, max_size=4), min_size=2, max_size=3),
)
schedules = st.lists(st.tuples(st.integers(0, 6), st.integers(1, 2)), max_size=MAX_PREEMPTIONS)
"""Preemptions: ``(gap, choice)`` lets the running thread go on at *gap* decisions, then
runs the *choice*-th of the other threads that can (1 or 2, modulo their number) at the
next, counting from the release of the section's threads. Few preemptions find most concurrency
bugs (Musuvathi & Qadeer, PLDI 2007); Hypothesis shrinks a failing schedule to the fewest,
earliest ones."""


class _Preemptions:
    """The ``Choices`` function that follows a drawn schedule (see :data:`schedules`)."""

    def __init__(self, schedule: Sequence[tuple[int, int]]) -> None:
        self.at: dict[int, int] = {}
        decision = -1
        for gap, choice in schedule:
            decision += gap + 1
            self.at[decision] = choice
        self.decisions: Iterator[int] | None = None  # counting once the threads are released

    def release(self) -> None:
        self.decisions = itertools.count()

    def __call__(self, candidates: int) -> int:
        if self.decisions is None:
            return 0
        choice = self.at.get(next(self.decisions), 0)
        return 1 + (choice - 1) % (candidates - 1) if choice else 0


class _Quiet:
    """No "Future ... in unexpected state" CRITICAL record per refused
    set_running_or_notify_cancel(): the spec expects the refusal."""

    def __enter__(self) -> None:
        logging.disable(logging.CRITICAL)

    def __exit__(self, *exc_info: object) -> None:
        logging.disable(logging.NOTSET)


def run_controlled(
    future_class: Callable[[], Any],
    errors: FutureErrors,
    modules: Sequence[str],
    section: Section,
    schedule: Sequence[tuple[int, int]] | Policy,
) -> Scheduler:
    """Run *section* on a new ``future_class()`` under a scheduler of its own that follows
    *schedule* (preemptions as :data:`schedules` draws them, or a policy, e.g.
    ``Scripted``), controlling *modules*; check the history. Returns the scheduler (its
    ``schedule`` replays the run with ``Scripted``).

    Raises :class:`NotLinearizableError` with the schedule in its ``schedule`` and message.
    """
    preemptions = _Preemptions(() if isinstance(schedule, Policy) else schedule)
    if isinstance(schedule, Policy):
        policy = schedule
    else:
        policy = Choices(preemptions, name=f"preemptions {list(schedule)}")
    scheduler = Scheduler(policy, modules=[sections.__name__, *modules])
    with _Quiet(), scheduler:
        history = run_section(
            future_class(),
            section.threads,
            prefix=section.prefix,
            suffix=SUFFIX,
            errors=errors,
            bound=BOUND,
            on_release=preemptions.release,
        )
    try:
        check(history)
    except NotLinearizableError as error:
        error.schedule = list(scheduler.schedule)
        error.notes.append(
            f"Schedule ({scheduler.decisions} decisions; Scripted(...) replays it): "
            f"{scheduler.schedule}"
        )
        raise
    return scheduler


def search_section(
    future_class: Callable[[], Any],
    errors: FutureErrors,
    modules: Sequence[str],
    section: Section,
    *,
    preemption_bound: int = 2,
    **options: Any,
) -> Exploration:
    """Run *section* on a new ``future_class()`` under every schedule with at most
    *preemption_bound* preemptions (a systematic search, with partial-order reduction),
    checking each history; *options* go to the search (``max_schedules``, ``max_seconds``).

    Returns the search's ``Exploration`` ("no failure in any schedule with at most K
    preemptions (N distinct schedules)"); raises ``ExplorationFailed``, whose cause is the
    :class:`NotLinearizableError`, for the first schedule whose history is not linearizable.
    """

    def once() -> None:
        history = run_section(
            future_class(),
            section.threads,
            prefix=section.prefix,
            suffix=SUFFIX,
            errors=errors,
            bound=BOUND,
        )
        check(history)

    with _Quiet():
        return explore(
            once,
            preemption_bound=preemption_bound,
            modules=[sections.__name__, *modules],
            **options,
        )


def run_on_threads(future_class: Callable[[], Any], errors: FutureErrors, section: Section) -> None:
    """Run *section* :data:`REPETITIONS` times on real threads, checking each history."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        with _Quiet():
            for _ in range(REPETITIONS):
                history = run_section(
                    future_class(),
                    section.threads,
                    prefix=section.prefix,
                    suffix=SUFFIX,
                    errors=errors,
                    bound=BOUND,
                )
                check(history)
    finally:
        sys.setswitchinterval(interval)


def controlled_for(future_class: type[Any], backend: Backend | None = None) -> tuple[str, ...]:
    """The modules to control so that *future_class*'s locks are the scheduler's."""
    modules = backends.controlled_modules(future_class, future_class.__module__)
    extra = backend.controlled if backend is not None else ()
    return tuple(dict.fromkeys([*modules, *extra]))


def explore_under_scheduler(
    future_class: type[Any],
    errors: FutureErrors,
    *,
    seed: int,
    modules: Sequence[str] | None = None,
    **overrides: Any,
) -> None:
    """Hypothesis draws sections and schedules; each runs under :func:`run_controlled`.
    *overrides* change the profile's settings (``max_examples`` is 50x the profile's)."""
    chosen = profile()
    overrides.setdefault("max_examples", chosen.max_examples * 50)
    controlled = tuple(modules) if modules is not None else controlled_for(future_class)

    @settings(chosen, **overrides)
    @given(section=parallel_sections, schedule=schedules)
    def parallel_section(section: Section, schedule: list[tuple[int, int]]) -> None:
        guards.rearm_guards()  # the hang guard bounds one example, not the whole test
        run_controlled(future_class, errors, controlled, section, schedule)

    hypothesis.seed(seed)(parallel_section)
    parallel_section()


def explore_on_threads(
    future_class: type[Any], errors: FutureErrors, *, seed: int, **overrides: Any
) -> None:
    """Hypothesis draws sections; each runs under :func:`run_on_threads` (no shrinking: a
    run on real threads does not repeat itself)."""
    chosen = profile()
    overrides.setdefault("max_examples", chosen.max_examples * 10)
    overrides.setdefault("phases", NO_SHRINKING)

    @settings(chosen, **overrides)
    @given(section=parallel_sections)
    def parallel_section(section: Section) -> None:
        guards.rearm_guards()  # the hang guard bounds one example, not the whole test
        run_on_threads(future_class, errors, section)

    hypothesis.seed(seed)(parallel_section)
    parallel_section()


def errors_of(backend: Backend) -> FutureErrors:
    """The exception classes of *backend*'s API, by which outcomes are named."""
    return FutureErrors(backend.api)


@pytest.fixture
def lone_backend(futures_backend_name: str) -> Backend:
    """The backend, without the ``scheduler`` fixture ``futures_backend`` starts for a
    deterministic backend: each example here runs under a scheduler of its own."""
    return backends.lookup(futures_backend_name)


def test_parallel_sections_are_linearizable_under_the_scheduler(
    lone_backend: Backend, futures_seed: int
) -> None:
    """Every drawn interleaving of a section gives outcomes of some sequential order."""
    future_class = lone_backend.api.Future
    explore_under_scheduler(
        future_class,
        errors_of(lone_backend),
        seed=futures_seed,
        modules=controlled_for(future_class, lone_backend),
    )


def test_parallel_sections_are_linearizable_on_real_threads(
    lone_backend: Backend, futures_seed: int
) -> None:
    """Sections run on real threads give outcomes of some sequential order."""
    if lone_backend.deterministic:
        pytest.skip("a deterministic backend's threads run under the scheduler only")
    explore_on_threads(lone_backend.api.Future, errors_of(lone_backend), seed=futures_seed)
