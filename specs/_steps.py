"""The steps of a state machine's example, written down as they run, so that an example that
hung can be printed as a program although Hypothesis never reports it.

Hypothesis prints a failing example's program only while it replays the example at the end;
a hung example is not replayed (``_harness.SpecHang`` stops the run at once: a replay would
wait out the bound again). :class:`StepRecorder` keeps the same lines, in the same form
(``futures_0 = state.submit_returning(value=1)``), from the example's own run.

It relies on four of ``RuleBasedStateMachine``'s private names (``_rules_strategy``,
``_pretty_print``, ``_repr_step``, ``_add_results_to_targets``; the same in Hypothesis 6.141,
the newest on Python 3.9, and 6.170); where one is missing it records nothing and says so,
and the machine runs as usual. ``tests/specs/test_steps.py`` compares its lines with the
program Hypothesis prints.
"""

from __future__ import annotations

from typing import Any, Callable, cast

from hypothesis.stateful import RuleBasedStateMachine, multiple

_UNRECORDED = "(the steps were not recorded: this Hypothesis lacks {name})"


class StepRecorder:
    """Records each rule *machine* runs, with its arguments and the names of its results.

    It changes nothing Hypothesis draws or sees: the machine's rule strategy draws as before
    (its ``do_draw`` is wrapped on the instance, so no strategy is added around it), and the
    step's results are read as Hypothesis hands them to the machine's bundles."""

    def __init__(self, machine: RuleBasedStateMachine) -> None:
        # Any: the private names below are untyped, or typed otherwise, per Hypothesis version.
        self.machine: Any = cast("Any", machine)
        self.lines = [f"state = {type(machine).__name__}()"]
        # The step drawn last: its rule, its arguments as printed, its result once known.
        self._pending: tuple[Any, dict[str, str], list[Any]] | None = None
        self.missing = next(
            (
                name
                for name in (
                    "_rules_strategy",
                    "_pretty_print",
                    "_repr_step",
                    "_add_results_to_targets",
                )
                if not hasattr(machine, name)
            ),
            None,
        )
        if self.missing is None:
            strategy = self.machine._rules_strategy
            strategy.do_draw = self._drawing(strategy.do_draw)
            self.machine._add_results_to_targets = self._adding(
                self.machine._add_results_to_targets
            )

    def _drawing(self, do_draw: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def drawing(data: Any) -> Any:
            self._flush()
            drawn = do_draw(data)
            rule, arguments = drawn
            # Printed now, before the step's results get names (as Hypothesis does).
            printed = {k: self.machine._pretty_print(v) for k, v in arguments.items()}
            self._pending = (rule, printed, [multiple()])  # a step that raises has no result
            return drawn

        return drawing

    def _adding(self, add: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def adding(targets: Any, results: Any) -> None:
            add(targets, results)
            if self._pending is not None:
                # Hypothesis passes a MultipleResults' values (a tuple), or [result].
                result = multiple(*results) if isinstance(results, tuple) else results[0]
                self._pending[2][0] = result

        return adding

    def _flush(self) -> None:
        if self._pending is not None:
            rule, printed, result = self._pending
            self._pending = None
            self.lines.append(self.machine._repr_step(rule, printed, result[0]))

    def program(self) -> str:
        """The steps run so far, the last one perhaps unfinished, then the teardown."""
        if self.missing is not None:
            return _UNRECORDED.format(name=self.missing)
        self._flush()
        return "\n".join([*self.lines, "state.teardown()"])
