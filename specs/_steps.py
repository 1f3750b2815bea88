"""The steps of a state machine's example, written down as they run, so that an example that
hung can be printed as a program although Hypothesis never reports it.

Hypothesis prints a failing example's program only while it replays the example at the end;
a hung example is not replayed (``_harness.SpecHang`` stops the run at once: a replay would
wait out the bound again). :class:`StepRecorder` keeps the same lines, in the same form
(``futures_0 = state.submit_returning(value=1)``), from the example's own run.

It relies on three of ``RuleBasedStateMachine``'s private names (``_rules_strategy``,
``_pretty_print``, ``_repr_step``; the same in Hypothesis 6.141, the newest on Python 3.9, and
6.170); where one is missing it records nothing and says so, and the machine runs as usual.
``tests/specs/test_steps.py`` compares its lines with the program Hypothesis prints.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, cast

from hypothesis.stateful import RuleBasedStateMachine, multiple

_UNRECORDED = "(the steps were not recorded: this Hypothesis lacks {name})"


class StepRecorder:
    """Records each rule *machine* runs, with its arguments and the names of its results."""

    def __init__(self, machine: RuleBasedStateMachine) -> None:
        # Any: the private names below are untyped, or typed otherwise, per Hypothesis version.
        self.machine: Any = cast("Any", machine)
        self.lines = [f"state = {type(machine).__name__}()"]
        self._pending: tuple[Any, dict[str, str], list[Any]] | None = None
        self.missing = next(
            (
                name
                for name in ("_rules_strategy", "_pretty_print", "_repr_step")
                if not hasattr(machine, name)
            ),
            None,
        )
        if self.missing is None:
            self.machine._rules_strategy = self.machine._rules_strategy.map(self._drawn)

    def _drawn(self, drawn: tuple[Any, dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
        """The rule and arguments Hypothesis drew, with the rule's function wrapped so that
        its result is kept: the arguments are printed now, before the step's results get
        names (as Hypothesis does), the step itself once they have them."""
        self._flush()
        rule, data = drawn
        printed = {k: self.machine._pretty_print(v) for k, v in data.items()}
        outcome: list[Any] = [multiple()]  # what a step that raised leaves (as Hypothesis)
        self._pending = (rule, printed, outcome)
        function: Callable[..., Any] = rule.function

        @functools.wraps(function)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            outcome[0] = function(*args, **kwargs)
            return outcome[0]

        return dataclasses.replace(rule, function=recorded), data

    def _flush(self) -> None:
        if self._pending is not None:
            rule, printed, outcome = self._pending
            self._pending = None
            self.lines.append(self.machine._repr_step(rule, printed, outcome[0]))

    def program(self) -> str:
        """The steps run so far, the last one perhaps unfinished, then the teardown."""
        if self.missing is not None:
            return _UNRECORDED.format(name=self.missing)
        self._flush()
        return "\n".join([*self.lines, "state.teardown()"])
