"""Every spec area catches its deliberately broken executors (``tests/specs/broken/``).

Each case runs one spec module against one broken backend, given as ``MODULE:ATTR`` exactly as
a user would, in a pytest subprocess, and expects a failure in the conformance matrix. The
specs' passing on correct executors is shown by the main suite running them on every backend.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from .broken import Broken, all_cases

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"

CASES = all_cases()


def test_every_spec_area_has_at_least_two_broken_executors() -> None:
    by_spec: dict[str, int] = {}
    for case in CASES:
        by_spec[case.spec] = by_spec.get(case.spec, 0) + 1
    areas = sorted(path.name for path in SPECS.glob("test_*.py"))
    assert {area: by_spec.get(area, 0) for area in areas if by_spec.get(area, 0) < 2} == {}


@pytest.mark.parametrize("case", CASES, ids=[case.factory.partition(":")[2] for case in CASES])
def test_the_spec_catches_the_broken_executor(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, case: Broken
) -> None:
    # Only broken executors run here: a lost future may fail after 5 s rather than 30.
    monkeypatch.setenv("PYTEST_FUTURES_SPEC_BOUND", "5")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = pytester.runpytest_subprocess(
        str(SPECS / case.spec),
        f"--executor={case.factory}",
        "--futures-seed=1",
        "-p",
        "no:cacheprovider",
        timeout=600,
    )
    outcomes = result.parseoutcomes()
    if case.known_bug:  # recognised by its behaviour: a KNOWN-BUG naming the issue
        assert outcomes.get("xfailed", 0) >= 1, f"{case.bug}: not caught\n{result.stdout.str()}"
        result.stdout.fnmatch_lines([f"KNOWN-BUG * on {case.factory}: *{case.known_bug}*"])
        return
    assert outcomes.get("failed", 0) >= 1, f"{case.bug}: not caught\n{result.stdout.str()}"
    result.stdout.fnmatch_lines(["*FAIL*"])


# -- race-only bugs: caught under the deterministic scheduler, missed on real threads -----------


@dataclasses.dataclass(frozen=True)
class Race:
    """A race-only broken executor, the spec (and test) that catches it under the scheduler,
    and lines of the report that show the failing program."""

    executor: str
    spec: str
    select: str  # -k
    report: tuple[str, ...]
    steps: int = 8
    """The most steps of the shrunk program (3.9's older Hypothesis shrinks less)."""


RACES = [
    Race(
        # The stdlib's pool with an ``as_completed`` that reads which futures are done, then
        # installs its waiter, without the futures' locks: a future that finishes in between
        # is never yielded. Only a preemption in that gap of a few bytecodes shows it.
        "tests.specs.broken.waiting:AsCompletedLosesAWakeUp.ThreadPoolExecutor",
        "test_waiting_pools.py",
        "two_executors",
        ("*not done after*", "*state = PooledFutures()"),
    ),
    Race(
        # A subclass of the stdlib's pool whose futures' add_done_callback() checks done()
        # and then appends, without the lock: a worker completing the future in between
        # never calls that callback. One preemption in the gap shows it.
        "tests.specs.broken.callbacks:LosesRacingCallbacks.ThreadPoolExecutor",
        "test_callbacks.py",
        "callbacks",
        ("*callbacks, called*", "*state = DoneCallbacks()"),
        steps=16,
    ),
    Race(
        # executor_impl's pool whose futures' set_running_or_notify_cancel() reads PENDING,
        # then takes the lock to write RUNNING: a cancel() in between returns True and the
        # call runs anyway. The spec's cancel() of the call the worker takes next finds it.
        "tests.specs.broken.cancellation:CheckThenMark.ThreadPoolExecutor",
        "test_cancellation.py",
        "test_cancellation",
        ("*(cancelled) started*", "*state = Cancellation()", "*state.release_racing_cancel()"),
        steps=12,
    ),
    Race(
        # The stdlib's pool whose submit() reads the shutdown flag before it takes the lock:
        # a shutdown() in between queues the workers' exit sentinel first, and the call
        # accepted after it never runs. The spec's submit() racing shutdown() finds it.
        "tests.specs.broken.shutdown:ChecksShutdownUnlocked.ThreadPoolExecutor",
        "test_shutdown.py",
        "test_shutdown",
        ("*not done after*", "*state = Shutdown()", "*state.submit_racing_shutdown(count=*)"),
        steps=16,
    ),
    Race(
        # executor_impl's pool whose futures' set_exception() finishes the future as if it
        # returned None, then stores the exception: a reader in between sees None.
        "tests.specs.broken.exceptions:RacesOnExceptions.ThreadPoolExecutor",
        "test_exceptions.py",
        "test_exception_propagation",
        ("*AssertionError: *None*", "*state = ExceptionPropagation()"),
        steps=12,
    ),
]

SEEDS_TO_TRY = range(1, 9)
"""A ``ci`` run of a machine explores a few hundred examples under the scheduler, which catch
these races in most seeds, not all. Each seed's run is deterministic, so trying the first few
is too."""


def _run_the_spec(
    pytester: pytest.Pytester, race: Race, executor: str, seed: int, *extra: str
) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        *extra,
        str(SPECS / race.spec),
        "-k",
        race.select,
        f"--executor={executor}",
        f"--futures-seed={seed}",
        "-p",
        "no:cacheprovider",
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("race", RACES, ids=[race.executor.partition(":")[2] for race in RACES])
def test_a_race_only_bug_is_caught_under_the_scheduler_and_its_schedule_shrinks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, race: Race
) -> None:
    """Under ``deterministic:MODULE:ATTR`` the preemptions are Hypothesis data: the race is
    found, and the failing program prints the schedule shrunk to what still fails it."""
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    monkeypatch.setenv("PYTEST_FUTURES_SPEC_BOUND", "5")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for seed in SEEDS_TO_TRY:
        result = _run_the_spec(pytester, race, f"deterministic:{race.executor}", seed)
        if result.parseoutcomes().get("failed", 0):
            break
    else:
        raise AssertionError(f"the race was missed under the scheduler with seeds {SEEDS_TO_TRY}")
    result.stdout.fnmatch_lines(
        [
            *race.report,
            "*state.interleaving(preemptions=*, time_slice=*)",
            "*pytest-futures schedule*",
            "policy Preemptions(*",
        ]
    )
    # Replayed: the same failure, the same trace, twice more.
    assert "did not replay" not in result.stdout.str()
    # Some Pythons print the exception's notes twice: one program, maybe shown twice.
    steps = [line.lstrip("E ").strip() for line in result.stdout.lines]
    steps = [step for step in steps if step.startswith(("state.", "futures_"))]
    assert len({step for step in steps if step.startswith("state.interleaving(")}) == 1, steps
    # Shrunk: a few steps (the pool starts, a call or two, the step that loses it).
    assert len(set(steps)) <= race.steps, "\n".join(steps)


@pytest.mark.slow
@pytest.mark.parametrize("race", RACES, ids=[race.executor.partition(":")[2] for race in RACES])
def test_the_same_race_is_missed_on_real_threads(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, race: Race
) -> None:
    """The same spec, executor and seeds on real threads pass: the interpreter switches
    threads when one blocks, or every 5 ms, and the gap is microseconds wide. (The plugin
    below makes that 1 s, so that "almost never" is "never" and this test cannot flake.)"""
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([str(ROOT), str(pytester.path), os.environ.get("PYTHONPATH", "")]),
    )
    pytester.makepyfile(switch_seldom="import sys\n\nsys.setswitchinterval(1.0)\n")
    for seed in SEEDS_TO_TRY[:2]:
        result = _run_the_spec(pytester, race, race.executor, seed, "-p", "switch_seldom")
        outcomes = result.parseoutcomes()
        assert outcomes.get("passed", 0) >= 1, result.stdout.str()
        assert not outcomes.get("failed", 0), result.stdout.str()


# -- a bug of time: caught under the scheduler's virtual clock, not placed on real threads ------

DEADLINE_FROM_FIRST_NEXT = "tests.specs.broken.map:DeadlineFromFirstNext"
"""The stdlib's pool with a ``map`` whose timeout counts from the first ``next()``, not from
the call: results first taken past the deadline still wait for the call."""


@pytest.mark.slow
def test_a_map_timeout_counted_from_the_first_next_is_caught_under_virtual_time(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the scheduler, a thread finishes the held call half a timeout into the late
    ``next()``, exactly (virtual time): the broken pool delivers the result. On real threads
    the spec does not place that finish, and the same test passes."""
    monkeypatch.setenv("PYTEST_FUTURES_SPEC_BOUND", "5")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    race = Race(DEADLINE_FROM_FIRST_NEXT, "test_map.py", "counts_the_timeout", ())
    caught = _run_the_spec(pytester, race, f"deterministic:{race.executor}", 1)
    assert caught.parseoutcomes().get("failed", 0) == 1, caught.stdout.str()
    caught.stdout.fnmatch_lines(
        ["*gave (0,) from a next() called at least * after the map() call*from the first next()*"]
    )
    missed = _run_the_spec(pytester, race, race.executor, 1)
    outcomes = missed.parseoutcomes()
    assert outcomes.get("passed", 0) == 1, missed.stdout.str()
    assert not outcomes.get("failed", 0), missed.stdout.str()
