"""Shutdown, as the documentation of ``concurrent.futures.Executor.shutdown`` states it:

    "Signal the executor that it should free any resources that it is using when the
    currently pending futures are done executing. Calls to Executor.submit() and
    Executor.map() made after shutdown will raise RuntimeError.

    If wait is True then this method will not return until all the pending futures are done
    executing and the resources associated with the executor have been freed. If wait is
    False then this method will return immediately and the resources associated with the
    executor will be freed when all pending futures are done executing."

    "You can avoid having to call this method explicitly if you use the with statement,
    which will shutdown the Executor (waiting as if Executor.shutdown() were called with
    wait set to True)."

    And its docstring: "It is safe to call this method several times."

The machine submits calls to a pool of one or two workers; some hold at a gate the machine
opens only while shutting down. It checks what holds under every interleaving:

* ``shutdown(wait=True)`` (and leaving ``with executor:``, also by an exception, which
  propagates) does not return while a call is held (watched for ``EXPIRES`` seconds from
  the call: a pool that does not wait returns within them); once it returns every future is
  done, and every call recorded its finish before the shutdown recorded its return.
* ``shutdown(wait=False)`` returns although calls are held; they still complete once their
  gate opens.
* ``shutdown()`` again, with either ``wait``, returns and raises nothing.
* After shutdown, ``submit`` raises RuntimeError (the stdlib's message: "cannot schedule new
  futures after shutdown"), ``map`` raises it at the call, not at the first ``next()``; so
  does a ``submit`` from a done callback that runs after shutdown (in the worker, or at once).
* A ``submit`` racing a ``shutdown(wait=False)`` in another thread either raises RuntimeError
  (and so does every later one) or was accepted first, and then its call runs to completion.

A ``shutdown(wait=True)`` after a ``shutdown(wait=False)`` is only checked to return: the
stdlib's process pool drops its manager thread in the first call, so the second has nothing
to wait for and returns while calls still run.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from pytest_futures_plugin import tasks
from pytest_futures_plugin.controls import Controls

from ._deviations import (
    conclude,
    declared,
    futures_deviations,  # noqa: F401 (a fixture the tests request)
    observed,
)
from ._fixtures import futures_known_bugs  # noqa: F401 (a fixture the tests request)
from ._harness import (
    BOUND,
    EXPIRES,
    Background,
    Call,
    call_within_bound,
    join_threads_started_since,
    result_within,
    run_spec,
    submit_call,
)
from ._known_bugs import expects_known_bug
from ._tasks import SpecError

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from hypothesis.stateful import MultipleResults

    from pytest_futures_plugin.backends import Backend, FuturesAPI

pytestmark = pytest.mark.futures_area("shutdown")

CANCELS_PENDING = "shutdown/wait_false_cancels_pending"


FIRST_CALLS = st.lists(st.booleans(), max_size=4).flatmap(
    lambda more: st.permutations([True, *more])
)
"""Whether each of the first calls is held: one at least, anywhere among them."""


def _new_event() -> threading.Event:
    # ``threading`` is looked up at each call: under the deterministic scheduler this module's
    # ``threading`` is the controlled one, whereas ``default_factory=threading.Event`` would
    # have bound the real Event at import, on which the spec's thread then blocked for BOUND
    # real seconds while the worker that sets it stayed parked.
    return threading.Event()


@dataclasses.dataclass
class SubmittingCallback:
    """A done callback that calls ``submit`` on the shut-down executor, and what it got."""

    call: Call
    called: threading.Event = dataclasses.field(default_factory=_new_event)
    outcome: list[object] = dataclasses.field(default_factory=list)  # what submit did


class Shutdown(RuleBasedStateMachine):
    """A pool shut down in every documented way, any number of times, with calls held."""

    calls = Bundle("calls")

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.api: FuturesAPI = backend.api
        self.controls = Controls(timeout=BOUND)
        self.hold = self.controls.gate("hold")
        self.recorder = self.controls.recorder("starts, finishes and returns")
        self.by_label: dict[int, Call] = {}
        self.callbacks: list[SubmittingCallback] = []
        self.executor: Executor | None = None
        self.threads_before: set[threading.Thread] = set()
        self.held_open = False  # the hold gate was opened
        self.shut_down = False
        self.shut_down_without_waiting = False  # later shutdown(wait=True) calls may not wait
        self.returns = 0  # shutdowns that returned so far
        # A backend may declare that shutdown(wait=False) cancels the futures not done yet:
        # the labels of those calls, whose futures may then be cancelled.
        self.cancels_pending = declared(backend, CANCELS_PENDING)
        self.may_be_cancelled: set[int] = set()

    @property
    def pool(self) -> Executor:
        assert self.executor is not None
        return self.executor

    def _held(self) -> list[Call]:
        """The calls that cannot finish yet: held, with the gate closed."""
        if self.held_open:
            return []
        return [c for c in self.by_label.values() if c.held]

    def _open(self) -> None:
        self.hold.release()
        self.held_open = True

    def _cancelled_by_shutdown(self, call: Call) -> bool:
        """Whether *call*'s future was cancelled by a ``shutdown(wait=False)`` of a backend
        that declares so (the declared deviation, then seen); any other cancel is not."""
        if call.label in self.may_be_cancelled and call.future.cancelled():
            observed(self.backend, CANCELS_PENDING)
            return True
        return False

    def _check_result(self, call: Call) -> None:
        if not self._cancelled_by_shutdown(call):
            assert result_within(call.future, str(call), self.api) == call.label

    # -- rules -------------------------------------------------------------------------------

    @initialize(target=calls, workers=st.integers(1, 2), held=FIRST_CALLS)
    def make_executor(self, workers: int, held: list[bool]) -> MultipleResults[int]:
        """Make a pool of *workers* and submit a call for each of *held*, one held at least:
        the first shutdown finds calls queued, running and held."""
        self.threads_before = set(threading.enumerate())
        self.executor = self.backend.make(max_workers=workers)
        return multiple(*(self._submit(h) for h in held))

    @precondition(lambda self: not self.shut_down)
    @rule(target=calls, held=st.booleans())
    def submit(self, held: bool) -> int:
        """``submit`` a call that records its start and finish, held at the gate if *held*."""
        return self._submit(held)

    def _submit(self, held: bool) -> int:
        return submit_call(self.pool, self.recorder, self.hold, self.by_label, held)

    @precondition(lambda self: not self._held())
    @rule(label=calls)
    def result(self, label: int) -> None:
        self._check_result(self.by_label[label])

    @precondition(lambda self: not self.held_open)
    @rule()
    def release(self) -> None:
        """Open the gate: every held call may finish (also after ``shutdown(wait=False)``)."""
        self._open()

    @rule(wait=st.booleans())
    def shutdown(self, wait: bool) -> None:
        """``shutdown(wait=True)`` waits for every call; ``shutdown(wait=False)`` returns
        although calls are held (their gate stays closed until ``release``)."""
        if wait:
            self._shutdown_and_wait("shutdown(wait=True)", lambda: self.pool.shutdown(wait=True))
            return
        held = self._held()
        if self.cancels_pending:
            self.may_be_cancelled.update(
                c.label for c in self.by_label.values() if not c.future.done()
            )
        self._finish(Background("shutdown(wait=False)", lambda: self.pool.shutdown(wait=False)))
        for call in held:
            if not self._cancelled_by_shutdown(call):
                assert not call.future.done(), f"{call} is done, yet its gate never opened"
        self.shut_down = True
        self.shut_down_without_waiting = True
        self.returns += 1

    @precondition(lambda self: not self.shut_down)
    @rule(count=st.integers(1, 4))
    def submit_racing_shutdown(self, count: int) -> None:
        """``shutdown(wait=False)`` in a thread of its own while this thread calls ``submit``
        *count* times: each submit raises RuntimeError (the shutdown came first, and then
        every later one raises too), or it came first and its call runs to completion like
        every call accepted before shutdown. (The calls are not added to ``calls``: whether
        they exist depends on the interleaving.)"""
        if self.cancels_pending:
            self.may_be_cancelled.update(
                c.label for c in self.by_label.values() if not c.future.done()
            )
        shutdown = Background(
            "shutdown(wait=False) racing submit()", lambda: self.pool.shutdown(wait=False)
        )
        accepted: list[int] = []
        refused: RuntimeError | None = None
        for _ in range(count):
            try:
                label = self._submit(held=False)
            except RuntimeError as error:
                refused = error
                continue
            assert refused is None, (
                f"submit() accepted call {label} after an earlier submit() raised {refused!r}"
            )
            accepted.append(label)
        self._finish(shutdown)
        self.shut_down = True
        self.shut_down_without_waiting = True
        self.returns += 1
        if self.cancels_pending:
            self.may_be_cancelled.update(accepted)
        if not self._held():  # else they may be queued behind a held call: checked at teardown
            for label in accepted:
                self._check_result(self.by_label[label])

    @rule(raises=st.booleans())
    def with_executor(self, raises: bool) -> None:
        """``with executor:`` around nothing, or around a ``raise``: leaving the block shuts
        down as ``shutdown(wait=True)``, and the exception propagates."""
        pool = self.pool
        error = SpecError("raised in the body of `with executor:`")

        def block() -> None:
            if not raises:
                with pool as entered:
                    assert entered is pool, f"`with executor as e:` gave {entered!r}"
                return
            with pytest.raises(SpecError) as caught, pool:  # leaving does not swallow it
                raise error
            assert caught.value is error, f"leaving `with executor:` raised {caught.value!r}"

        what = f"leaving `with executor:`{' by an exception' if raises else ''}"
        self._shutdown_and_wait(what, block)

    @precondition(lambda self: self.shut_down)
    @rule(label=calls)
    def submit_from_done_callback(self, label: int) -> None:
        """Add a done callback that calls ``submit``: it runs after shutdown, at once if the
        call is done, else in the thread that completes it."""
        pool = self.pool
        callback = SubmittingCallback(self.by_label[label])
        self.callbacks.append(callback)

        def submit_late(future: Future[Any]) -> None:
            try:
                late = pool.submit(tasks.return_value, "late")
            except BaseException as error:
                callback.outcome.append(error)
            else:
                callback.outcome.append(late)
            callback.called.set()

        callback.call.future.add_done_callback(submit_late)

    def _finish(self, shutdown: Background) -> Any:
        """``shutdown.finish()``; an error from a repeated shutdown names the promise it broke."""
        try:
            return shutdown.finish()
        except Exception as error:
            if not self.shut_down:
                raise
            raise AssertionError(
                f"{shutdown.what} of a shut-down executor raised {error!r}: shutdown() is "
                "safe to call several times"
            ) from error

    # -- what a shutdown that waits must do ------------------------------------------------

    def _shutdown_and_wait(self, what: str, shut_down: Callable[[], None]) -> None:
        """Run *shut_down* in a thread; while calls are held it must not return. Then open
        the gate: it returns, with every future done and every finish recorded before."""
        strict = not self.shut_down_without_waiting
        index = self.returns
        held = self._held()

        def run() -> list[Call]:
            shut_down()
            not_done = [c for c in self.by_label.values() if not c.future.done()]
            self.recorder.record(("returned", index))
            return not_done

        shutdown = Background(what, run)
        if strict and held:
            assert shutdown.called.wait(BOUND), f"the thread calling {what} never ran"
            assert not shutdown.returned.wait(EXPIRES), (
                f"{what} returned while {held[0]} was held at its gate: {self.recorder.events}"
            )
        if not self.held_open:
            self._open()
        not_done = self._finish(shutdown)
        self.shut_down = True
        self.returns += 1
        if not strict:
            for call in self.by_label.values():
                self._check_result(call)
            return
        assert not not_done, f"{what} returned before {', '.join(map(str, not_done))} was done"
        events = self.recorder.events
        returned = events.index(("returned", index))
        for call in self.by_label.values():
            finish = ("finish", call.label)
            assert finish in events[:returned], f"{what} returned before {call} finished: {events}"
            assert call.future.result(timeout=0) == call.label, f"{call}: {call.future!r}"

    # -- invariants --------------------------------------------------------------------------

    # The documentation promises the type (RuntimeError), not the stdlib's wording, which
    # executor_impl's own tests check. submit and map are separate properties: one failing
    # does not hide the other.

    @invariant()
    def a_shut_down_executor_refuses_submit(self) -> None:
        """``submit`` after ``shutdown`` raises RuntimeError."""
        if self.shut_down:
            with pytest.raises(RuntimeError):
                self.pool.submit(tasks.return_value, "late")

    @invariant()
    def a_shut_down_executor_refuses_map(self) -> None:
        """``map`` after ``shutdown`` raises RuntimeError, at the call rather than at the first
        ``next()`` (it submits every call before it returns)."""
        if self.shut_down:
            with pytest.raises(RuntimeError):
                self.pool.map(tasks.return_value, ["late", "later"])

    @invariant()
    def every_call_runs_once(self) -> None:
        for order in (self.recorder.start_order, self.recorder.finish_order):
            assert len(order) == len(set(order)), f"a call ran twice: {self.recorder.events}"
            assert set(order) <= set(self.by_label), f"unknown calls: {self.recorder.events}"

    @invariant()
    def done_futures_hold_their_call_result(self) -> None:
        for call in self.by_label.values():
            if call.future.done() and not self._cancelled_by_shutdown(call):
                assert not call.future.cancelled(), f"{call} was cancelled: {call.future!r}"
                assert call.future.result(timeout=0) == call.label, f"{call}: {call.future!r}"

    @invariant()
    def submit_from_a_late_callback_raises_runtime_error(self) -> None:
        for callback in self.callbacks:
            if not callback.called.is_set():
                continue
            (outcome,) = callback.outcome
            assert isinstance(outcome, RuntimeError), (
                f"submit() in a done callback of {callback.call}, after shutdown, gave {outcome!r}"
            )

    # -- quiet -------------------------------------------------------------------------------

    def teardown(self) -> None:
        # A step that failed is the report; checks of the aftermath would only hide it.
        failing = sys.exc_info()[0] is not None
        running: list[str] = []
        try:
            if not failing:
                self._every_call_completes()
        finally:
            self.controls.close()
            if self.executor is not None:
                try:
                    call_within_bound("shutdown() at teardown", self.executor.shutdown)
                finally:
                    running = join_threads_started_since(self.threads_before)
        assert failing or not running, (
            f"threads {running} still run {BOUND}s after shutdown, every call ended"
        )

    def _every_call_completes(self) -> None:
        """Once the gate is open every call completes, however the pool was shut down, and
        every callback added after shutdown was called."""
        self._open()
        for call in self.by_label.values():
            self._check_result(call)
        for callback in self.callbacks:
            assert callback.called.wait(BOUND), f"the done callback of {callback.call}"
        self.submit_from_a_late_callback_raises_runtime_error()


@expects_known_bug("futurist_shutdown_nowait_pending", "dask_map_after_shutdown")
@pytest.mark.usefixtures("futures_known_bugs", "futures_deviations")
def test_shutdown(futures_backend: Backend, futures_seed: int) -> None:
    """shutdown(), with and without waiting, and `with executor:`, as the docstring says."""
    run_spec(Shutdown, futures_backend, seed=futures_seed, scale=4)
    conclude(futures_backend)
