"""The steps of an example as ``specs._steps.StepRecorder`` writes them down: the very program
Hypothesis prints for a failing example, so that a hung example (never replayed, so never
printed by Hypothesis) is reported in the same form."""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    get_state_machine_test,
    multiple,
    rule,
)

from specs._steps import StepRecorder

MAX_STEPS = 40
"""Steps an example may take (the machine fails once each of its rules ran)."""


class Numbers(RuleBasedStateMachine):
    """Rules with one result, several, one in a ``multiple``, none, and a use of a result."""

    numbers = Bundle("numbers")

    def __init__(self) -> None:
        super().__init__()
        self.ran: set[str] = set()

    def _step(self, name: str) -> None:
        """Fail once every rule ran: the program then shows each form of step."""
        self.ran.add(name)
        if len(self.ran) == RULES:
            raise AssertionError("every rule ran")

    @rule(target=numbers, value=st.integers(0, 3))
    def one(self, value: int) -> int:
        self._step("one")
        return value

    @rule(target=numbers)
    def two(self) -> MultipleResults[int]:
        self._step("two")
        return multiple(1, 2)

    @rule(target=numbers)
    def one_of_a_multiple(self) -> MultipleResults[int]:
        self._step("one_of_a_multiple")
        return multiple(3)

    @rule(target=numbers)
    def none_of_a_multiple(self) -> MultipleResults[int]:
        self._step("none_of_a_multiple")
        return multiple()

    @rule(number=numbers, text=st.text(max_size=2))
    def use(self, number: int, text: str) -> None:
        self._step("use")


RULES = 5


def _steps_hypothesis_printed(error: BaseException) -> list[str]:
    lines = "\n".join(getattr(error, "__notes__", ())).splitlines()
    first = next(n for n, line in enumerate(lines) if line.startswith("state = "))
    last = next(n for n, line in enumerate(lines) if line == "state.teardown()")
    return lines[first : last + 1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_recorded_steps_are_the_program_hypothesis_prints(seed: int) -> None:
    recorders: list[StepRecorder] = []

    def factory() -> Numbers:
        machine = Numbers()
        recorders.append(StepRecorder(machine))
        return machine

    chosen = settings(
        max_examples=200,
        stateful_step_count=MAX_STEPS,
        phases=[Phase.generate],
        database=None,
        deadline=None,  # a loaded machine is no failure here
        suppress_health_check=list(HealthCheck),
    )
    test: Any = get_state_machine_test(factory, settings=chosen)  # type: ignore[no-untyped-call,unused-ignore]
    with pytest.raises(AssertionError, match="every rule ran") as failed:
        # The final replay, which prints the program, is the last machine made.
        hypothesis.seed(seed)(test)()
    printed = _steps_hypothesis_printed(failed.value)
    assert recorders[-1].program().splitlines() == printed
    assert any(line.startswith("(numbers_") for line in printed), printed  # multiple(3)


def test_the_steps_of_a_machine_run_so_far_end_with_its_teardown() -> None:
    recorder = StepRecorder(Numbers())
    assert recorder.program() == "state = Numbers()\nstate.teardown()"
