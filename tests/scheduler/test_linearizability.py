"""The linearizability checker (``pytest_futures_plugin/linearizability/_checker.py``), the
section runner (``_sections.py``) and the parallel section spec (``specs/test_linearizability.py``).

The checker accepts hand-written linearizable histories and rejects, explaining why, those that
are not; its sequential model agrees with the stdlib's Future and executor_impl's, call by call;
the spec catches racy Futures (``broken_futures``) under the deterministic scheduler, with a
shrunk schedule that ``Scripted`` replays, and passes the stdlib's Future and executor_impl's.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import executor_impl
from pytest_futures_plugin.linearizability import (
    CALLS,
    Call,
    FutureState,
    NotLinearizableError,
    Operation,
    Outcome,
    check,
    explain,
    linearize,
    step,
)
from pytest_futures_plugin.scheduler import Scripted
from pytest_futures_plugin.scheduler.search import ExplorationFailed
from pytest_futures_plugin.sections import FutureErrors, SectionHungError, run_section
from specs import test_linearizability as spec
from specs._harness import BOUND

from . import broken_futures

ROOT = Path(__file__).resolve().parents[2]


def op(thread: str, call: str, span: tuple[int, int], outcome: object, **kw: Any) -> Operation:
    """An operation; *outcome* a returned value, or an exception class name if *raised*."""
    name, _, argument = call.partition(":")
    raised = bool(kw.pop("raised", False))
    called_back = tuple(kw.pop("ran", ()))
    value = str(outcome) if raised else repr(outcome)
    return Operation(
        thread, Call(name, int(argument or 0)), *span, Outcome(value, raised, called_back)
    )


# -- the checker: hand-written histories ------------------------------------------------------


def test_a_sequential_history_that_follows_the_model_is_linearizable() -> None:
    history = [
        op("main", "add_done_callback:0", (0, 1), None),
        op("main", "set_running_or_notify_cancel", (2, 3), True),
        op("main", "cancel", (4, 5), False),
        op("main", "set_result:7", (6, 7), None, ran=[0]),
        op("main", "result", (8, 9), 7),
    ]
    assert check(history) == history


def test_overlapping_calls_may_take_effect_in_either_order() -> None:
    # cancel() won: set_running_or_notify_cancel(), which overlapped it, saw it cancelled.
    history = [
        op("T1", "cancel", (0, 3), True),
        op("T2", "set_running_or_notify_cancel", (1, 2), False),
    ]
    order = linearize(history)
    assert order is not None
    assert [o.thread for o in order] == ["T1", "T2"]


def test_real_time_order_is_respected() -> None:
    # The same outcomes, but set_running_or_notify_cancel() returned before cancel() began:
    # it must come first, and on a pending future it returns True.
    history = [
        op("T2", "set_running_or_notify_cancel", (0, 1), False),
        op("T1", "cancel", (2, 3), True),
    ]
    assert linearize(history) is None


def test_cancel_and_set_running_cannot_both_succeed() -> None:
    history = [
        op("T1", "cancel", (0, 3), True),
        op("T2", "set_running_or_notify_cancel", (1, 2), True),
    ]
    with pytest.raises(NotLinearizableError) as raised:
        check(history)
    message = str(raised.value)
    assert "not linearizable" in message
    assert "  T1:\n    [0-3] cancel() -> True" in message
    assert "  T2:\n    [1-2] set_running_or_notify_cancel() -> True" in message
    assert "the future is CANCELLED; then" in message
    assert "T2: set_running_or_notify_cancel() would return False, but it returned True" in message
    assert "the future is RUNNING; then" in message
    assert "T1: cancel() would return False, but it returned True" in message
    assert raised.value.history == history


def test_a_callback_added_while_the_future_completes_must_run_once() -> None:
    lost = [
        op("T1", "add_done_callback:0", (0, 3), None),
        op("T2", "set_result:1", (1, 2), None),
    ]
    message = explain(lost)
    assert "not linearizable" in message
    assert "would return None (run cb0), but it returned None (ran no callback)" in message
    ran_by_the_completer = [lost[0], op("T2", "set_result:1", (1, 2), None, ran=[0])]
    ran_by_the_adder = [op("T1", "add_done_callback:0", (0, 3), None, ran=[0]), lost[1]]
    twice = [ran_by_the_adder[0], ran_by_the_completer[1]]
    assert linearize(ran_by_the_completer) is not None
    assert linearize(ran_by_the_adder) is not None
    assert linearize(twice) is None


def test_a_result_nobody_set_is_not_linearizable() -> None:
    history = [
        op("T1", "set_result:1", (0, 3), None),
        op("T2", "set_result:2", (1, 4), "InvalidStateError", raised=True),
        op("T3", "result", (5, 6), 2),
    ]
    assert linearize(history) is None
    history[2] = op("T3", "result", (5, 6), 1)
    assert linearize(history) is not None


def test_a_query_must_see_a_state_the_future_was_in() -> None:
    # done() overlapping a cancel() that returned False: the future was running or finished.
    history = [
        op("main", "set_running_or_notify_cancel", (0, 1), True),
        op("T1", "cancel", (2, 5), False),
        op("T2", "done", (3, 4), True),
    ]
    assert linearize(history) is None
    history[2] = op("T2", "running", (3, 4), True)
    assert linearize(history) is not None


def test_the_search_handles_three_threads_of_four_calls() -> None:
    # Twelve overlapping queries of a pending future: many orders, one state.
    history = [
        op(f"T{t}", name, (n, 100 + n), False)
        for n, (t, name) in enumerate(
            itertools.product((1, 2, 3), ("done", "running", "cancelled", "done"))
        )
    ]
    assert len(check(history)) == 12


# -- the sequential model agrees with the real Futures, call by call ---------------------------


def _sample_calls() -> list[Call]:
    calls = [Call(name) for name in CALLS if name not in ("set_result", "set_exception")]
    return [*calls, Call("set_result", 1), Call("set_exception", 2)]


@pytest.mark.parametrize(
    "future_class", [concurrent.futures.Future, executor_impl.Future], ids=["stdlib", "impl"]
)
def test_the_model_agrees_with_the_future_on_every_sequence_of_three_calls(
    future_class: type[Any],
) -> None:
    logging.disable(logging.CRITICAL)  # set_running_or_notify_cancel's "unexpected state"
    try:
        for sequence in itertools.product(_sample_calls(), repeat=3):
            numbered = [
                Call(c.name, n) if c.name == "add_done_callback" else c
                for n, c in enumerate(sequence)
            ]
            history = run_section(future_class(), [], prefix=numbered, suffix=spec.SUFFIX)
            state = FutureState()
            for operation in history:
                state, expected = step(state, operation.call)
                assert operation.outcome == expected, (numbered, operation)
    finally:
        logging.disable(logging.NOTSET)


def test_a_call_name_outside_the_model_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Call\('shutdown'\): not one of cancel, "):
        Call("shutdown")


# -- the spec catches racy Futures under the scheduler -----------------------------------------

BROKEN = [
    broken_futures.CancelInTwoStepsFuture,
    broken_futures.UnlockedCallbackFuture,
    broken_futures.SetResultInTwoStepsFuture,
]


def _section_of(history: list[Operation]) -> spec.Section:
    """The section a history ran: main's calls before the threads', then each thread's."""
    by_invocation = sorted(history, key=lambda o: o.invoked)
    first = min(o.invoked for o in history if o.thread != "main")
    prefix = tuple(o.call for o in by_invocation if o.thread == "main" and o.invoked < first)
    names = sorted({o.thread for o in history if o.thread != "main"})
    threads = tuple(tuple(o.call for o in by_invocation if o.thread == t) for t in names)
    return spec.Section(prefix, threads)


@pytest.mark.slow
@pytest.mark.parametrize("future_class", BROKEN, ids=lambda cls: cls.__name__)
def test_the_spec_catches_a_racy_future_with_a_shrunk_schedule(future_class: type[Any]) -> None:
    modules = spec.controlled_for(future_class)
    with pytest.raises(NotLinearizableError) as raised:
        spec.explore_under_scheduler(
            future_class, FutureErrors(), seed=1, modules=modules, max_examples=1000
        )
    error = raised.value
    section = _section_of(error.history)
    # Shrunk: two threads, and no more than three calls (each race needs two).
    assert len(section.threads) == 2, str(error)
    assert sum(map(len, section.threads)) + len(section.prefix) <= 3, str(error)
    assert 0 < len(error.schedule) <= 20, str(error)
    assert "Schedule (" in str(error)
    # The printed schedule replays the failure exactly.
    with pytest.raises(NotLinearizableError) as again:
        spec.run_controlled(
            future_class, FutureErrors(), modules, section, Scripted(error.schedule)
        )
    assert again.value.history == error.history
    assert again.value.schedule == error.schedule


RACES = {
    "cancel/set_running": ((Call("cancel"),), (Call("set_running_or_notify_cancel"),)),
    "callback/set_result": ((Call("add_done_callback", 0),), (Call("set_result", 1),)),
    "set_result twice": ((Call("set_result", 1),), (Call("set_result", 2),)),
}
"""Two-thread sections, each the race of one broken future (in ``BROKEN``'s order)."""


@pytest.mark.parametrize(
    ("future_class", "race"), list(zip(BROKEN, RACES)), ids=lambda x: getattr(x, "__name__", x)
)
def test_a_systematic_search_of_a_section_catches_a_racy_future(
    future_class: type[Any], race: str
) -> None:
    section = spec.Section((), RACES[race])
    with pytest.raises(ExplorationFailed) as raised:
        spec.search_section(
            future_class, FutureErrors(), spec.controlled_for(future_class), section
        )
    assert isinstance(raised.value.__cause__, NotLinearizableError)
    assert raised.value.exploration.schedules <= 50, raised.value.exploration.report()


@pytest.mark.parametrize(
    "future_class", [concurrent.futures.Future, executor_impl.Future], ids=["stdlib", "impl"]
)
@pytest.mark.parametrize("race", RACES)
def test_a_systematic_search_proves_a_correct_future_on_each_section(
    future_class: type[Any], race: str
) -> None:
    section = spec.Section((), RACES[race])
    result = spec.search_section(
        future_class, FutureErrors(), spec.controlled_for(future_class), section
    )
    assert result.failure is None, result.report()
    assert result.exhausted, result.report()


@pytest.mark.parametrize(
    "future_class", [concurrent.futures.Future, executor_impl.Future], ids=["stdlib", "impl"]
)
def test_the_stdlib_future_and_executor_impls_pass(future_class: type[Any]) -> None:
    spec.explore_under_scheduler(future_class, FutureErrors(), seed=3, max_examples=150)
    spec.explore_on_threads(future_class, FutureErrors(), seed=3, max_examples=40)


def test_a_section_that_hangs_fails_naming_the_call() -> None:
    class Blocks(concurrent.futures.Future[Any]):
        def done(self) -> bool:
            self.result()  # never set: blocks for good (virtual time: the bound passes)
            return True

    with pytest.raises(SectionHungError, match=r"calls in progress: T1: done\(\)"):
        spec.run_controlled(
            Blocks,
            FutureErrors(),
            spec.controlled_for(Blocks),
            spec.Section((), ((Call("done"),), (Call("cancelled"),))),
            [],
        )


def test_a_linearizable_history_is_explained_by_its_order() -> None:
    history = [op("T1", "done", (0, 1), False), op("T2", "cancel", (2, 3), True)]
    assert explain(history) == (
        "linearizable, in this order:\n  T1: done() -> False\n  T2: cancel() -> True"
    )


def test_an_unexpected_exception_is_named_with_its_message() -> None:
    class Refuses(concurrent.futures.Future[Any]):
        def cancel(self) -> bool:
            raise ValueError("no")

    history = run_section(Refuses(), [[Call("cancel")], [Call("done")]])
    outcomes = {str(o.call): o.outcome for o in history}
    assert outcomes["cancel()"] == Outcome("ValueError: no", raised=True)
    assert linearize(history) is None


def test_a_callback_run_outside_the_section_fails_it() -> None:
    class ElsewhereFuture(concurrent.futures.Future[Any]):
        def add_done_callback(self, fn: Any) -> None:
            helper = threading.Thread(target=fn, args=(self,), name="helper")
            helper.start()
            helper.join(BOUND)

    with pytest.raises(
        AssertionError, match=r"by threads outside the section: \{'helper': \[0\]\}"
    ):
        run_section(ElsewhereFuture(), [[Call("add_done_callback")], [Call("done")]])


def test_the_engine_imports_neither_pytest_nor_hypothesis() -> None:
    script = (
        "import sys, pytest_futures_plugin.linearizability, pytest_futures_plugin.sections\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "             ('pytest', '_pytest', 'hypothesis', 'executor_impl')))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "[]\n", "")
