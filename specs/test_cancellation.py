"""Cancellation, as the documentation of ``concurrent.futures`` states it:

    Future.cancel(): "Attempt to cancel the call. If the call is currently being executed or
    finished running and cannot be cancelled then the method will return False, otherwise
    the call will be cancelled and the method will return True."

    Future.result(): "If the future is cancelled before completing then CancelledError will
    be raised."

    Future.add_done_callback(): "fn will be called, with the future as its only argument,
    when the future is cancelled or finishes running."

    Executor.shutdown(): "If cancel_futures is True, this method will cancel all pending
    futures that the executor has not started running. Any futures that are completed or
    running won't be cancelled, regardless of the value of cancel_futures. If both
    cancel_futures and wait are True, all futures that the executor has started running
    will be completed prior to this method returning. The remaining futures are cancelled."

The machine drives a pool of one worker. Every call records its start, then holds the worker
at a gate of its own until the machine opens it; after every step the machine waits until
the pool is quiet: one call holds the worker (its start is recorded, so it is running) or
no call is left to start. In that state the queued calls have certainly not started, and:

* ``cancel()`` of the running call, or of a finished one, returns False; of a cancelled one
  True again.
* ``cancel()`` of a queued call returns True on a thread pool. A process pool hands a few
  queued calls to its workers' queues ahead of time and marks them running, so there
  ``cancel()`` may return False; then the call runs to completion.
* One step races on purpose (``release_racing_cancel``): it opens the running call's gate
  and cancels the call the worker takes next before the pool is quiet again. ``cancel()``
  returning True means that call never starts; False, that it had started and runs to
  completion. (Under the deterministic scheduler a preemption lands between the worker's
  check of the state and its mark of RUNNING.)
* A cancelled call never starts; its future is cancelled and done, ``result()`` raises
  ``CancelledError``, and each of its done callbacks has been called once.
* ``shutdown(cancel_futures=True)`` cancels exactly the calls that have not started: every
  future ends cancelled (its call never started) or finished (its call ran); the running
  call finishes. A thread pool has cancelled every queued call by the time
  ``shutdown(wait=False, cancel_futures=True)`` returns; a process pool may cancel later,
  in a thread of its own, and not the calls it already marked running.

The stdlib's pools cancel the calls of ``shutdown(cancel_futures=True)`` without telling the
waiters of ``wait()``/``as_completed()`` (CPython gh-109934 for the thread pool, gh-136655
for the process pool): :func:`test_shutdown_cancel_futures_wakes_waiters` is a strict xfail
where the running interpreter's stdlib shows that bug, so a fix upstream shows up as XPASS.
The machine itself never asks ``wait()`` about a cancelled future for the same reason.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
)

from pytest_futures_plugin import tasks
from pytest_futures_plugin.controls import Controls, ControlTimeout

from . import _tasks
from ._fixtures import futures_known_bugs  # noqa: F401 (a fixture the tests request)
from ._harness import (
    BOUND,
    Background,
    call_within_bound,
    join_threads_started_since,
    result_within,
    run_spec,
    shut_down_within_bound,
)
from ._known_bugs import expects_known_bug

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from hypothesis.stateful import MultipleResults

    from pytest_futures_plugin.backends import Backend, FuturesAPI
    from pytest_futures_plugin.controls import Gate

pytestmark = pytest.mark.futures_area("cancellation")

QUEUED, REFUSED, RUNNING, FINISHED, CANCELLED = (
    "queued",  # not started, not cancelled
    "refused",  # not started, but cancel() returned False (a process pool's early RUNNING)
    "running",  # started: holds the only worker at its gate
    "finished",
    "cancelled",
)
MAX_CALLS = 12
"""Calls per example: enough to queue some past what a process pool hands a worker early."""


@dataclasses.dataclass
class Call:
    """What the machine knows of one submitted call."""

    label: int
    future: Future[Any]
    gate: Gate
    state: str = QUEUED
    callbacks: list[threading.Event] = dataclasses.field(default_factory=list)
    called: list[int] = dataclasses.field(default_factory=list)  # indices, as callbacks ran

    def __str__(self) -> str:
        return f"call {self.label} ({self.state})"


class Cancellation(RuleBasedStateMachine):
    """One-worker pool: submit held calls, cancel them, open their gates, shut down."""

    calls = Bundle("calls")

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.api: FuturesAPI = backend.api
        self.processes = backend.capabilities.processes
        self.can_cancel_futures = backend.capabilities.cancel_futures
        self.controls = Controls(timeout=BOUND)
        self.arrivals = self.controls.gate("arrivals")
        self.arrivals.release()  # never blocks: it counts the calls that started
        self.recorder = self.controls.recorder("starts and finishes")
        self.by_label: dict[int, Call] = {}
        self.arrived = 0
        self.shut_down = False
        self.threads_before = set(threading.enumerate())
        self.executor: Executor = backend.make(max_workers=1)

    # -- helpers -----------------------------------------------------------------------------

    def _running(self) -> Call | None:
        return next((c for c in self.by_label.values() if c.state == RUNNING), None)

    def _settle(self) -> None:
        """Wait until the pool is quiet: a call holds the worker, or none is left to start.

        With nothing running, one call that may still start (queued or refused) will: wait
        for it to pass ``arrivals`` and learn from the recorder which one it is.
        """
        if self._running() is not None:
            return
        waiting = [c for c in self.by_label.values() if c.state in (QUEUED, REFUSED)]
        if not waiting:
            return
        try:
            self.arrivals.wait_inside(self.arrived + 1, timeout=BOUND)
        except ControlTimeout:
            raise AssertionError(
                f"the worker is free, yet none of {', '.join(map(str, waiting))} started "
                f"within {BOUND}s"
            ) from None
        self.arrived += 1
        known = {c.label for c in self.by_label.values() if c.state in (RUNNING, FINISHED)}
        new = [label for label in self.recorder.start_order if label not in known]
        assert len(new) == 1, f"one worker runs one call at a time; started: {new}"
        call = self.by_label[new[0]]
        assert call.state in (QUEUED, REFUSED), f"{call} started"
        call.state = RUNNING

    def _callback(self, call: Call) -> int:
        index = len(call.callbacks)
        event = threading.Event()
        call.callbacks.append(event)

        def callback(future: Future[Any]) -> None:
            call.called.append(index)
            event.set()

        call.future.add_done_callback(callback)
        return index

    def _callbacks_called_once(self, call: Call, when: str) -> None:
        for index, event in enumerate(call.callbacks):
            assert event.wait(BOUND), f"callback {index} of {call} not called {when}"
        assert sorted(call.called) == list(range(len(call.callbacks))), (
            f"callbacks of {call} called {call.called}, {when}; {len(call.callbacks)} added"
        )

    def _outcome(self, call: Call) -> str:
        """FINISHED or CANCELLED: how *call*'s future ended (waiting up to BOUND seconds)."""
        try:
            value = result_within(call.future, str(call), self.api)
        except self.api.CancelledError:
            return CANCELLED
        assert value == call.label, f"{call} returned {value!r}"
        return FINISHED

    # -- rules -------------------------------------------------------------------------------

    @precondition(lambda self: not self.shut_down and len(self.by_label) < MAX_CALLS)
    @rule(target=calls, count=st.integers(1, 4))
    def submit(self, count: int) -> MultipleResults[int]:
        """``submit`` *count* calls, each held at a gate of its own once it starts."""
        labels = []
        for _ in range(count):
            label = len(self.by_label)
            gate = self.controls.gate(f"call {label}")
            future = self.executor.submit(
                _tasks.arrive_and_hold, label, self.arrivals, gate, self.recorder
            )
            self.by_label[label] = Call(label, future, gate)
            labels.append(label)
        self._settle()
        return multiple(*labels)

    @rule(label=calls)
    def cancel(self, label: int) -> None:
        call = self.by_label[label]
        was = call.state
        cancelled = call.future.cancel()
        if was == QUEUED:
            if not self.processes:
                running = self._running()
                assert cancelled, f"cancel() of {call}, queued behind {running}, returned False"
            call.state = CANCELLED if cancelled else REFUSED
        else:
            expected = was == CANCELLED
            assert cancelled is expected, f"cancel() of {call} returned {cancelled}"
        if cancelled:
            self._callbacks_called_once(call, "by cancel()")

    @rule(label=calls)
    def add_done_callback(self, label: int) -> None:
        call = self.by_label[label]
        index = self._callback(call)
        if call.state in (CANCELLED, FINISHED):  # "called immediately"
            assert index in call.called, (
                f"callback {index} added to done {call} is called before add_done_callback returns"
            )

    def _may_release(self) -> bool:
        """Whether ``release`` is enabled: while a call holds the worker, on a thread pool.

        There every cancel() of a queued call succeeds, so whether a call runs follows from
        the steps alone. On a process pool it depends on which cancel() calls the pool refused,
        and a rule that the interleaving enables makes Hypothesis fail with
        FlakyStrategyDefinition: there ``release`` is enabled until shutdown, and does nothing
        while no call runs.
        """
        if self.processes:
            return bool(self.by_label) and not self.shut_down
        return self._running() is not None

    @precondition(lambda self: self._may_release())
    @rule()
    def release(self) -> None:
        """Open the running call's gate: it finishes, and the next call takes the worker."""
        call = self._running()
        if call is None:  # a process pool: _settle() found no call left to start
            return
        call.gate.release()
        value = result_within(call.future, str(call), self.api)
        assert value == call.label, f"{call} returned {value!r}"
        call.state = FINISHED
        self._settle()

    def _queued(self) -> list[Call]:
        return [c for c in self.by_label.values() if c.state == QUEUED]

    def _may_race(self) -> bool:
        """Whether ``release_racing_cancel`` is enabled: on a thread pool, while a call holds
        the worker and two calls at least are queued behind it."""
        return not self.processes and self._running() is not None and len(self._queued()) >= 2

    @precondition(lambda self: self._may_race())
    @rule()
    def release_racing_cancel(self) -> None:
        """Open the running call's gate, wait for its result, then ``cancel()`` the queued
        call the worker takes next, without waiting for the worker to take it: the cancel()
        races with the worker's start of that call. True: the call never starts; False: it
        had started, and runs to completion (``_settle`` sees it start).

        Two calls queued at least (``_may_race``), so that a call holds the worker after it
        whichever won: the rules enabled next do not depend on the interleaving.
        """
        call = self._running()
        assert call is not None
        following = min(self._queued(), key=lambda c: c.label)
        call.gate.release()
        value = result_within(call.future, str(call), self.api)
        assert value == call.label, f"{call} returned {value!r}"
        call.state = FINISHED
        if following.future.cancel():
            following.state = CANCELLED
            self._callbacks_called_once(following, "by cancel()")
        else:
            following.state = REFUSED  # marked running: it passes ``arrivals`` next
        self._settle()

    @precondition(lambda self: self.can_cancel_futures and self.by_label and not self.shut_down)
    @rule(wait=st.booleans())
    def shutdown_cancel_futures(self, wait: bool) -> None:
        """``shutdown(wait=..., cancel_futures=True)`` while a call holds the worker.

        With ``wait=False`` it returns at once; on a thread pool every queued call is then
        cancelled. With ``wait=True`` it cannot return before the gates open, so it runs in a
        thread of its own and the machine opens them meanwhile: a queued call may start
        before the executor cancels it, and then it finishes.
        """
        queued = [c for c in self.by_label.values() if c.state == QUEUED]
        self.shut_down = True
        if wait:
            shutdown = Background(
                "shutdown(wait=True, cancel_futures=True), every gate open,",
                lambda: self.executor.shutdown(wait=True, cancel_futures=True),
            )
            self.controls.release_all()
            shutdown.finish()
        else:
            call_within_bound(
                "shutdown(wait=False, cancel_futures=True)",
                lambda: self.executor.shutdown(wait=False, cancel_futures=True),
            )
            if not self.processes:
                for call in queued:
                    assert call.future.cancelled(), (
                        f"shutdown(cancel_futures=True) left {call} to run: {call.future!r}"
                    )
            self.controls.release_all()
            call_within_bound("shutdown() after shutdown(wait=False)", self.executor.shutdown)
        for call in self.by_label.values():
            outcome = self._outcome(call)
            if call.state == QUEUED:
                call.state = outcome
            else:
                expected = CANCELLED if call.state == CANCELLED else FINISHED
                assert outcome == expected, (
                    f"shutdown(cancel_futures=True) left {call} {outcome}: {call.future!r}"
                )
                call.state = outcome
            if outcome == CANCELLED:
                self._callbacks_called_once(call, "after shutdown(cancel_futures=True)")

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def cancelled_calls_never_start(self) -> None:
        started = set(self.recorder.start_order)
        for call in self.by_label.values():
            if call.state == CANCELLED:
                assert call.label not in started, f"{call} started: {self.recorder.events}"

    @invariant()
    def cancelled_futures_are_done_and_raise_cancelled_error(self) -> None:
        for call in self.by_label.values():
            if call.state != CANCELLED:
                continue
            future = call.future
            assert future.cancelled(), f"cancelled() of {call}: {future!r}"
            assert future.done(), f"done() of {call}: {future!r}"
            with pytest.raises(self.api.CancelledError):
                future.result(timeout=0)

    @invariant()
    def queries_agree_with_the_state(self) -> None:
        for call in self.by_label.values():
            future = call.future
            if call.state == RUNNING:
                assert future.running(), f"running() of {call}, held at its gate: {future!r}"
            if call.state in (QUEUED, REFUSED, RUNNING):
                assert not future.done(), f"done() of {call}: {future!r}"
                assert not future.cancelled(), f"cancelled() of {call}: {future!r}"
            if call.state == QUEUED and not self.processes:
                assert not future.running(), f"running() of {call}: {future!r}"
            if call.state == FINISHED:
                assert future.done(), f"done() of {call}: {future!r}"
                assert not future.cancelled(), f"cancelled() of {call}: {future!r}"
                assert future.result(timeout=0) == call.label, f"{call}: {future!r}"

    @invariant()
    def callbacks_are_called_at_most_once(self) -> None:
        for call in self.by_label.values():
            assert len(set(call.called)) == len(call.called), f"{call} called {call.called}"

    # -- quiet -------------------------------------------------------------------------------

    def teardown(self) -> None:
        # A step that failed is the report; checks of the aftermath would only hide it.
        failing = sys.exc_info()[0] is not None
        running: list[str] = []
        try:
            if not failing:
                self._every_call_ends_as_its_cancel_said()
        finally:
            self.controls.close()
            try:
                call_within_bound("shutdown(wait=True) at teardown", self.executor.shutdown)
            finally:
                running = join_threads_started_since(self.threads_before)
        assert failing or not running, (
            f"threads {running} still run {BOUND}s after shutdown, every call ended"
        )

    def _every_call_ends_as_its_cancel_said(self) -> None:
        """Once every gate is open: a call whose cancel() returned True stays cancelled and
        never starts; every other call (refused ones too) runs to completion; every done
        callback is called exactly once."""
        self.controls.release_all()
        for call in self.by_label.values():
            outcome = self._outcome(call)
            expected = CANCELLED if call.state == CANCELLED else FINISHED
            assert outcome == expected, f"{call} ended {outcome}: {call.future!r}"
        call_within_bound("shutdown(wait=True)", self.executor.shutdown)
        self.cancelled_calls_never_start()
        started = set(self.recorder.start_order)
        for call in self.by_label.values():
            if call.state != CANCELLED:
                assert call.label in started, f"{call} finished without starting"
            self._callbacks_called_once(call, "once every call ended")


@expects_known_bug(
    "futurist_shutdown_cancel_futures",
    "dask_running_never_true",
    "dask_cancel_running_returns_true",
    "executorlib_cancel_kills_scheduler",
)
@pytest.mark.usefixtures("futures_known_bugs")
def test_cancellation(futures_backend: Backend, futures_seed: int) -> None:
    """cancel() and shutdown(cancel_futures=True) on a real pool, as the docstring says."""
    run_spec(Cancellation, futures_backend, seed=futures_seed, scale=4)


# ------------------------------------------------------------------------------------------
# A known stdlib bug: waiters are not told of the futures shutdown(cancel_futures=True) cancels

QUEUED_BEHIND = 8
"""Calls queued behind a held one: more than a process pool hands its only worker ahead of
time (the stdlib up to 3, executor_impl up to 4), so shutdown cancels the last ones."""


def _wake_stdlib_waiters(futures: list[Future[Any]]) -> None:
    """Notify the waiters the stdlib left behind, as its worker would have, so the waiting
    threads end now (a future already notified raises RuntimeError, logged critical)."""
    logging.disable(logging.CRITICAL)
    try:
        for future in futures:
            try:
                future.set_running_or_notify_cancel()
            except RuntimeError:
                pass
    finally:
        logging.disable(logging.NOTSET)


@expects_known_bug("gh-109934", "gh-136655", "futurist_shutdown_cancel_futures")
@pytest.mark.usefixtures("futures_known_bugs")
def test_shutdown_cancel_futures_wakes_waiters(futures_backend: Backend) -> None:
    """A thread blocked in ``wait()`` or ``as_completed()`` on queued futures returns once
    ``shutdown(cancel_futures=True)`` cancelled them and the rest finished; and a later
    ``wait(timeout=0)`` / ``as_completed(timeout=0)`` counts the cancelled ones as done."""
    if not futures_backend.capabilities.cancel_futures:
        pytest.skip("shutdown() takes no cancel_futures")
    api = futures_backend.api
    with Controls(timeout=BOUND) as controls:
        gate = controls.gate("running")
        before = set(threading.enumerate())
        pool = futures_backend.make(max_workers=1)
        try:
            pool.submit(tasks.block_on, gate)
            gate.wait_inside(1)
            queued = [pool.submit(tasks.return_value, i) for i in range(QUEUED_BEHIND)]
            waiting = Background(
                "wait() on the queued futures", lambda: api.wait(queued, timeout=BOUND)
            )
            completing = Background(
                "as_completed() of the queued futures", lambda: _as_completed(api, queued)
            )
            pool.shutdown(wait=False, cancel_futures=True)
            if futures_backend.capabilities.processes:
                try:  # a process pool may cancel in a thread of its own: wait for the last one
                    queued[-1].result(timeout=BOUND)
                except api.CancelledError:
                    pass
            assert queued[-1].cancelled(), f"shutdown(cancel_futures=True) ran {queued[-1]!r}"
            gate.release()
            cancelled = [f for f in queued if f.cancelled()]
            for future in queued:
                if not future.cancelled():
                    result_within(future, "a queued call that shutdown did not cancel", api)
            try:
                not_done = api.wait(cancelled, timeout=0).not_done
                assert not not_done, (
                    f"wait(timeout=0) counts cancelled futures not done: {not_done}"
                )
                assert set(_as_completed(api, cancelled, timeout=0)) == set(cancelled)
                assert not waiting.finish().not_done, "wait() returned with futures not done"
                assert set(completing.finish()) == set(queued), "as_completed() missed futures"
            finally:
                if waiting.thread.is_alive() or completing.thread.is_alive():
                    _wake_stdlib_waiters(cancelled)
                    waiting.thread.join(BOUND)
                    completing.thread.join(BOUND)
        finally:
            gate.release()
            shut_down_within_bound(pool)
            join_threads_started_since(before)


def _as_completed(
    api: FuturesAPI, futures: list[Future[Any]], timeout: float = BOUND
) -> list[Future[Any]]:
    """``list(api.as_completed(futures, timeout))``; a timeout fails naming what is left."""
    yielded: list[Future[Any]] = []
    try:
        yielded.extend(api.as_completed(futures, timeout=timeout))  # keeps what came first
    except api.TimeoutError:
        left = [f for f in futures if f not in yielded]
        raise AssertionError(f"as_completed(timeout={timeout}) never yielded {left}") from None
    return yielded
