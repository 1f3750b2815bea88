"""``Executor.map(..., buffersize=b)`` (Python 3.14), as its documentation states it, applied
where a probe finds that the backend's ``map`` takes the keyword and honours it (never guessed
from the class or the version): ``BufferedMapResults``. The rest of ``map`` is
``test_map.py``'s.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from . import _tasks
from ._harness import BOUND, NO_SHRINKING, run_spec, shut_down_within_bound
from .test_map import END, MAX_WORKERS, leave

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Executor

    from pytest_futures_plugin.backends import Backend

pytestmark = pytest.mark.futures_area("map")


def takes_buffersize(executor: Executor) -> bool:
    """Whether *executor*'s ``map`` honours ``buffersize``, probed by behaviour, never guessed
    from the class or the Python version: the keyword is accepted, and ``map(...,
    buffersize=1)`` over a finite input leaves most of it unread (a ``map(**kwargs)`` that
    ignores the keyword reads it all, and would hang on the spec's endless input)."""
    map_: Any = executor.map
    try:
        map_(_tasks.map_call, [], buffersize=1)
    except TypeError:
        return False
    source = CountedInput([_tasks.MapCall(p) for p in range(PROBE_ITEMS)], endless=False)
    results = map_(_tasks.map_call, source, buffersize=1)
    try:
        return source.taken < PROBE_ITEMS
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


PROBE_ITEMS = 8  # items of the input with which takes_buffersize() probes the buffer


class CountedInput:
    """The first iterable of a buffered map: counts the items taken from it; endless or not."""

    def __init__(self, calls: list[_tasks.MapCall], endless: bool) -> None:
        self.calls = calls
        self.endless = endless
        self.taken = 0

    def __iter__(self) -> Iterator[_tasks.MapCall]:
        for p in itertools.count():
            if p < len(self.calls):
                yield self._count(self.calls[p])
            elif self.endless:
                yield self._count(_tasks.MapCall(p))
            else:
                return

    def _count(self, call: _tasks.MapCall) -> _tasks.MapCall:
        self.taken += 1
        return call


@dataclasses.dataclass
class BufferedMapModel:
    """One ``map(..., buffersize=b)`` call: its results, its input, what it must deliver."""

    label: str
    results: Iterator[Any]
    source: CountedInput
    size: int | None  # None: endless
    errors: dict[int, _tasks.SpecError]
    buffersize: int
    chunk: int  # the calls one submission carries: chunksize on processes, else 1
    position: int = 0

    def most_taken(self) -> int:
        """Items the input may have given once ``position`` results were taken: the chunks of
        those results, plus ``buffersize`` chunks in the buffer."""
        return (-(-self.position // self.chunk) + self.buffersize) * self.chunk


class BufferedMapResults(RuleBasedStateMachine):
    """``map(fn, *iterables, buffersize=b)``: the documentation of Python 3.14 says

        "If buffersize is not None, the iterables are consumed lazily ... the iteration over
        iterables is paused until a result is yielded from the buffer" and buffersize is
        "the maximum number of submitted tasks whose results have not yet been yielded";
        ProcessPoolExecutor submits chunks, so there it counts chunks.

    Applied only to a backend whose ``map`` takes the keyword (``takes_buffersize``). The
    properties: results in input order; the input (endless or not) never read more than
    ``buffersize`` submissions ahead of the results taken; the exception at its position;
    ``TypeError`` for a buffersize that is not an integer, ``ValueError`` below 1, before
    anything is read; once the results are left, the input is not read again.
    """

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.processes = backend.capabilities.processes
        self.executor = backend.make(max_workers=MAX_WORKERS)
        self.map_: Any = self.executor.map  # typeshed's map() has no buffersize before 3.14
        self.maps: list[BufferedMapModel] = []
        self.count = 0

    @rule(
        data=st.data(),
        buffersize=st.integers(1, 4),
        chunksize=st.integers(1, 3),
        endless=st.booleans(),
        length=st.integers(0, 8),
    )
    def map_with_a_buffersize(
        self, data: st.DataObject, buffersize: int, chunksize: int, endless: bool, length: int
    ) -> None:
        self.count += 1
        label = f"buffered map {self.count} (buffersize {buffersize}, chunksize {chunksize})"
        raising: set[int] = set()
        if length:
            raising = data.draw(st.sets(st.sampled_from(range(length)), max_size=2))
        errors = {p: _tasks.SpecError(label, p) for p in raising}
        source = CountedInput(
            [_tasks.MapCall(p, error=errors.get(p)) for p in range(length)], endless
        )
        results = self.map_(
            _tasks.map_call, source, timeout=BOUND, chunksize=chunksize, buffersize=buffersize
        )
        m = BufferedMapModel(
            label,
            results,
            source,
            None if endless else length,
            errors,
            buffersize,
            chunksize if self.processes else 1,
        )
        assert source.taken <= m.most_taken(), (
            f"{label}: map() took {source.taken} items before any result was asked for"
        )
        self.maps.append(m)

    @rule(bad=st.sampled_from(["2", 2.0, 0, -1]))
    def map_with_a_bad_buffersize(self, bad: object) -> None:
        source = CountedInput([_tasks.MapCall(0)], endless=True)
        expected = ValueError if isinstance(bad, int) else TypeError
        with pytest.raises(expected):
            self.map_(_tasks.map_call, source, buffersize=bad)
        assert source.taken == 0, f"map(buffersize={bad!r}) read its input before raising"

    @precondition(lambda self: bool(self.maps))
    @rule(data=st.data(), count=st.integers(1, 8))
    def next(self, data: st.DataObject, count: int) -> None:
        """Take up to *count* results of one buffered map."""
        m = self.maps[data.draw(st.integers(0, len(self.maps) - 1))]
        for _ in range(count):
            if not self._take(m):
                self.maps.remove(m)
                return

    def _take(self, m: BufferedMapModel) -> bool:
        p, k = m.position, min(m.errors, default=None)
        raised: _tasks.SpecError | None = None
        try:
            value = next(m.results, END)
        except _tasks.SpecError as error:
            raised = error
        if raised is not None:
            assert k is not None, f"{m.label}: {raised!r} raised, but no call fails"
            earliest = k - k % m.chunk
            assert earliest <= p <= k, f"{m.label}: {raised!r} raised at {p}; it is due at {k}"
            assert raised.args == m.errors[k].args, f"{m.label}: {raised!r}, not call {k}'s"
            assert next(m.results, END) is END, f"{m.label}: results after the exception"
            return False
        if value is END:
            assert m.size is not None, f"{m.label}: an endless input ended at {p}"
            assert k is None, f"{m.label}: the results ended at {p}, before call {k}'s exception"
            assert p == m.size, f"{m.label}: the results ended after {p} of {m.size}"
            return False
        assert k is None or p < k, f"{m.label}: result {p} is {value!r}; call {k} raised"
        assert value == (p,), f"{m.label}: result {p} is {value!r}, not {(p,)!r}"
        m.position += 1
        assert m.source.taken <= m.most_taken(), (
            f"{m.label}: {m.source.taken} items taken from the input for {m.position} "
            f"results, more than {m.most_taken()}"
        )
        return True

    @precondition(lambda self: bool(self.maps))
    @rule(data=st.data(), how=st.sampled_from(["close", "drop"]))
    def leave_early(self, data: st.DataObject, how: str) -> None:
        """Stop taking results: the input is not read any more."""
        index = data.draw(st.integers(0, len(self.maps) - 1))
        m, taken = leave(self.maps, index, how, lambda m: m.source.taken)
        assert m.source.taken == taken, f"{m.label}: the input was read after the results were left"

    def teardown(self) -> None:
        self.maps.clear()
        gc.collect()
        shut_down_within_bound(self.executor, "at teardown")


def test_map_with_a_buffersize(futures_backend: Backend, futures_seed: int) -> None:
    """Results of ``map(..., buffersize=b)`` come as ``BufferedMapResults`` says, where the
    backend's ``map`` takes ``buffersize`` (Python 3.14's stdlib, executor_impl everywhere)."""
    probe = futures_backend.make(max_workers=1)
    try:
        if not takes_buffersize(probe):
            pytest.skip("capability absent: map() takes no buffersize, or ignores it (Python 3.14)")
    finally:
        shut_down_within_bound(probe)
    run_spec(BufferedMapResults, futures_backend, seed=futures_seed, phases=NO_SHRINKING)
