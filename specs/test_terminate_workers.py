"""Ending a process pool's workers, as the documentation of
``concurrent.futures.ProcessPoolExecutor`` (Python 3.14) states it:

    "terminate_workers(): Attempt to terminate all living worker processes immediately by
    calling Process.terminate() on each of them. Internally, it will also call
    Executor.shutdown() to ensure that all other resources associated with the executor are
    freed. After calling this method the caller should no longer submit tasks to the
    executor."

    "kill_workers(): Attempt to kill all living worker processes immediately by calling
    Process.kill() on each of them. [...]"

And the methods' docstrings: "After terminating workers, the pool will be in a broken state
and no longer usable (for instance, new tasks should not be submitted)."

Applied to any executor that has the methods (a capability probe: ``hasattr`` on an
instance, never its class or the Python version); every other one is a SKIP. The machine
submits calls to a pool of one or two workers, some held at a gate that stays closed until
the example ends, and checks what holds under every interleaving:

* the method returns, although calls are held (it never waits for a call);
* every future resolves (within ``BOUND`` seconds): a held call is cancelled or fails with
  ``BrokenProcessPool``, never returns; any other call returns its value, is cancelled, or
  fails with ``BrokenProcessPool``; a result seen before keeps its value;
* the pool refuses new calls: ``submit`` and ``map`` raise ``RuntimeError`` (the stdlib's
  ``BrokenProcessPool`` is one), calling it again raises nothing, ``shutdown()`` returns;
* no process is left: once the pool is shut down, still with the gate closed, every child
  process and thread the example started has ended.

Never after ``shutdown()``: the stdlib's pool forgets its workers there, so that its
``terminate_workers()`` then does nothing at all.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

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
from pytest_futures_plugin.guards import LeakCheck

from ._harness import (
    BOUND,
    NO_SHRINKING,
    Call,
    call_within_bound,
    run_spec,
    shut_down_within_bound,
    submit_call,
)

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from hypothesis.stateful import MultipleResults

    from pytest_futures_plugin.backends import Backend, FuturesAPI

pytestmark = pytest.mark.futures_area("terminate-workers")

METHODS = ("terminate_workers", "kill_workers")


def offered(backend: Backend) -> tuple[str, ...]:
    """Which of :data:`METHODS` an executor of *backend* has (made and shut down for it)."""
    executor = backend.make(max_workers=1)
    try:
        return tuple(name for name in METHODS if callable(getattr(executor, name, None)))
    finally:
        executor.shutdown(wait=True)


class TerminateWorkers(RuleBasedStateMachine):
    """A pool whose workers are ended while calls run, queue and wait at a closed gate."""

    calls = Bundle("calls")

    def __init__(self, backend: Backend, methods: tuple[str, ...]) -> None:
        super().__init__()
        self.backend = backend
        self.methods = methods
        self.api: FuturesAPI = backend.api
        self.controls = Controls(timeout=BOUND)
        self.hold = self.controls.gate("hold")
        self.recorder = self.controls.recorder("starts and finishes")
        self.by_label: dict[int, Call] = {}
        self.returned: dict[int, object] = {}  # what result() gave before the workers ended
        self.executor: Executor | None = None
        self.leaks = LeakCheck(grace=BOUND)
        self.stopped: list[str] = []  # the methods called, in order

    @property
    def pool(self) -> Executor:
        assert self.executor is not None
        return self.executor

    def _submit(self, held: bool) -> int:
        return submit_call(self.pool, self.recorder, self.hold, self.by_label, held)

    # -- rules -------------------------------------------------------------------------------

    @initialize(
        target=calls,
        workers=st.integers(1, 2),
        held=st.lists(st.booleans(), min_size=1, max_size=5),
    )
    def make_executor(self, workers: int, held: list[bool]) -> MultipleResults[int]:
        """Make a pool of *workers* and submit a call for each of *held*."""
        self.leaks.start()
        self.executor = self.backend.make(max_workers=workers)
        return multiple(*(self._submit(h) for h in held))

    @precondition(lambda self: not self.stopped)
    @rule(target=calls, held=st.booleans())
    def submit(self, held: bool) -> int:
        """``submit`` a call that records its start and finish, held at the gate if *held*."""
        return self._submit(held)

    @precondition(lambda self: not self.stopped and not any(c.held for c in self.by_label.values()))
    @rule(label=calls)
    def result(self, label: int) -> None:
        """``result()`` of a call while no call is held (every call can finish)."""
        call = self.by_label[label]
        try:
            value = call.future.result(timeout=BOUND)
        except self.api.TimeoutError:
            raise AssertionError(f"{call}: {call.future!r} not done after {BOUND}s") from None
        assert value == label, f"{call} returned {value!r}"
        self.returned[label] = value

    @precondition(lambda self: "terminate_workers" in self.methods)
    @rule()
    def terminate_workers(self) -> None:
        """``terminate_workers()``: returns at once, then every future resolves."""
        self._stop("terminate_workers")

    @precondition(lambda self: "kill_workers" in self.methods)
    @rule()
    def kill_workers(self) -> None:
        """``kill_workers()``: returns at once, then every future resolves."""
        self._stop("kill_workers")

    @precondition(lambda self: bool(self.stopped))
    @rule(wait=st.booleans())
    def shutdown(self, wait: bool) -> None:
        """``shutdown()`` of a pool whose workers were ended returns and raises nothing."""
        pool = self.pool
        call_within_bound(
            f"shutdown(wait={wait}) after {self.stopped[-1]}()", lambda: pool.shutdown(wait=wait)
        )

    def _stop(self, method: str) -> None:
        call_within_bound(f"{method}() while calls were held", getattr(self.pool, method))
        self.stopped.append(method)
        self.every_call_resolves()

    # -- what ending the workers must do ---------------------------------------------------

    def every_call_resolves(self) -> None:
        """Every future is done within ``BOUND``: held ones cancelled or failed with
        BrokenProcessPool, the others that way or with their value."""
        method = self.stopped[0]
        futures = [call.future for call in self.by_label.values()]
        not_done = self.api.wait(futures, timeout=BOUND).not_done
        late = [str(c) for c in self.by_label.values() if c.future in not_done]
        assert not late, f"{', '.join(late)} not done {BOUND}s after {method}()"
        for call in self.by_label.values():
            future = call.future
            if future.cancelled():
                assert call.label not in self.returned, f"{call} returned, then was cancelled"
                continue
            error = future.exception(timeout=0)
            if error is None:
                assert not call.held, f"{call} returned although its gate never opened"
                assert future.result(timeout=0) == call.label, f"{call}: {future!r}"
                continue
            assert call.label not in self.returned, f"{call} returned, then failed: {error!r}"
            assert isinstance(error, self.api.BrokenProcessPool), (
                f"after {method}(), {call} failed with {error!r}, not BrokenProcessPool"
            )

    @invariant()
    def a_pool_whose_workers_ended_refuses_new_calls(self) -> None:
        """``submit`` and ``map`` raise RuntimeError (BrokenProcessPool is one)."""
        if not self.stopped:
            return
        for what, attempt in (
            ("submit()", lambda: self.pool.submit(tasks.return_value, "late")),
            ("map()", lambda: self.pool.map(tasks.return_value, ["late", "later"])),
        ):
            try:
                accepted = attempt()
            except RuntimeError:
                continue
            raise AssertionError(f"{what} after {self.stopped[0]}() was accepted: {accepted!r}")

    @invariant()
    def every_call_runs_at_most_once(self) -> None:
        for order in (self.recorder.start_order, self.recorder.finish_order):
            assert len(order) == len(set(order)), f"a call ran twice: {self.recorder.events}"

    # -- no process left -------------------------------------------------------------------

    def teardown(self) -> None:
        # A step that failed is the report; checks of the aftermath would only hide it.
        failing = sys.exc_info()[0] is not None
        try:
            if self.executor is not None and not failing:
                if not self.stopped:  # every example ends its workers
                    self._stop(self.methods[0])
                # Still with the gate closed: a worker that was not ended would hold it.
                shut_down_within_bound(self.pool, f"after {self.stopped[0]}()")
                left = self.leaks.check()
                assert not left, f"after {self.stopped[0]}() and shutdown(): {'; '.join(left)}"
        finally:
            self.controls.close()  # every held call returns (or fails): nothing waits
            if self.executor is not None and failing:
                shut_down_within_bound(self.pool, "at the end of a failing example")


def test_terminate_workers(futures_backend: Backend, futures_seed: int) -> None:
    """terminate_workers()/kill_workers() while calls run: every future resolves, the pool
    refuses new work, no process is left."""
    methods = offered(futures_backend)
    if not methods:
        pytest.skip("capability absent: no terminate_workers() or kill_workers()")
    run_spec(TerminateWorkers, futures_backend, methods, seed=futures_seed, phases=NO_SHRINKING)
