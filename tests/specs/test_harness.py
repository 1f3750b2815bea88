"""``specs/_harness.py`` under the deterministic scheduler: each example draws its schedule, a
failing interleaving shrinks, a failing example that does not replay says so, and the hang
guard bounds each example.

Small machines of this module run under a :class:`Scheduler` used directly, as
``--executor=deterministic`` runs the specs (the spec's thread is the owner).
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures._base
import concurrent.futures.thread
import contextlib
import dataclasses
import itertools
import re
import threading
import time

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from pytest_futures_plugin import guards
from pytest_futures_plugin.scheduler import RandomPolicy, Scheduler
from specs import _harness

STDLIB = ("concurrent.futures.thread", "concurrent.futures._base")


def increment(box: list[int]) -> None:
    value = box[0]
    time.sleep(0)  # a scheduling point between the read and the write
    box[0] = value + 1


class LostUpdate(RuleBasedStateMachine):
    """Two calls increment a counter with a gap between read and write: one preemption in
    the gap loses an update."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        self.box = [0]
        self.expected = 0

    @rule()
    def increment_twice(self) -> None:
        for future in [self.pool.submit(increment, self.box) for _ in range(2)]:
            future.result()
        self.expected += 2
        assert self.box[0] == self.expected, f"{self.box[0]} increments of {self.expected}"

    def teardown(self) -> None:
        self.pool.shutdown(wait=True)


RUNS = itertools.count()


class OutsideTheScheduler(RuleBasedStateMachine):
    """Fails always, after a number of scheduling points that state kept between runs
    decides: its failing example does not replay."""

    @rule()
    def lock_and_fail(self) -> None:
        lock = threading.Lock()
        for _ in range(next(RUNS) % 3):
            with lock:
                pass
        raise AssertionError("always")


def run_under_the_scheduler(machine: type[RuleBasedStateMachine]) -> AssertionError:
    scheduler = Scheduler(RandomPolicy(0), modules=[__name__, *STDLIB])
    with pytest.raises(AssertionError) as raised, scheduler:
        _harness.run_spec(machine, seed=1)
    return raised.value


def test_a_failing_interleaving_shrinks_to_the_preemption_it_needs() -> None:
    failure = run_under_the_scheduler(LostUpdate)
    notes = "\n".join(getattr(failure, "__notes__", ()))
    (schedule,) = re.findall(
        r"state\.interleaving\(preemptions=(\[.*?\]), time_slice=(\d+)\)", notes
    )
    preemptions, time_slice = schedule
    # One listed preemption, or none and a time slice: the fewest that still lose an update.
    assert preemptions.count("(") + (time_slice != "0") == 1, notes
    assert notes.count("state.increment_twice()") == 1, notes
    assert "did not replay" not in notes, notes


def test_a_failing_example_that_does_not_replay_is_reported() -> None:
    failure = run_under_the_scheduler(OutsideTheScheduler)
    notes = "\n".join(getattr(failure, "__notes__", ()))
    assert "pytest-futures: the failing example did not replay" in notes, notes
    assert "Something outside the scheduler's control decides" in notes


def test_real_threads_draw_no_schedule() -> None:
    assert not _harness.controlled()
    with pytest.raises(AssertionError) as raised:
        _harness.run_spec(OutsideTheScheduler, seed=1)
    notes = "\n".join(getattr(raised.value, "__notes__", ()))
    assert "state.lock_and_fail()" in notes
    assert "interleaving" not in notes


class FailsFromTheThirdStep(RuleBasedStateMachine):
    """Fails once an example took three steps; counts the examples it was made for."""

    made = 0

    def __init__(self) -> None:
        super().__init__()
        type(self).made += 1
        self.steps = 0

    @rule()
    def step(self) -> None:
        self.steps += 1
        assert self.steps < 3, "three steps"


def examples_until_it_fails(expected: str | None) -> int:
    FailsFromTheThirdStep.made = 0
    expecting = (
        _harness.expecting_failure(expected) if expected is not None else contextlib.nullcontext()
    )
    with expecting, pytest.raises(AssertionError, match="three steps"):
        _harness.run_spec(FailsFromTheThirdStep, seed=1)
    return FailsFromTheThirdStep.made


def test_an_expected_failure_is_not_shrunk() -> None:
    """A test expected to fail (a KNOWN-BUG, a deviation) stops at its first failing example:
    that example and Hypothesis' one replay of it for the report; unexpected, it shrinks."""
    assert _harness.expected_failure() is None
    known = examples_until_it_fails("a known bug")
    assert _harness.expected_failure() is None
    shrunk = examples_until_it_fails(None)
    assert known <= 3, known  # with seed 1, the first example fails: it and its replay
    assert shrunk > known, (shrunk, known)


class Counted(RuleBasedStateMachine):
    """Passes; counts the examples made."""

    made = 0

    def __init__(self) -> None:
        super().__init__()
        Counted.made += 1

    @rule()
    def nothing(self) -> None:
        pass


def test_the_hang_guard_bounds_each_example_not_the_whole_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Generating, shrinking and replaying run many examples: bounded as a whole, they ran
    # past the hang guard on a loaded machine and a found race was reported as a hang.
    rearmed = []
    monkeypatch.setattr(guards, "rearm_guards", lambda: rearmed.append(Counted.made))
    monkeypatch.setattr(Counted, "made", 0)
    with Scheduler(RandomPolicy(0), modules=[__name__, *STDLIB]):
        _harness.run_spec(Counted, seed=1)
    assert Counted.made > 1
    # Once before each example is made: the n-th rearm comes after n - 1 examples.
    assert rearmed == list(range(Counted.made)), rearmed


class CountedWith(RuleBasedStateMachine):
    """Passes; made with a backend, as a spec machine is; counts the examples made (each draws
    an integer, so that Hypothesis does not run out of distinct examples)."""

    made = 0

    def __init__(self, backend: object) -> None:
        super().__init__()
        CountedWith.made += 1
        self.backend = backend

    @rule(n=st.integers())
    def draw(self, n: int) -> None:
        pass


def test_a_backend_slow_to_start_runs_the_share_of_examples_it_declares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_futures_plugin import backends

    full = backends.Backend("full", concurrent.futures.ThreadPoolExecutor)
    quarter = dataclasses.replace(full, name="quarter", examples=0.25, examples_reason="slow")
    made = {}
    for backend in (full, quarter):
        monkeypatch.setattr(CountedWith, "made", 0)
        _harness.run_spec(CountedWith, backend, seed=1, scale=4)
        made[backend.name] = CountedWith.made
    planned = _harness.profile().max_examples * 4
    share = backends.examples(quarter, planned)
    assert share == round(planned / 4)
    # Hypothesis may make one machine more than it counts as an example.
    assert planned <= made["full"] <= planned + 1, made
    assert share <= made["quarter"] <= share + 1, made
