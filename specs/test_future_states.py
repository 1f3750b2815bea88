"""Future state transitions, as the documentation of ``concurrent.futures.Future`` states them.

    "Future instances are created by Executor.submit() and should not be created directly
    except for testing."

    cancel(): "Attempt to cancel the call. If the call is currently being executed or finished
    running and cannot be cancelled then the method will return False, otherwise the call will
    be cancelled and the method will return True."

    set_running_or_notify_cancel(): "If the method returns False then the Future was
    cancelled ... If the method returns True then the Future was not cancelled and has been put
    in the running state ... This method can only be called once and cannot be called after
    Future.set_result() or Future.set_exception() have been called."

    set_result() / set_exception(): "This method raises concurrent.futures.InvalidStateError if
    the Future is already done."

The table the machine checks (the stdlib's internal CANCELLED_AND_NOTIFIED is visible only
through ``set_running_or_notify_cancel``, which raises RuntimeError on it):

=====================  ==========  ====================  =====================  =========
call                   PENDING     RUNNING               CANCELLED              FINISHED
=====================  ==========  ====================  =====================  =========
cancel()               True ->C    False                 True                   False
set_running_or_...()   True ->R    RuntimeError          False ->C(notified)    RuntimeError
set_result/exception   ->F         ->F                   InvalidStateError      InvalidStateError
result(timeout=0)      Timeout     Timeout               CancelledError         value/raise
=====================  ==========  ====================  =====================  =========

A C(notified) future behaves as C, except that set_running_or_notify_cancel() raises
RuntimeError. Done callbacks run once, when the future becomes done (C or F), or at once when
added to a done future. Futures are made with the backend's ``Future`` class, so the machine is
deterministic: it needs no executor and no thread.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from ._harness import run_spec
from ._tasks import SpecBaseError, SpecError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pytest_futures_plugin.backends import Backend, FuturesAPI

pytestmark = pytest.mark.futures_area("future-states")

PENDING, RUNNING, CANCELLED, FINISHED = "pending", "running", "cancelled", "finished"


exceptions = st.builds(SpecError, st.integers()) | st.builds(SpecBaseError, st.integers())
values = st.none() | st.integers() | st.text(max_size=3) | st.builds(object)


@dataclasses.dataclass
class Model:
    """What one future should be: its state, outcome and the callbacks it owes."""

    state: str = PENDING
    notified: bool = False
    value: Any = None
    error: BaseException | None = None
    callbacks_added: int = 0
    callbacks_due: int = 0  # how many have been owed a call so far

    @property
    def done(self) -> bool:
        return self.state in (CANCELLED, FINISHED)


class FutureStates(RuleBasedStateMachine):
    """The Future state machine, one rule per public method."""

    futures = Bundle("futures")

    def __init__(self, api: FuturesAPI) -> None:
        super().__init__()
        self.api = api
        self.model: dict[int, Model] = {}
        self.calls: dict[int, list[int]] = {}  # future id -> indices of callbacks run
        self.objects: dict[int, Future[Any]] = {}

    def _of(self, future: Future[Any]) -> Model:
        return self.model[id(future)]

    def _complete(self, model: Model) -> None:
        model.callbacks_due = model.callbacks_added

    @rule(target=futures)
    def new_future(self) -> Future[Any]:
        future: Future[Any] = self.api.Future()
        self.model[id(future)] = Model()
        self.calls[id(future)] = []
        self.objects[id(future)] = future
        return future

    @rule(future=futures)
    def cancel(self, future: Future[Any]) -> None:
        model = self._of(future)
        expected = model.state in (PENDING, CANCELLED)
        assert future.cancel() is expected, f"cancel() of a {model.state} future"
        if model.state == PENDING:
            model.state = CANCELLED
            self._complete(model)

    @rule(future=futures)
    def set_running_or_notify_cancel(self, future: Future[Any]) -> None:
        model = self._of(future)
        if model.state == PENDING:
            assert future.set_running_or_notify_cancel() is True
            model.state = RUNNING
        elif model.state == CANCELLED and not model.notified:
            assert future.set_running_or_notify_cancel() is False
            model.notified = True
        else:
            # The stdlib logs a critical "unexpected state" record before raising.
            logging.disable(logging.CRITICAL)
            try:
                with pytest.raises(RuntimeError):
                    future.set_running_or_notify_cancel()
            finally:
                logging.disable(logging.NOTSET)

    @rule(future=futures, value=values)
    def set_result(self, future: Future[Any], value: Any) -> None:
        model = self._of(future)
        if model.done:
            with pytest.raises(self.api.InvalidStateError):
                future.set_result(value)
            return
        future.set_result(value)
        model.state, model.value = FINISHED, value
        self._complete(model)

    @rule(future=futures, error=exceptions)
    def set_exception(self, future: Future[Any], error: BaseException) -> None:
        model = self._of(future)
        if model.done:
            with pytest.raises(self.api.InvalidStateError):
                future.set_exception(error)
            return
        future.set_exception(error)
        model.state, model.error = FINISHED, error
        self._complete(model)

    @rule(future=futures)
    def add_done_callback(self, future: Future[Any]) -> None:
        model = self._of(future)
        index = model.callbacks_added
        calls = self.calls[id(future)]

        def callback(done: Future[Any]) -> None:
            assert done is future, "a done callback is called with its own future"
            calls.append(index)

        model.callbacks_added += 1
        future.add_done_callback(callback)
        if model.done:  # "called immediately" when added to a done future
            model.callbacks_due = model.callbacks_added

    @rule(future=futures)
    def result(self, future: Future[Any]) -> None:
        model = self._of(future)
        if model.state in (PENDING, RUNNING):
            with pytest.raises(self.api.TimeoutError):
                future.result(timeout=0)
        elif model.state == CANCELLED:
            with pytest.raises(self.api.CancelledError):
                future.result(timeout=0)
        elif model.error is not None:
            with pytest.raises(type(model.error)) as raised:
                future.result(timeout=0)
            assert raised.value is model.error, "result() raises the very exception set"
        else:
            assert future.result(timeout=0) is model.value

    @rule(future=futures)
    def exception(self, future: Future[Any]) -> None:
        model = self._of(future)
        if model.state in (PENDING, RUNNING):
            with pytest.raises(self.api.TimeoutError):
                future.exception(timeout=0)
        elif model.state == CANCELLED:
            with pytest.raises(self.api.CancelledError):
                future.exception(timeout=0)
        else:
            assert future.exception(timeout=0) is model.error

    @invariant()
    def queries_agree_with_the_state(self) -> None:
        for future_id, model in self.model.items():
            future = self._future(future_id)
            assert future.done() is model.done, f"done() of a {model.state} future"
            assert future.running() is (model.state == RUNNING), f"running() ({model.state})"
            assert future.cancelled() is (model.state == CANCELLED), f"cancelled() ({model})"

    @invariant()
    def repr_names_the_state(self) -> None:
        for future_id, model in self.model.items():
            assert f"state={model.state}" in repr(self._future(future_id))

    @invariant()
    def done_callbacks_run_once_in_registration_order(self) -> None:
        for future_id, model in self.model.items():
            assert self.calls[future_id] == list(range(model.callbacks_due)), (
                f"callbacks of a {model.state} future with {model.callbacks_added} added"
            )

    def _future(self, future_id: int) -> Future[Any]:
        return self.objects[future_id]


def test_future_state_transitions(futures_backend: Backend, futures_seed: int) -> None:
    """Every sequence of Future calls follows the table in this module's docstring."""
    api = futures_backend.api
    run_spec(FutureStates, api, seed=futures_seed, scale=10)
