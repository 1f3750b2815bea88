"""The systematic search (``scheduler/search.py``): every schedule up to a preemption bound,
less the orders that partial-order reduction proves equivalent; fine-grained points for races
with no lock in them; and the reports a person reads."""

from __future__ import annotations

import random
import threading
from typing import Any, Callable

import pytest

from executor_impl import _sync
from pytest_futures_plugin.scheduler import (
    DeadlockError,
    RandomPolicy,
    Scheduler,
    Scripted,
    active,
)
from pytest_futures_plugin.scheduler._tracing import FineGrained, target_files
from pytest_futures_plugin.scheduler.search import (
    Exploration,
    ExplorationFailed,
    Systematic,
    explore,
)

from . import races
from .races import lost_on_the_pool, lost_on_the_stdlib_pool, lost_on_threads, two_increments

MODULES = (
    __name__,
    races.__name__,
    _sync.__name__,
    "concurrent.futures.thread",
    "concurrent.futures._base",
)
"""The ``threading`` of this module and of the race programs, executor_impl's seam and the
stdlib's pool, controlled."""


def threads_on(locks: list[Any], rounds: int = 2) -> None:
    """One thread per lock, each taking its lock *rounds* times; joined."""

    def work(lock: Any) -> None:
        for _ in range(rounds):
            with lock:
                pass

    workers = [threading.Thread(target=work, args=(lock,)) for lock in locks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def independent() -> None:
    threads_on([threading.Lock() for _ in range(3)])


def shared() -> None:
    lock = threading.Lock()
    threads_on([lock, lock])


def recording(
    program: Callable[[], None], seen: list[tuple[tuple[str, ...], int]]
) -> Callable[[], None]:
    """*program*, appending each schedule's decisions so far and preemptions to *seen*."""

    def run() -> None:
        program()
        sched = active()
        assert sched is not None
        assert isinstance(sched.policy, Systematic)
        seen.append((tuple(sched.schedule), sched.policy.preemptions))

    return run


def search(program: Callable[[], None], **options: Any) -> Exploration:
    options.setdefault("preemption_bound", 2)
    return explore(program, modules=MODULES, raise_on_failure=False, **options)


# -- the search ------------------------------------------------------------------------------


def test_the_same_program_gives_the_same_sequence_of_schedules() -> None:
    first: list[tuple[tuple[str, ...], int]] = []
    second: list[tuple[tuple[str, ...], int]] = []
    search(recording(shared, first), preemption_bound=3)
    search(recording(shared, second), preemption_bound=3)
    assert first == second
    assert len(first) > 3
    assert len({schedule for schedule, _ in first}) == len(first)  # each one new


@pytest.mark.parametrize("bound", [0, 1, 2, 3])
def test_no_schedule_exceeds_the_preemption_bound(bound: int) -> None:
    seen: list[tuple[tuple[str, ...], int]] = []
    result = search(recording(shared, seen), preemption_bound=bound)
    assert result.exhausted
    assert result.failure is None
    assert max(preemptions for _, preemptions in seen) == bound
    assert result.schedules == len(seen)


def test_more_preemptions_allowed_means_more_schedules() -> None:
    counts = [search(shared, preemption_bound=k).schedules for k in range(4)]
    assert counts == sorted(counts)
    assert counts[0] == 1
    assert counts[3] > counts[1]


def test_partial_order_reduction_runs_one_order_of_independent_operations() -> None:
    # Three threads, each on a lock of its own: every interleaving is equivalent.
    assert search(independent, preemption_bound=3).schedules == 1
    # The same threads on one lock: the orders of the lock's holds differ.
    assert search(shared, preemption_bound=3).schedules > 1


def test_a_budget_that_ends_first_says_so() -> None:
    result = search(shared, preemption_bound=3, max_schedules=2)
    assert (result.schedules, result.exhausted) == (2, False)
    assert result.report().startswith("explored 2 schedules in ")
    assert "bound 3 not exhausted" in result.report()
    assert "the budget ended first" in result.report()


def test_an_exhausted_bound_says_no_failure_in_any_schedule() -> None:
    result = search(shared, preemption_bound=1)
    assert result.report().startswith(
        f"no failure in any schedule with at most 1 preemptions ({result.schedules} distinct"
    )


@pytest.mark.parametrize(
    "options",
    [{"preemption_bound": -1}, {"max_schedules": 0}, {"max_seconds": 0}],
    ids=str,
)
def test_bad_parameters_are_errors_naming_the_value(options: dict[str, Any]) -> None:
    ((name, value),) = options.items()
    with pytest.raises(ValueError, match=f"{name} must be .*not {value}"):
        explore(shared, **options)


# -- what it finds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "program",
    [lost_on_threads, lost_on_the_pool, lost_on_the_stdlib_pool],
    ids=["threads", "pool", "stdlib pool"],
)
def test_a_lost_callback_is_found_within_50_schedules_and_replays(
    program: Callable[[bool], Callable[[], None]],
) -> None:
    result = search(program(True))
    assert isinstance(result.failure, AssertionError)
    assert result.schedules <= 50
    assert "replay it with Scripted(" in result.report()
    with pytest.raises(AssertionError, match="the done callback was lost"):
        Scheduler(Scripted(result.schedule), modules=MODULES).run(program(True))


@pytest.mark.parametrize(
    "program",
    [lost_on_threads, lost_on_the_pool, lost_on_the_stdlib_pool, two_increments],
    ids=["threads", "pool", "stdlib pool", "+="],
)
def test_the_correct_version_is_proven_clean_to_two_preemptions(
    program: Callable[[bool], Callable[[], None]],
) -> None:
    result = search(program(False), fine=[races.__name__])
    assert result.failure is None, result.report()
    assert result.exhausted, result.report()


def test_the_increment_race_is_invisible_without_fine_grained_points() -> None:
    result = search(two_increments(True))
    assert result.failure is None
    assert result.exhausted


def test_the_increment_race_is_found_within_20_schedules_naming_its_lines() -> None:
    result = search(two_increments(True), fine=[races.__name__])
    assert isinstance(result.failure, AssertionError)
    assert result.schedules <= 20
    with open(races.__file__) as source:
        line = next(n for n, text in enumerate(source, 1) if text.endswith("# the racy line\n"))
    where = f"races.py:{line} (increment)"
    assert any(
        conflict.startswith("T") and conflict.count(where) == 3 and "stale read" in conflict
        for conflict in result.conflicts
    ), result.conflicts
    assert f"about to write global counter at {where}" in result.trace


def test_a_deadlock_is_found_in_the_first_schedule_with_its_source_lines() -> None:
    result = search(races.waiting_on_each_other(True))
    assert isinstance(result.failure, DeadlockError)
    assert result.schedules == 1
    assert "races.py:" in result.trace
    assert "(a)" in result.trace


def test_a_failure_raises_with_the_report_by_default() -> None:
    with pytest.raises(ExplorationFailed, match="replay it with Scripted") as caught:
        explore(lost_on_threads(True), modules=MODULES)
    assert isinstance(caught.value, AssertionError)
    assert isinstance(caught.value.__cause__, AssertionError)


def test_a_search_inside_a_running_scheduler() -> None:
    with Scheduler(modules=MODULES) as sched:
        found = sched.explore(lost_on_threads(True), raise_on_failure=False)
        proven = sched.explore(lost_on_threads(False), raise_on_failure=False)
    assert found.failure is not None
    assert found.schedules <= 50
    assert proven.failure is None, proven.report()
    assert proven.exhausted, proven.report()


def test_explore_is_for_the_owner_thread_of_a_running_scheduler() -> None:
    with pytest.raises(RuntimeError, match="explore"):
        Scheduler().explore(shared)


# -- what it covers ----------------------------------------------------------------------------


class Shared:
    a = 0
    b = 0


def random_program(seed: int) -> Callable[[set[object]], None]:
    """Two or three threads, each making three operations among: read ``a`` or ``b``, write
    it, or increment ``a`` under a lock; the outcome is what each read and the final values."""
    rng = random.Random(seed)
    programs = [
        [(rng.choice("RWL"), rng.choice("ab")) for _ in range(3)] for _ in range(rng.choice([2, 3]))
    ]

    def run(outcomes: set[object]) -> None:
        shared, lock, seen = Shared(), threading.Lock(), {}

        def work(number: int, operations: list[tuple[str, str]]) -> None:
            read = []
            for kind, name in operations:
                if kind == "R":
                    read.append(shared.a if name == "a" else shared.b)
                elif kind == "W" and name == "a":
                    shared.a = number * 10 + len(read)
                elif kind == "W":
                    shared.b = number * 10 + len(read)
                else:
                    with lock:
                        value = shared.a
                        shared.a = value + 1
            seen[number] = tuple(read)

        workers = [threading.Thread(target=work, args=(n, ops)) for n, ops in enumerate(programs)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        outcomes.add((shared.a, shared.b, tuple(sorted(seen.items()))))

    return run


@pytest.mark.parametrize("seed", [1, 2, 3, 4])  # programs searched to 8 preemptions in < 0.3 s
def test_the_search_reaches_every_outcome_random_schedules_reach(seed: int) -> None:
    program = random_program(seed)
    searched: set[object] = set()
    sampled: set[object] = set()
    result = search(lambda: program(searched), preemption_bound=8, fine=[__name__])
    assert result.exhausted
    with FineGrained(target_files([__name__])):
        for n in range(150):
            Scheduler(RandomPolicy(n), modules=MODULES).run(lambda: program(sampled))
    assert sampled <= searched
    assert len(searched) > 1  # a program with a choice in it
