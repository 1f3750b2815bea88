"""Done callbacks, as the documentation of ``concurrent.futures.Future.add_done_callback``
states them:

    "Attaches the callable fn to the future. fn will be called, with the future as its only
    argument, when the future is cancelled or finishes running.

    Added callables are called in the order that they were added and are always called in a
    thread belonging to the process that added them. If the callable raises an Exception
    subclass, it will be logged and ignored. If the callable raises a BaseException subclass,
    the behavior is undefined.

    If the future has already completed or been cancelled, fn will be called immediately."

The machine submits tasks to a real executor (tasks that return, raise, or block on a gate
the machine releases later), cancels some, and adds callbacks along the way. What it checks
holds under every interleaving of the pool's threads:

* Every callback is called exactly once, with its own future, once that future is done
  (finished or cancelled), in the test's own process (also when the tasks run in worker
  processes).
* "In the order that they were added": the callbacks the completing (or cancelling) thread
  calls come in the order they were added. A callback added once the future is done is
  called at once, in the adding thread, before ``add_done_callback`` returns; so it may run
  while the completing thread is still calling the earlier ones, but no callback added after
  it waits for the completing thread.
* A callback that raises an ``Exception`` neither escapes (from ``add_done_callback``,
  ``cancel``, or into the pool) nor stops the others; its exception is logged, once, with
  the exception attached, on the ``concurrent.futures`` logger (the stdlib's
  ``LOGGER.exception("exception calling callback for %r", future)``; executor_impl logs to
  the same logger).

Callbacks of a completed future run in the completing thread after the state changed, so
``result()`` may return before they ran. So the properties are checked once the machine is
quiet, after every gate was opened and ``shutdown(wait=True)`` joined the pool's threads
(which call the callbacks); a failure then shows at the same step on every replay. Only
"called immediately" is checked at the step that adds the callback, in the test's thread.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, precondition, rule

from pytest_futures_plugin import tasks
from pytest_futures_plugin.controls import Controls

from ._callback_submit import callback_submits_during_shutdown
from ._fixtures import futures_known_bugs  # noqa: F401 (a fixture the tests request)
from ._harness import BOUND, drain_before_shutdown, run_spec, shut_down_within_bound
from ._known_bugs import expects_known_bug

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pytest_futures_plugin.backends import Backend
    from pytest_futures_plugin.controls import Gate

pytestmark = pytest.mark.futures_area("callbacks")

LOGGER_NAME = "concurrent.futures"
"""Where the stdlib logs a callback's exception; every backend must log there too."""

MAX_WORKERS = 2

CALLBACKS = st.lists(st.booleans(), max_size=2)
"""Callbacks added right after ``submit``: true for one that raises."""


class CallbackError(Exception):
    """What a raising callback raises; compared by identity with the logged one."""


@dataclasses.dataclass(frozen=True)
class Call:
    """One call of a callback, as the callback itself saw it."""

    index: int  # the callback's position among those added to its future
    own_future: bool  # called with the future it was added to
    saw_done: bool  # future.done() inside the callback
    pid: int
    at_once: bool  # called in the adding thread, inside add_done_callback


@dataclasses.dataclass
class FutureModel:
    """What the machine knows of one future."""

    label: str
    value: object = None
    error: BaseException | None = None
    cancelled: bool = False
    added: int = 0
    raising: dict[int, CallbackError] = dataclasses.field(default_factory=dict)


class CallbackLog(logging.Handler):
    """Collects the exceptions attached to the records of one logger."""

    def __init__(self) -> None:
        super().__init__()
        self.exceptions: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.exceptions.append(record.exc_info[1])

    def count(self, error: BaseException) -> int:
        return sum(logged is error for logged in self.exceptions)


class DoneCallbacks(RuleBasedStateMachine):
    """Futures of a real pool, with callbacks added before and after they are done."""

    futures = Bundle("futures")

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.api = backend.api
        self.test_pid = os.getpid()
        self.test_thread = threading.get_ident()
        self.models: dict[int, FutureModel] = {}
        self.objects: list[Future[Any]] = []
        self.closed_gates: list[Gate] = []
        self.lock = threading.Lock()  # guards calls: callbacks append from any thread
        self.calls: dict[int, list[Call]] = {}
        self.adding: tuple[int, int] | None = None  # (future id, index) inside add_done_callback
        self.log = CallbackLog()
        logging.getLogger(LOGGER_NAME).addHandler(self.log)
        self.controls = Controls(timeout=BOUND)
        self.executor = backend.make(max_workers=MAX_WORKERS)

    # -- helpers -----------------------------------------------------------------------------

    def _track(self, future: Future[Any], model: FutureModel) -> Future[Any]:
        self.models[id(future)] = model
        self.calls[id(future)] = []
        self.objects.append(future)
        return future

    def _calls_of(self, future: Future[Any]) -> list[Call]:
        with self.lock:
            return list(self.calls[id(future)])

    def _callback(self, future: Future[Any], index: int, raises: bool) -> Callable[..., None]:
        model = self.models[id(future)]
        error = CallbackError(f"callback {index} of {model.label}, raising as the spec asks")
        if raises:
            model.raising[index] = error

        def callback(done: Future[Any]) -> None:
            call = Call(
                index=index,
                own_future=done is future,
                saw_done=done.done(),
                pid=os.getpid(),
                at_once=threading.get_ident() == self.test_thread
                and self.adding == (id(future), index),
            )
            with self.lock:
                self.calls[id(future)].append(call)
            if raises:
                raise error

        return callback

    def _submit_blocked(self, value: int) -> Future[Any]:
        gate = self.controls.gate()
        self.closed_gates.append(gate)
        future = self.executor.submit(tasks.block_on, gate, value)
        label = f"future {len(self.objects)} (blocked on {gate.name})"
        return self._track(future, FutureModel(label, value=value))

    def _add_callbacks(self, future: Future[Any], raising: list[bool]) -> None:
        """``future.add_done_callback`` once per item of *raising*: a callback that raises if
        the item is true."""
        model = self.models[id(future)]
        for raises in raising:
            index = model.added
            model.added += 1
            was_done = future.done()
            callback = self._callback(future, index, raises)
            self.adding = (id(future), index)
            try:
                future.add_done_callback(callback)
            except CallbackError as error:
                raise AssertionError(
                    f"add_done_callback() of {model.label} let the callback's {error!r} escape"
                ) from error
            finally:
                self.adding = None
            if was_done:
                calls = [c for c in self._calls_of(future) if c.index == index]
                assert calls, f"callback {index} added to done {model.label}: not called"
                assert calls[0].at_once, (
                    f"callback {index} added to done {model.label} is called immediately, in "
                    f"the adding thread; calls: {calls}"
                )
                if raises:
                    assert self.log.count(model.raising[index]) == 1, (
                        f"callback {index} of {model.label} raised: logged on "
                        f"{LOGGER_NAME!r} at once; logged: {self.log.exceptions}"
                    )

    # -- rules -------------------------------------------------------------------------------

    @initialize(blocked=st.integers(0, MAX_WORKERS))
    def occupy_workers(self, blocked: int) -> None:
        """Start with *blocked* workers blocked: with all of them, calls queue (and can be
        cancelled) until a gate opens. These futures are not drawn by the rules, which would
        mostly find them running."""
        for _ in range(blocked):
            self._submit_blocked(-1)

    @rule(target=futures, value=st.integers(), raises=st.booleans(), callbacks=CALLBACKS)
    def submit(self, value: int, raises: bool, callbacks: list[bool]) -> Future[Any]:
        """``submit`` a task that returns or raises, then add *callbacks* to its future."""
        n = len(self.objects)
        future: Future[Any]
        if raises:
            error = ValueError(value)
            future = self.executor.submit(tasks.raise_exception, error)
            self._track(future, FutureModel(f"future {n} (raises)", error=error))
        else:
            future = self.executor.submit(tasks.return_value, value)
            self._track(future, FutureModel(f"future {n} (returns)", value=value))
        self._add_callbacks(future, callbacks)
        return future

    @precondition(lambda self: len(self.closed_gates) < MAX_WORKERS)
    @rule(target=futures, value=st.integers(), callbacks=CALLBACKS)
    def submit_blocked(self, value: int, callbacks: list[bool]) -> Future[Any]:
        """``submit`` a task blocked on a new gate, then add *callbacks* to its future."""
        future = self._submit_blocked(value)
        self._add_callbacks(future, callbacks)
        return future

    @precondition(lambda self: bool(self.closed_gates))
    @rule()
    def release_gate(self) -> None:
        self.closed_gates.pop(0).release()

    @rule(future=futures, raising=st.lists(st.booleans(), min_size=1, max_size=3))
    def add_done_callback(self, future: Future[Any], raising: list[bool]) -> None:
        self._add_callbacks(future, raising)

    @rule(future=futures)
    def cancel(self, future: Future[Any]) -> None:
        model = self.models[id(future)]
        try:
            cancelled = future.cancel()
        except CallbackError as error:
            raise AssertionError(
                f"cancel() of {model.label} let a callback's {error!r} escape"
            ) from error
        assert future.cancelled() is cancelled, f"cancel() returned {cancelled}: {future!r}"
        model.cancelled = cancelled

    @precondition(lambda self: not self.closed_gates)
    @rule(future=futures)
    def result(self, future: Future[Any]) -> None:
        """Wait for *future* (every gate is open): callbacks added from now on are called
        at once."""
        model = self.models[id(future)]
        try:
            error = future.exception(timeout=BOUND)
        except self.api.CancelledError:
            assert model.cancelled, f"{model.label} raised CancelledError but was not cancelled"
            return
        except self.api.TimeoutError:
            raise AssertionError(f"{model.label}: {future!r} not done after {BOUND}s") from None
        assert not model.cancelled, f"{model.label} was cancelled, yet finished: {future!r}"
        if model.error is None:
            assert error is None, f"{model.label} raised {error!r}"
            assert future.result(timeout=0) == model.value
        else:
            assert type(error) is type(model.error), f"{model.label} raised {error!r}"

    # -- once quiet ---------------------------------------------------------------------------

    def teardown(self) -> None:
        # A step that failed is the report; checks of the aftermath would only hide it.
        failing = sys.exc_info()[0] is not None
        try:
            self.controls.close()  # opens every gate
            drain_before_shutdown(self.executor, failing=failing)
            # joins the threads that call the callbacks
            shut_down_within_bound(self.executor, "at teardown")
        finally:
            logging.getLogger(LOGGER_NAME).removeHandler(self.log)
        if not failing:
            self.every_future_is_done()
            self.callbacks_are_called_exactly_once()
            self.callbacks_get_their_own_done_future()
            self.callbacks_run_in_the_adding_process()
            self.callbacks_are_called_in_registration_order()
            self.raising_callbacks_are_logged_once()

    def every_future_is_done(self) -> None:
        for future in self.objects:
            model = self.models[id(future)]
            assert future.done(), f"{model.label} is not done after shutdown(wait=True)"
            assert future.cancelled() is model.cancelled, f"{model.label}: {future!r}"

    def callbacks_are_called_exactly_once(self) -> None:
        for future in self.objects:
            model = self.models[id(future)]
            called = sorted(c.index for c in self._calls_of(future))
            assert called == list(range(model.added)), (
                f"{model.label} ({future!r}): of {model.added} callbacks, called {called}"
            )

    def callbacks_get_their_own_done_future(self) -> None:
        for future in self.objects:
            label = self.models[id(future)].label
            for call in self._calls_of(future):
                assert call.own_future, f"callback {call.index} of {label}: another future"
                assert call.saw_done, f"callback {call.index} of {label}: called before done"

    def callbacks_run_in_the_adding_process(self) -> None:
        for future in self.objects:
            for call in self._calls_of(future):
                assert call.pid == self.test_pid, (
                    f"callback {call.index} of {self.models[id(future)].label} ran in process "
                    f"{call.pid}, not in the test's ({self.test_pid})"
                )

    def callbacks_are_called_in_registration_order(self) -> None:
        for future in self.objects:
            calls = self._calls_of(future)
            later = [c.index for c in calls if not c.at_once]
            at_once = [c.index for c in calls if c.at_once]
            label = self.models[id(future)].label
            assert later == sorted(later), f"callbacks of {label} called in the order {later}"
            if at_once:
                assert all(index < min(at_once) for index in later), (
                    f"{label}: callbacks {at_once} were called at once (the future was done), "
                    f"yet callbacks added after them were not: {later}"
                )

    def raising_callbacks_are_logged_once(self) -> None:
        for future in self.objects:
            model = self.models[id(future)]
            for index, error in model.raising.items():
                assert self.log.count(error) == 1, (
                    f"callback {index} of {model.label} raised {error!r}: logged once on "
                    f"{LOGGER_NAME!r}; the logger got {self.log.exceptions}"
                )


def test_done_callbacks(futures_backend: Backend, futures_seed: int) -> None:
    """Callbacks of futures from a real executor are called as the docstring above says."""
    # One failure is enough: shrinking each distinct one on a real pool takes minutes.
    run_spec(
        DoneCallbacks,
        futures_backend,
        seed=futures_seed,
        scale=3,
        report_multiple_bugs=False,
    )


@expects_known_bug("futurist_callback_submit_deadlock")
@pytest.mark.usefixtures("futures_known_bugs")
def test_a_done_callback_may_submit_while_shutdown_waits(futures_backend: Backend) -> None:
    """A done callback calls ``submit()`` while ``shutdown(wait=True)`` waits for the very
    call whose callback it is: the ``submit()`` raises RuntimeError at once (what the stdlib
    does: "calls to submit() made after shutdown will raise RuntimeError"), or is accepted and
    its call runs; it never blocks the callback, so the shutdown returns."""
    outcome = callback_submits_during_shutdown(futures_backend, BOUND)
    if outcome.inline:
        pytest.skip(
            "the executor runs each call inside submit(): no call runs while shutdown waits"
        )
    assert not outcome.stuck, outcome.dump
    assert not outcome.shutdown_error, outcome.shutdown_error
    if isinstance(outcome.submit, BaseException):
        assert isinstance(outcome.submit, RuntimeError), (
            f"a done callback's submit() during shutdown(wait=True) raised {outcome.submit!r}, "
            f"not RuntimeError"
        )
    else:
        assert outcome.ran == "submitted by a callback", (
            f"a done callback's submit() during shutdown(wait=True) was accepted, but its "
            f"call gave {outcome.ran!r}"
        )
