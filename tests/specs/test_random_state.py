"""A thread of the executor under test that uses the ``random`` module while a spec draws does
not make Hypothesis blame the spec's strategies (``specs._random_state``)."""

from __future__ import annotations

import random
import threading
import warnings
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st
from hypothesis.errors import HypothesisDeprecationWarning
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, rule

from specs._harness import BOUND, PROFILES, run_spec
from specs._random_state import RANDOM_IN_STRATEGIES

if TYPE_CHECKING:
    from collections.abc import Iterator

DRAWS = 20
"""Draws per step: enough for the spinning thread to move the random state during one."""


class Draws(RuleBasedStateMachine):
    """A machine that draws from the model, as the waiting specs do, using no ``random``."""

    @rule(data=st.data())
    def draw(self, data: st.DataObject) -> None:
        for _ in range(DRAWS):
            data.draw(st.sampled_from([1, 2, 3]))


class RandomSpinner:
    """A thread calling ``random.random()`` until stopped (as dask's event loop picks a worker
    with ``random.choice`` for each result it fetches)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.calls = 0
        self.thread = threading.Thread(target=self._spin, name="random-spinner", daemon=True)

    def _spin(self) -> None:
        while not self.stop.is_set():
            random.random()
            self.calls += 1

    def __enter__(self) -> RandomSpinner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(BOUND)
        assert not self.thread.is_alive(), f"the random spinner did not stop within {BOUND}s"


def _random_warnings(run: Any) -> Iterator[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with RandomSpinner() as spinner:
            run()
    assert spinner.calls > 0
    return (
        str(w.message)
        for w in caught
        if issubclass(w.category, HypothesisDeprecationWarning)
        and str(w.message).startswith(RANDOM_IN_STRATEGIES)
    )


def test_hypothesis_blames_a_draw_for_another_threads_random() -> None:
    """The false alarm itself, outside the harness: the test below can fail."""
    test: Any = get_state_machine_test(Draws, settings=PROFILES["dev"])  # type: ignore[no-untyped-call,unused-ignore]
    assert any(True for _ in _random_warnings(test))


def test_a_spec_on_real_threads_is_not_blamed_for_another_threads_random() -> None:
    assert list(_random_warnings(lambda: run_spec(Draws, seed=1))) == []
