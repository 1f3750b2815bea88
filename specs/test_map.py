"""``Executor.map``, as the documentation of ``concurrent.futures.Executor.map`` states it.

    "Similar to map(fn, *iterables) except:

    * the iterables are collected immediately rather than lazily;
    * fn is executed asynchronously and several calls to fn may be made concurrently.

    The returned iterator raises a TimeoutError if __next__() is called and the result isn't
    available after timeout seconds from the original call to Executor.map(). ...

    If a fn call raises an exception, then that exception will be raised when its value is
    retrieved from the iterator.

    When using ProcessPoolExecutor, this method chops iterables into a number of chunks which
    it submits to the pool as separate tasks. The (approximate) size of these chunks can be
    specified by setting chunksize to a positive integer. ... With ThreadPoolExecutor,
    chunksize has no effect."

As ``map(fn, *iterables)`` does, it stops with the shortest iterable (``zip``). What the spec
checks:

* **Input order.** The n-th result is ``fn`` of the n-th items, whatever order the calls finish
  in: the machine holds some calls at a gate and, on a pool of threads (every thread started
  first), lets the later calls finish before it opens it. It takes no result while a gate is
  closed, since a pool may queue the call due behind a held one (on a pool of processes:
  executor_impl prefetches calls to busy workers, the stdlib queues a few ahead).
* **Chunks are invisible.** Any ``chunksize`` gives the same results; a process pool may
  reject one below 1 with ``ValueError`` (the stdlib's does; the documentation promises no
  error), and if it takes one, its results are right.
* **Eager.** Every item is taken from the iterables before ``map`` returns.
* **The exception at its position.** The results before the first failing call are delivered,
  then its exception is raised and the iterator ends. A chunk fails as a whole on the stdlib
  (``[fn(*args) for args in chunk]``), so its exception comes when the *chunk's* first result
  is due and the results before the failing call in that chunk are lost; executor_impl
  delivers them (README, "Deliberate differences"). On a process pool the spec allows both:
  the results before the failing call's chunk come first, then those before the failing call
  may or may not, then the exception. On a pool of threads, exactly at its position.
* **Timeout from the call.** A result not ready by ``timeout`` seconds after the call raises
  the API's ``TimeoutError`` when it is due (``test_map_raises_timeout_error...``; a call held
  at a gate that no one opens before then). The results due before it come first, or the
  ``TimeoutError`` comes earlier if they were not ready in time either. The deadline counts
  from the call, not from the first ``next()`` (``test_map_counts_the_timeout_from_the_call...``:
  results first taken past the deadline).
* **Leaving early cancels the rest.** Closing the results iterator (``close()``, or dropping
  it) once it has started cancels the calls that have not started: every stdlib from 3.9 on
  cancels them in the generator's ``finally`` (3.10.13, 3.11.7 and later here also cancel the
  call whose result timed out; 3.9.18 does not, so the spec says nothing about that one). A
  generator never started runs no ``finally``: nothing is cancelled before the first
  ``next()``. A pool of processes may have handed a few queued calls to its workers already
  (the stdlib ``max_workers + 1``, executor_impl up to 3 per busy worker): those run, the spec
  only requires that not every queued call does.
* **buffersize** (Python 3.14; applied where a probe finds that ``map`` takes the keyword,
  never guessed from the class or the version): ``BufferedMapResults`` in
  ``test_map_buffersize.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import threading
from typing import TYPE_CHECKING, Any, Callable

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from pytest_futures_plugin.controls import ControlError, Controls, ControlTimeout

from . import _tasks
from ._fixtures import futures_known_bugs  # noqa: F401 (a fixture the tests request)
from ._harness import (
    BOUND,
    EXPIRES,
    NO_SHRINKING,
    Background,
    controlled,
    result_within,
    run_spec,
    shut_down_within_bound,
)
from ._known_bugs import expects_known_bug
from ._seen import seen

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Executor

    from pytest_futures_plugin.backends import Backend, FuturesAPI
    from pytest_futures_plugin.controls import Gate

pytestmark = pytest.mark.futures_area("map")

MAX_WORKERS = 2

SETTLE = 0.25
"""Seconds the machine gives the calls after a held one to finish before it opens the gate.
Not a check: if they are slower, the case only proves less (they finish after the held one)."""

END = object()
"""What ``next(results, END)`` returns once the results iterator has ended."""


def leave(
    maps: list[Any], index: int, how: str, measure: Callable[[Any], Any] = lambda m: None
) -> tuple[Any, Any]:
    """Take the map model ``maps[index]`` out and stop taking its results: ``close()`` its
    iterator (which must then be over) or drop it; garbage is collected before this returns.
    Returns the model (its iterator replaced by an empty one) and what *measure* said of it
    once closed and before the iterator was dropped."""
    m = maps.pop(index)
    results, m.results = m.results, iter(())
    close = getattr(results, "close", None)
    if how == "close" and close is not None:
        close()
        assert next(results, END) is END, f"{m.label}: results after close()"
    measured = measure(m)
    del results, close
    gc.collect()
    return m, measured


def start_every_worker(executor: Executor, controls: Controls, api: FuturesAPI) -> bool:
    """Run MAX_WORKERS calls that wait (up to SETTLE seconds) for each other, so that a pool
    of threads starts all its threads: whether they met. Once started, a thread stays.

    A pool of threads starts them on demand, and the stdlib's before 3.12 counts every finished
    call as an idle thread: a pool that ran a few calls may then queue the next one behind a
    blocked call instead of starting its second thread.
    """
    everyone = controls.latch(MAX_WORKERS, "every worker running")
    calls = [executor.submit(_tasks.rendezvous, everyone, SETTLE) for _ in range(MAX_WORKERS)]
    met = [result_within(call, "a call that waits for the others", api) for call in calls]
    return all(met)


@dataclasses.dataclass
class MapModel:
    """One ``map`` call: its results iterator and what it must deliver."""

    label: str
    results: Iterator[Any]
    expected: list[tuple[Any, ...]]
    errors: dict[int, _tasks.SpecError]  # position -> what its call raises
    chunksize: int
    position: int = 0  # the position of the next result due

    @property
    def first_error(self) -> int | None:
        return min(self.errors, default=None)


class MapResults(RuleBasedStateMachine):
    """``map`` calls on one executor, their results taken lazily, in any interleaving.

    A held call waits at its map's gate. While any gate is closed no result is taken (a pool
    may queue the call due behind a held one), so each gate opens before its map is read.
    """

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.api = backend.api
        self.processes = backend.capabilities.processes
        self.controls = Controls(timeout=BOUND)
        self.executor = backend.make(max_workers=MAX_WORKERS)
        if not self.processes:
            start_every_worker(self.executor, self.controls, self.api)
        self.maps: list[MapModel] = []
        self.closed_gates: dict[Gate, int] = {}  # gate -> how many calls it holds
        self.count = 0

    def _capacity(self) -> int:
        """How many more calls may be held: on threads, leave one worker free for the rest."""
        if self.processes:
            return 2
        return max(0, MAX_WORKERS - 1 - sum(self.closed_gates.values()))

    # -- rules -------------------------------------------------------------------------------

    @rule(
        data=st.data(),
        length=st.integers(0, 8),
        extra_lengths=st.lists(st.integers(0, 9), max_size=2),
        chunksize=st.integers(1, 4),
        timeout=st.sampled_from([None, BOUND]),
    )
    def map(
        self,
        data: st.DataObject,
        length: int,
        extra_lengths: list[int],
        chunksize: int,
        timeout: float | None,
    ) -> None:
        self.count += 1
        label = f"map {self.count}"
        size = min([length, *extra_lengths])  # zip stops with the shortest iterable
        raising: set[int] = set()
        held: set[int] = set()
        if size:
            positions = st.sampled_from(range(size))
            raising = data.draw(st.sets(positions, max_size=2), label="raising")
            held = data.draw(st.sets(positions, max_size=self._capacity()), label="held")
        gate = self.controls.gate(f"gate of {label}") if held else None
        finished = self.controls.latch(size - len(held), f"{label}'s calls not held")
        errors = {p: _tasks.SpecError(label, p) for p in raising}
        calls = [
            _tasks.MapCall(
                value=p,
                error=errors.get(p),
                gate=gate if p in held else None,
                finished=None if p in held or p >= size else finished,
            )
            for p in range(length)
        ]
        extras = [
            list(range(100 * (n + 1), 100 * (n + 1) + k)) for n, k in enumerate(extra_lengths)
        ]
        taken = 0

        def first_iterable() -> Iterator[_tasks.MapCall]:
            nonlocal taken
            for call in calls:
                taken += 1
                yield call

        source = first_iterable()
        results = self.executor.map(
            _tasks.map_call, source, *extras, timeout=timeout, chunksize=chunksize
        )
        assert taken >= size, f"{label}: map() returned having taken {taken} of {size} items"
        if length <= min(extra_lengths, default=length):
            assert next(source, END) is END, f"{label}: map() returned before its input ended"
        if gate is not None:
            self.closed_gates[gate] = len(held)
            if not self.processes:  # let the later calls finish first
                with contextlib.suppress(ControlTimeout):
                    finished.wait(SETTLE)
        expected = [(p, *(extra[p] for extra in extras)) for p in range(size)]
        self.maps.append(MapModel(label, results, expected, errors, chunksize))

    @precondition(lambda self: bool(self.processes))
    @rule(chunksize=st.integers(-2, 0))
    def map_with_a_chunksize_below_one(self, chunksize: int) -> None:
        """The stdlib's process pool refuses it with ValueError, but the documentation
        promises no error (dask's executor ignores *chunksize*): a pool that takes it must
        still give the right results (taken only while no gate holds a worker)."""
        try:
            results = self.executor.map(
                _tasks.map_call, [_tasks.MapCall(0)], chunksize=chunksize, timeout=BOUND
            )
        except ValueError:
            return
        if not self.closed_gates:
            got = list(results)
            assert got == [(0,)], f"map(chunksize={chunksize}) gave {got!r}"

    @precondition(lambda self: bool(self.closed_gates))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        gate = data.draw(st.sampled_from(sorted(self.closed_gates, key=lambda g: g.name)))
        gate.release()
        del self.closed_gates[gate]

    @precondition(lambda self: bool(self.maps) and not self.closed_gates)
    @rule(data=st.data(), count=st.integers(1, 8))
    def next(self, data: st.DataObject, count: int) -> None:
        """Take up to *count* results of one map."""
        m = self.maps[data.draw(st.integers(0, len(self.maps) - 1))]
        for _ in range(count):
            if not self._take(m):
                self.maps.remove(m)
                return

    def _take(self, m: MapModel) -> bool:
        """Take one result of *m* and check it; False once the results have ended."""
        p, k = m.position, m.first_error
        raised: BaseException | None = None
        try:
            value = next(m.results, END)
        except (_tasks.SpecError, self.api.TimeoutError) as error:
            raised = error
        if raised is None and value is END:
            assert k is None, f"{m.label}: the results ended at {p}, before call {k}'s exception"
            assert p == len(m.expected), (
                f"{m.label}: the results ended after {p} of {len(m.expected)}"
            )
            return False
        if raised is not None:
            assert isinstance(raised, _tasks.SpecError), f"{m.label}: result {p} timed out"
            assert k is not None, f"{m.label}: {raised!r} raised, but no call fails"
            # A chunk fails whole on the stdlib's process pool: its exception comes with the
            # chunk's first result.
            earliest = k - k % m.chunksize if self.processes else k
            assert earliest <= p <= k, (
                f"{m.label}: {raised!r} raised for position {p}; it is due at {k} "
                f"(chunksize {m.chunksize})"
            )
            assert raised.args == m.errors[k].args, f"{m.label}: {raised!r}, not call {k}'s"
            assert next(m.results, END) is END, f"{m.label}: results after the exception"
            return False
        assert p < len(m.expected), f"{m.label}: {len(m.expected)} results, then {value!r}"
        assert k is None or p < k, f"{m.label}: result {p} is {value!r}; call {k} raised"
        assert value == m.expected[p], (
            f"{m.label}: result {p} is {value!r}, not {m.expected[p]!r} (input order, "
            f"chunksize {m.chunksize})"
        )
        m.position += 1
        return True

    @precondition(lambda self: bool(self.maps))
    @rule(data=st.data(), how=st.sampled_from(["close", "drop"]))
    def leave_early(self, data: st.DataObject, how: str) -> None:
        """Stop taking results: ``close()`` the iterator, or drop it (garbage collection)."""
        leave(self.maps, data.draw(st.integers(0, len(self.maps) - 1)), how)

    def teardown(self) -> None:
        self.controls.close()  # opens every gate
        self.maps.clear()
        gc.collect()
        shut_down_within_bound(self.executor, "at teardown")


@expects_known_bug("dask_map_rejects_iterators")
@pytest.mark.usefixtures("futures_known_bugs")
def test_map(futures_backend: Backend, futures_seed: int) -> None:
    """Results of ``Executor.map`` come as this module's docstring says."""
    run_spec(MapResults, futures_backend, seed=futures_seed, phases=NO_SHRINKING)


def test_map_raises_timeout_error_when_a_result_is_not_ready_by_the_deadline(
    futures_backend: Backend,
) -> None:
    """Call 1 of 4 waits at a gate opened only after the check: taking its result raises the
    API's TimeoutError, once ``EXPIRES`` seconds have passed since the ``map`` call. (In chunks
    of 2 on a process pool: the first chunk holds it, so result 0 may time out too.)"""
    api = futures_backend.api
    held, chunksize = 1, 2
    with Controls(timeout=BOUND) as controls:
        executor = futures_backend.make(max_workers=MAX_WORKERS)
        try:
            gate = controls.gate("opened after the timeout")
            calls = [_tasks.MapCall(p, gate=gate if p == held else None) for p in range(4)]
            results = executor.map(_tasks.map_call, calls, timeout=EXPIRES, chunksize=chunksize)
            taken: list[Any] = []
            try:
                taken.extend(results)
            except api.TimeoutError:
                pass
            except ValueError as error:  # dask: the time left went negative (a race)
                seen(
                    futures_backend,
                    "dask_map_timeout_overdue",
                    f"map(timeout={EXPIRES}) raised {error!r} for a result due after the "
                    f"deadline, not TimeoutError; results before: {taken}",
                )
            except ControlError as error:  # the held call's gate gave up after BOUND seconds
                raise AssertionError(
                    f"map(timeout={EXPIRES}) waited for call {held} until its gate gave up "
                    f"({error}); results before: {taken}"
                ) from None
            else:
                raise AssertionError(f"map(timeout={EXPIRES}) gave every result: {taken}")
            assert len(taken) <= held, f"results past the held call {held}: {taken}"
            assert taken == [(p,) for p in range(len(taken))], f"results out of order: {taken}"
            assert next(results, END) is END, "the results iterator goes on after TimeoutError"
        finally:
            controls.close()
            shut_down_within_bound(executor)


def test_map_counts_the_timeout_from_the_call_not_from_the_first_next(
    futures_backend: Backend,
) -> None:
    """The results of ``map(timeout=EXPIRES)``, first taken once the deadline has passed with
    the only call held at its gate: ``next()`` raises the API's TimeoutError at once, for the
    deadline counts from the ``map`` call, not from the first ``next()``.

    Under the deterministic scheduler (virtual time) a thread opens the gate ``EXPIRES / 2``
    after ``next()`` began: a pool that counted from the first ``next()`` would still be
    waiting then, and would deliver the result. On real threads the gate stays closed (a
    thread that late by so little may not have been scheduled yet), and ``next()`` must
    still raise TimeoutError."""
    api = futures_backend.api
    with Controls(timeout=BOUND) as controls:
        executor = futures_backend.make(max_workers=MAX_WORKERS)
        try:
            gate = controls.gate("held past the deadline")
            finished = controls.latch(1, "call 0 finished")
            calls = [_tasks.MapCall(0, gate=gate, finished=finished)]
            results = executor.map(_tasks.map_call, calls, timeout=EXPIRES)
            gate.wait_inside(1)
            with pytest.raises(ControlTimeout):  # the deadline passes, call 0 still held
                finished.wait(2 * EXPIRES)
            never = threading.Event()

            def open_the_gate_late() -> None:
                never.wait(EXPIRES / 2)  # a virtual wait: it expires in the middle of next()
                gate.release()

            opener = (
                Background(f"open call 0's gate {EXPIRES / 2}s into next()", open_the_gate_late)
                if controlled()
                else None
            )
            try:
                value = next(results)
            except api.TimeoutError:
                pass
            except ValueError as error:  # dask: the time left went negative
                seen(
                    futures_backend,
                    "dask_map_timeout_overdue",
                    f"map(timeout={EXPIRES}) raised {error!r} at a next() past its deadline, "
                    "not TimeoutError",
                )
            else:
                raise AssertionError(
                    f"map(timeout={EXPIRES}) gave {value!r} from a next() called at least "
                    f"{2 * EXPIRES}s after the map() call, its call then held: the timeout "
                    "counts from the first next(), not from the call"
                )
            if opener is not None:
                opener.finish()
        finally:
            controls.close()
            shut_down_within_bound(executor)


QUEUED = 12
"""Calls queued behind the held ones: more than a process pool hands its workers ahead."""


@pytest.mark.parametrize("how", ["close", "drop"])
def test_leaving_the_results_early_cancels_the_calls_not_started(
    futures_backend: Backend, how: str
) -> None:
    """Every worker holds a call at a gate; the results iterator, started, is then closed
    (or dropped): the queued calls are cancelled, so they never run once the gate opens."""
    api = futures_backend.api
    processes = futures_backend.capabilities.processes
    with Controls(timeout=BOUND) as controls:
        executor = futures_backend.make(max_workers=MAX_WORKERS)
        try:
            if not processes:
                start_every_worker(executor, controls, api)
            gate = controls.gate("holding every worker")
            started = controls.recorder("started")
            held = range(1, 1 + MAX_WORKERS)
            calls = [
                _tasks.MapCall(p, gate=gate if p in held else None, started=started)
                for p in range(1 + MAX_WORKERS + QUEUED)
            ]
            results = executor.map(_tasks.map_call, calls, timeout=BOUND)
            assert next(results) == (0,), "the first result"  # the iterator has started
            gate.wait_inside(MAX_WORKERS)
            before = set(started.start_order)
            if how == "close":
                close = getattr(results, "close", None)
                if close is None:
                    pytest.skip(f"{type(results).__name__} has no close()")
                close()
                del close
            del results
            gc.collect()
            gate.release()
            shut_down_within_bound(executor, "once the results were left")
            ran = set(started.start_order)
        finally:
            controls.release_all()
            shut_down_within_bound(executor)
    if processes:
        assert len(ran) < len(calls), f"every queued call ran after the results were left: {ran}"
    elif ran != before:
        seen(
            futures_backend,
            "dask_cancelled_calls_still_start",
            f"calls {sorted(ran - before)} started after the results were left, although "
            "every worker was held",
        )
