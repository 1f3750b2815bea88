"""``wait()`` and ``as_completed()`` on the futures of real executors, as the documentation
of ``concurrent.futures`` states them (quoted in ``test_waiting.py``, with the machine on
bare futures).

``PooledFutures`` checks them on futures of two real executors, mixed, with calls that return, raise, or
are held at their executor's gate. It waits only for what must come: while an executor holds
a call its other calls may be queued behind it, so only the calls of an executor with no
closed gate (and the futures already seen done) are waited for until they complete:
``ALL_COMPLETED`` returns with every one done, ``FIRST_COMPLETED`` with one done at least,
``FIRST_EXCEPTION`` with one that raised or every one done, and ``as_completed`` yields each
once. Any futures, held ones too, are waited for with a timeout of 0 or ``EXPIRES``. Whatever
the interleaving: ``done`` and ``not_done`` split the set of ``fs``; every future in ``done``
is done; a held future is never in ``done``; a future seen done before the call is never in
``not_done``.

Timeouts and early returns are shown by single cases (``test_...`` below), each with a call
held until the check, so that a wrong implementation fails once, after the gate gives up,
instead of at every step of a machine.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from pytest_futures_plugin import tasks
from pytest_futures_plugin.controls import Controls

from . import _tasks
from ._harness import (
    BOUND,
    EXPIRES,
    NO_SHRINKING,
    result_within,
    run_spec,
    shut_down_within_bound,
)
from .test_waiting import RETURN_WHEN, check_split

if TYPE_CHECKING:
    from collections.abc import Iterable
    from concurrent.futures import Executor, Future

    from pytest_futures_plugin.backends import Backend
    from pytest_futures_plugin.controls import Gate

pytestmark = pytest.mark.futures_area("waiting")

MAX_WORKERS = 2


# ------------------------------------------------------------------------------------------
# Futures of two real executors


@dataclasses.dataclass
class PooledModel:
    """What one submitted call does, and where."""

    label: str
    executor: int
    value: int
    error: _tasks.SpecError | None = None
    gate: Gate | None = None  # the call waits for it


class PooledFutures(RuleBasedStateMachine):
    """Calls of two executors of the backend; the futures given to wait() and as_completed()
    mix them."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.api = backend.api
        self.controls = Controls(timeout=BOUND)
        self.executors = [backend.make(max_workers=MAX_WORKERS) for _ in range(2)]
        self.gates: list[Gate | None] = [None, None]  # each executor's closed gate, if any
        self.futures: list[Future[Any]] = []
        self.models: list[PooledModel] = []
        self.index: dict[int, int] = {}  # id(future) -> its index
        self.seen_done: set[int] = set()

    # -- helpers -----------------------------------------------------------------------------

    def _held(self, i: int) -> bool:
        model = self.models[i]
        return model.gate is not None and model.gate is self.gates[model.executor]

    def _completing(self) -> list[int]:
        """The futures that complete without the machine's help: seen done, or of an executor
        that holds no call (a held call may delay the others of its executor)."""
        return [
            i
            for i, m in enumerate(self.models)
            if i in self.seen_done or self.gates[m.executor] is None
        ]

    def _labels(self, futures: Iterable[Future[Any]]) -> list[str]:
        return sorted(self.models[self.index[id(f)]].label for f in futures)

    def _track(self, future: Future[Any], model: PooledModel) -> None:
        self.index[id(future)] = len(self.futures)
        self.futures.append(future)
        self.models.append(model)

    def _seen(self, future: Future[Any]) -> None:
        """*future* was reported done: check its outcome and remember it."""
        i = self.index[id(future)]
        model = self.models[i]
        assert not self._held(i), f"{model.label} is done, yet its gate is closed"
        error = future.exception(timeout=0)
        if model.error is None:
            assert error is None, f"{model.label} raised {error!r}"
            assert future.result(timeout=0) == model.value, f"{model.label}: {future!r}"
        else:
            assert type(error) is type(model.error), f"{model.label} raised {error!r}"
            assert error is not None, f"{model.label} returned"
            assert error.args == model.error.args, f"{model.label} raised {error!r}"
        self.seen_done.add(i)

    def _draw(
        self, data: st.DataObject, what: str, among: Iterable[int] | None = None
    ) -> list[Future[Any]]:
        """Some futures (duplicates too), only those *among* if given.

        The draw itself is of any future: which ones are *among* the completing may depend
        on the interleaving (what was seen done), and a draw shaped by the interleaving makes
        Hypothesis fail with FlakyStrategyDefinition; the filter afterwards does not.
        """
        if not self.futures:
            return []
        everyone = range(len(self.futures))
        indices = data.draw(st.lists(st.sampled_from(everyone), max_size=6), label=what)
        kept = set(everyone if among is None else among)
        return [self.futures[i] for i in indices if i in kept]

    # -- calls ---------------------------------------------------------------------------------

    @rule(executor=st.integers(0, 1), value=st.integers(0, 9), raises=st.booleans())
    def submit(self, executor: int, value: int, raises: bool) -> None:
        label = f"call {len(self.futures)} on executor {executor}"
        future: Future[Any]
        if raises:
            error = _tasks.SpecError(label)
            future = self.executors[executor].submit(tasks.raise_exception, error)
            self._track(future, PooledModel(f"{label} (raises)", executor, value, error))
        else:
            future = self.executors[executor].submit(tasks.return_value, value)
            self._track(future, PooledModel(f"{label} (returns)", executor, value))

    @rule(executor=st.integers(0, 1), value=st.integers(0, 9))
    def submit_held(self, executor: int, value: int) -> None:
        gate = self.gates[executor]
        if gate is None:
            gate = self.gates[executor] = self.controls.gate(f"gate of executor {executor}")
        future = self.executors[executor].submit(tasks.block_on, gate, value)
        label = f"call {len(self.futures)} on executor {executor} (held at {gate.name})"
        self._track(future, PooledModel(label, executor, value, gate=gate))

    @precondition(lambda self: any(gate is not None for gate in self.gates))
    @rule(executor=st.integers(0, 1))
    def release(self, executor: int) -> None:
        gate = self.gates[executor]
        if gate is not None:
            gate.release()
            self.gates[executor] = None

    # -- waiting -------------------------------------------------------------------------------

    @rule(data=st.data(), return_when=st.sampled_from(RETURN_WHEN))
    def wait(self, data: st.DataObject, return_when: str) -> None:
        """``wait()`` on futures that complete on their own: it returns before its timeout."""
        fs = self._draw(data, "fs", among=self._completing())
        seen = {f for f in fs if self.index[id(f)] in self.seen_done}
        call = f"wait({self._labels(fs)}, return_when={return_when})"
        returned = self.api.wait(fs, timeout=BOUND, return_when=getattr(self.api, return_when))
        check_split(fs, returned, call)
        done, not_done = returned
        assert seen <= done, f"{call}: {self._labels(seen - done)} were done before the call"
        if return_when == "ALL_COMPLETED":
            assert not not_done, f"{call}: {self._labels(not_done)} not done after {BOUND}s"
        elif return_when == "FIRST_COMPLETED":
            assert done or not fs, f"{call}: nothing done after {BOUND}s"
        else:
            raised = [f for f in done if self.models[self.index[id(f)]].error is not None]
            assert raised or not not_done, (
                f"{call}: returned with {self._labels(not_done)} not done and no exception"
            )
        for future in done:
            self._seen(future)

    @rule(
        data=st.data(),
        return_when=st.sampled_from(RETURN_WHEN),
        timeout=st.sampled_from([0, EXPIRES]),
    )
    def wait_with_timeout(self, data: st.DataObject, return_when: str, timeout: float) -> None:
        """``wait()`` on any futures, held ones too: what it returns at the timeout."""
        fs = self._draw(data, "fs")
        seen = {f for f in fs if self.index[id(f)] in self.seen_done}
        held = {f for f in fs if self._held(self.index[id(f)])}
        call = f"wait({self._labels(fs)}, timeout={timeout}, return_when={return_when})"
        returned = self.api.wait(fs, timeout=timeout, return_when=getattr(self.api, return_when))
        check_split(fs, returned, call)
        done, not_done = returned
        assert seen <= done, f"{call}: {self._labels(seen - done)} were done before the call"
        assert held <= not_done, f"{call}: {self._labels(held - not_done)} are held"
        for future in done:
            self._seen(future)

    @rule(data=st.data())
    def as_completed(self, data: st.DataObject) -> None:
        """``as_completed()`` on futures that complete on their own: each once."""
        fs = self._draw(data, "fs", among=self._completing())
        call = f"as_completed({self._labels(fs)})"
        yielded: list[Future[Any]] = []
        try:
            for future in self.api.as_completed(fs, timeout=BOUND):
                assert future in fs, f"{call} yielded {future!r}, not given"
                assert future not in yielded, f"{call} yielded {self._labels([future])} twice"
                assert future.done(), f"{call} yielded {future!r}, not done"
                yielded.append(future)
        except self.api.TimeoutError:
            missing = set(fs) - set(yielded)
            raise AssertionError(
                f"{call}: {self._labels(missing)} not done after {BOUND}s"
            ) from None
        assert set(yielded) == set(fs), f"{call} yielded only {self._labels(yielded)}"
        for future in yielded:
            self._seen(future)

    def teardown(self) -> None:
        self.controls.close()  # opens every gate
        for executor in self.executors:
            shut_down_within_bound(executor)


def test_wait_and_as_completed_on_two_executors(
    futures_backend: Backend, futures_seed: int
) -> None:
    """``wait`` and ``as_completed`` on the futures of two real executors."""
    run_spec(PooledFutures, futures_backend, seed=futures_seed, phases=NO_SHRINKING)


# ------------------------------------------------------------------------------------------
# Single cases: early returns and timeouts


class TwoExecutors:
    """Two executors of the backend and a gate; closes everything on exit (every gate first)."""

    def __init__(self, backend: Backend) -> None:
        self.api = backend.api
        self.controls = Controls(timeout=BOUND)
        self.executors: list[Executor] = [backend.make(max_workers=MAX_WORKERS) for _ in range(2)]
        self.gate = self.controls.gate("opened after the check")

    def held(self, value: int) -> Future[Any]:
        """A call of the first executor held at the gate (until BOUND seconds at most)."""
        return self.executors[0].submit(tasks.block_on, self.gate, value)

    def __enter__(self) -> TwoExecutors:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.controls.close()
        for executor in self.executors:
            shut_down_within_bound(executor)


@pytest.mark.parametrize("return_when", ["FIRST_COMPLETED", "FIRST_EXCEPTION"])
def test_wait_returns_once_its_condition_holds_while_other_futures_are_held(
    futures_backend: Backend, return_when: str
) -> None:
    """One call is held until the check; another executor's calls return (and one raises):
    ``wait(FIRST_COMPLETED)`` returns once one of them is done, ``wait(FIRST_EXCEPTION)``
    once one raised. The held call is in ``not_done`` (an implementation that waits for it
    returns only once its gate gives up, after BOUND seconds, with it in ``done``)."""
    api = futures_backend.api
    with TwoExecutors(futures_backend) as pools:
        held = pools.held(0)
        pools.gate.wait_inside(1)
        other = pools.executors[1]
        returning = other.submit(tasks.return_value, 1)
        raising = other.submit(tasks.raise_exception, _tasks.SpecError("raising"))
        fs = [held, returning, raising, held]
        call = f"wait([held, returning, raising, held], return_when={return_when})"
        returned = api.wait(fs, timeout=2 * BOUND, return_when=getattr(api, return_when))
        check_split(fs, returned, call)
        done, not_done = returned
        assert held in not_done, f"{call} waited for the held call: {held!r}"
        if return_when == "FIRST_COMPLETED":
            assert done, f"{call}: nothing done"
        else:
            assert raising in done, f"{call} returned before the raising call was done"


def test_as_completed_raises_timeout_error_after_yielding_the_done(
    futures_backend: Backend,
) -> None:
    """Two calls are held until the check, two others are done: ``as_completed(..., timeout)``
    yields the two done (duplicates in ``fs`` once), then raises the API's TimeoutError. (The
    documentation promises the type; the stdlib's "2 (of 4) futures unfinished" wording is
    checked in executor_impl's own tests.)"""
    api = futures_backend.api
    with TwoExecutors(futures_backend) as pools:
        held = [pools.held(n) for n in range(2)]
        done = [pools.executors[1].submit(tasks.return_value, n) for n in range(2)]
        for future in done:
            result_within(future, "a call that returns", api)
        yielded: list[Future[Any]] = []
        fs = [*held, *done, held[0], done[1]]
        timed_out: BaseException | None = None
        try:
            yielded.extend(api.as_completed(fs, timeout=EXPIRES))
        except api.TimeoutError as error:
            timed_out = error
        assert timed_out is not None, (
            f"as_completed(timeout={EXPIRES}) never raised TimeoutError; it yielded the held "
            f"calls too, once their gate gave up after {BOUND}s: {yielded}"
        )
        assert sorted(map(id, yielded)) == sorted(map(id, done)), (
            f"as_completed yielded {yielded}, not the two done futures {done}"
        )


def test_as_completed_yields_what_is_done_at_the_first_next_whatever_the_time_since_the_call(
    futures_backend: Backend,
) -> None:
    """A future held when ``as_completed(fs, timeout=EXPIRES)`` is called, and done, long after
    that timeout, before the first ``next()``: it is yielded, not a TimeoutError ("if
    __next__() is called and the result isn't available"). The stdlib's iterator starts, and
    counts its timeout, at the first ``next()``."""
    api = futures_backend.api
    with TwoExecutors(futures_backend) as pools:
        held = pools.held(0)
        iterator = api.as_completed([held], timeout=EXPIRES)
        # The timeout passes: wait() for the held call returns it in not_done after EXPIRES.
        assert held in api.wait([held], timeout=EXPIRES).not_done, f"{held!r} is held"
        pools.gate.release()
        result_within(held, "the released call", api)
        try:
            assert next(iterator) is held, "the future done before the first next()"
        except api.TimeoutError:
            raise AssertionError(f"next() raised TimeoutError although {held!r} was done") from None
        assert next(iterator, None) is None, "as_completed goes on after yielding every future"
