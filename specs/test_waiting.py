"""``wait()`` and ``as_completed()``, as the documentation of ``concurrent.futures`` states them.

    wait(fs, timeout=None, return_when=ALL_COMPLETED): "Wait for the Future instances
    (possibly created by different Executor instances) given by fs to complete. Duplicate
    futures given to fs are removed and will be returned only once. Returns a named 2-tuple of
    sets. The first set, named done, contains the futures that completed (finished or
    cancelled futures) before the wait completed. The second set, named not_done, contains the
    futures that did not complete (pending or running futures)."

    FIRST_COMPLETED: "The function will return when any future finishes or is cancelled."
    FIRST_EXCEPTION: "The function will return when any future finishes by raising an
    exception. If no future raises an exception then it is equivalent to ALL_COMPLETED."
    ALL_COMPLETED: "The function will return when all futures finish or are cancelled."

    as_completed(fs, timeout=None): "Returns an iterator over the Future instances (possibly
    created by different Executor instances) given by fs that yields futures as they complete
    (finished or cancelled futures). Any futures given by fs that are duplicated will be
    returned once. Any futures that completed before as_completed() is called will be yielded
    first. The returned iterator raises a TimeoutError if __next__() is called and the result
    isn't available after timeout seconds from the original call to as_completed()."

Two machines check this; this module holds the first:

* ``BareFutures``: futures made with the API's ``Future()`` and completed by the machine itself,
  from the test's thread, so every outcome is exact. ``wait(fs, timeout=0)`` splits ``fs`` into
  the futures done and the rest; an ``as_completed`` iterator, read between completions,
  yields first (in any order) the futures done when it starts, then the others in the order
  they complete, each once. The stdlib's iterator is a generator: it starts at the first
  ``next()``, not at the call, and so does its timeout.

The second, ``PooledFutures`` (futures of two real executors), and the single cases of
early returns and timeouts are in ``test_waiting_pools.py``.

"Done" for these two functions is FINISHED or cancelled *and notified*: a future cancelled by
``cancel()`` alone counts as not done until ``set_running_or_notify_cancel()`` (which a pool
calls when it dequeues the call): CPython gh-92001, a strict xfail where the probe shows it.
The machines cancel as a pool does, and notify at once.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from . import _tasks
from ._fixtures import futures_known_bugs  # noqa: F401 (a fixture the tests request)
from ._harness import BOUND, run_spec
from ._known_bugs import expects_known_bug

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from concurrent.futures import Future

    from pytest_futures_plugin.backends import Backend, FuturesAPI

pytestmark = pytest.mark.futures_area("waiting")

PENDING, RUNNING, FINISHED, CANCELLED = "pending", "running", "finished", "cancelled"
RETURN_WHEN = ("FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED")
COMPLETIONS = ("result", "exception", "cancel")
SCRIPT_STEPS = ("next", "complete one of fs", "complete two of fs", "complete any")


def check_split(fs: list[Future[Any]], returned: Any, call: str) -> None:
    """``wait()`` returned a named 2-tuple ``(done, not_done)`` of sets splitting ``set(fs)``,
    and every future in ``done`` is done."""
    done, not_done = returned
    assert (returned.done, returned.not_done) == (done, not_done), f"{call}: {returned!r}"
    assert isinstance(done, set), f"{call} returned {returned!r}"
    assert isinstance(not_done, set), f"{call} returned {returned!r}"
    assert done | not_done == set(fs), f"{call}: done | not_done is not the set of fs"
    assert not done & not_done, f"{call}: {done & not_done} both done and not done"
    assert all(f.done() for f in done), f"{call}: not done, yet in done: {done}"


# ------------------------------------------------------------------------------------------
# Bare futures, completed by the machine


@dataclasses.dataclass
class BareModel:
    """What one bare future is."""

    label: str
    state: str = PENDING
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.state in (FINISHED, CANCELLED)


@dataclasses.dataclass
class Session:
    """One ``as_completed`` iterator and what it has yielded."""

    label: str
    iterator: Iterator[Future[Any]]
    futures: set[int]  # indices of the futures given (duplicates collapse)
    yielded: list[int] = dataclasses.field(default_factory=list)
    first_batch: set[int] | None = None  # done at the first next(); None before it
    later: list[int] = dataclasses.field(default_factory=list)  # completed after, in order

    def available(self, models: list[BareModel]) -> bool:
        """Whether ``next()`` returns without waiting."""
        if self.first_batch is None:
            return not self.futures or any(models[i].done for i in self.futures)
        return (
            bool(self.first_batch - set(self.yielded))
            or any(i not in self.yielded for i in self.later)
            or len(self.yielded) == len(self.futures)
        )


FIRST_FUTURES, MAX_NOT_DONE, LATEST = 3, 4, 6
"""Futures the machine starts with; at most so many not done at a time; waits and iterators
take theirs among so many latest: few, so that they share futures and complete them."""


class BareFutures(RuleBasedStateMachine):
    """Futures from the API's ``Future()``, completed from the test's thread."""

    def __init__(self, api: FuturesAPI) -> None:
        super().__init__()
        self.api = api
        self.futures: list[Future[Any]] = []
        self.models: list[BareModel] = []
        self.index: dict[int, int] = {}  # id(future) -> its index
        self.sessions: list[Session] = []
        for _ in range(FIRST_FUTURES):
            self.new_future()

    # -- helpers -----------------------------------------------------------------------------

    def _indices(self, state: str) -> list[int]:
        return [i for i, m in enumerate(self.models) if m.state == state]

    def _not_done(self, among: Iterable[int] | None = None) -> list[int]:
        indices = range(len(self.models)) if among is None else sorted(among)
        return [i for i in indices if not self.models[i].done]

    def _draw_fs(self, data: st.DataObject) -> list[int]:
        """Some of the latest futures (so that not all of them are done), duplicates too."""
        latest = range(max(0, len(self.futures) - LATEST), len(self.futures))
        if not latest:
            return []
        return data.draw(st.lists(st.sampled_from(latest), max_size=6), label="fs")

    def _completed(self, i: int) -> None:
        for session in self.sessions:
            if session.first_batch is not None and i in session.futures:
                session.later.append(i)

    def _labels(self, indices: Iterable[int]) -> list[str]:
        return [self.models[i].label for i in indices]

    def _complete(self, i: int, how: str) -> None:
        """Finish future *i* with a result or an exception, or (if pending) cancel it and
        notify the cancellation, as the pool that dequeues a cancelled call does."""
        future, model = self.futures[i], self.models[i]
        if how == "cancel" and model.state == PENDING:
            assert future.cancel() is True, f"cancel() of pending {model.label}"
            assert future.set_running_or_notify_cancel() is False, f"notify {model.label}"
            model.state = CANCELLED
        elif how == "exception":
            model.error = _tasks.SpecError(model.label)
            future.set_exception(model.error)
            model.state = FINISHED
        else:
            future.set_result(i)
            model.state = FINISHED
        self._completed(i)

    # -- completing futures --------------------------------------------------------------------

    @precondition(lambda self: len(self._not_done()) < MAX_NOT_DONE)
    @rule()
    def new_future(self) -> None:
        future: Future[Any] = self.api.Future()
        self.index[id(future)] = len(self.futures)
        self.models.append(BareModel(f"future {len(self.futures)}"))
        self.futures.append(future)

    @precondition(lambda self: bool(self._indices(PENDING)))
    @rule(data=st.data())
    def set_running_or_notify_cancel(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(self._indices(PENDING)))
        assert self.futures[i].set_running_or_notify_cancel() is True
        self.models[i].state = RUNNING

    @precondition(lambda self: bool(self._indices(PENDING) + self._indices(RUNNING)))
    @rule(data=st.data(), how=st.sampled_from(COMPLETIONS))
    def complete(self, data: st.DataObject, how: str) -> None:
        """``set_result()``, ``set_exception()``, or ``cancel()`` and notify."""
        self._complete(data.draw(st.sampled_from(self._not_done())), how)

    # -- waiting -------------------------------------------------------------------------------

    @rule(data=st.data(), return_when=st.sampled_from(RETURN_WHEN))
    def wait(self, data: st.DataObject, return_when: str) -> None:
        """``wait(fs, timeout=0)``: nobody completes a future meanwhile, so the split is exact
        whatever *return_when* says."""
        indices = self._draw_fs(data)
        fs = [self.futures[i] for i in indices]
        call = f"wait({self._labels(indices)}, timeout=0, return_when={return_when})"
        returned = self.api.wait(fs, timeout=0, return_when=getattr(self.api, return_when))
        check_split(fs, returned, call)
        expected = {self.futures[i] for i in indices if self.models[i].done}
        assert returned.done == expected, (
            f"{call}: done is {self._labels(self.index[id(f)] for f in returned.done)}, not "
            f"{self._labels(self.index[id(f)] for f in expected)}"
        )

    @rule(
        data=st.data(),
        fresh=st.integers(0, 3),
        script=st.lists(st.sampled_from(SCRIPT_STEPS), max_size=16),
    )
    def as_completed(self, data: st.DataObject, fresh: int, script: list[str]) -> None:
        """An ``as_completed`` iterator, on some futures and *fresh* new ones, read along
        *script*: ``next()`` (when a future is due: it would block otherwise), or complete one
        or two of its futures, or any future."""
        indices = self._draw_fs(data)
        for _ in range(fresh):
            indices.append(len(self.futures))
            self.new_future()
        label = f"as_completed({self._labels(indices)})"
        iterator = self.api.as_completed([self.futures[i] for i in indices], timeout=BOUND)
        session = Session(label, iterator, set(indices))
        self.sessions.append(session)
        try:
            for step in script:
                if step == "next":
                    if session.available(self.models) and not self._next(session):
                        break
                    continue
                for _ in range(2 if step == "complete two of fs" else 1):
                    among = self._not_done(None if step == "complete any" else session.futures)
                    if among:
                        how = data.draw(st.sampled_from(COMPLETIONS))
                        self._complete(data.draw(st.sampled_from(among)), how)
        finally:
            self.sessions.remove(session)
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _next(self, session: Session) -> bool:
        """``next()`` of *session*'s iterator, checked; False once it ended."""
        if session.first_batch is None:
            session.first_batch = {i for i in session.futures if self.models[i].done}
        try:
            future = next(session.iterator, None)
        except self.api.TimeoutError:
            raise AssertionError(f"{session.label}: TimeoutError; a future was done") from None
        if future is None:
            assert len(session.yielded) == len(session.futures), (
                f"{session.label} ended after {self._labels(session.yielded)}"
            )
            return False
        assert id(future) in self.index, f"{session.label} yielded {future!r}, not given"
        i = self.index[id(future)]
        assert i in session.futures, f"{session.label} yielded {self.models[i].label}"
        assert i not in session.yielded, f"{session.label} yielded {self.models[i].label} twice"
        assert future.done(), f"{session.label} yielded {future!r}, not done"
        first = session.first_batch - set(session.yielded)
        if first:
            assert i in first, (
                f"{session.label} yielded {self.models[i].label} before "
                f"{self._labels(first)}, done when it started"
            )
        else:
            later = [j for j in session.later if j not in session.yielded]
            assert later, f"{session.label} yielded {self.models[i].label}, none was due"
            assert i == later[0], (
                f"{session.label} yielded {self.models[i].label}; completed meanwhile, in order: "
                f"{self._labels(later)}"
            )
        session.yielded.append(i)
        return True


def test_wait_and_as_completed_on_bare_futures(futures_backend: Backend, futures_seed: int) -> None:
    """``wait`` and ``as_completed`` on futures completed by the test, as the docstring says."""
    api = futures_backend.api
    run_spec(BareFutures, api, seed=futures_seed, scale=10)


# ------------------------------------------------------------------------------------------
# A stdlib bug: a future cancelled but not notified is not done for wait/as_completed


@expects_known_bug("gh-92001")
@pytest.mark.usefixtures("futures_known_bugs")
def test_a_cancelled_future_is_done_for_wait_and_as_completed(futures_backend: Backend) -> None:
    """A cancelled future is "completed" for ``wait()`` and ``as_completed()`` ("finished or
    cancelled futures"), as it is for ``done()``, also before anyone calls
    ``set_running_or_notify_cancel()``."""
    api = futures_backend.api
    cancelled: Future[Any] = api.Future()
    finished: Future[Any] = api.Future()
    assert cancelled.cancel(), "cancel() of a pending future"
    finished.set_result(None)
    assert cancelled.done(), "done() of a cancelled future"
    fs = [cancelled, finished]
    for return_when in RETURN_WHEN:
        done, not_done = api.wait(fs, timeout=0, return_when=getattr(api, return_when))
        assert (done, not_done) == ({cancelled, finished}, set()), (
            f"wait(timeout=0, return_when={return_when}): done {done}, not done {not_done}"
        )
    try:
        yielded = list(api.as_completed(fs, timeout=0))
    except api.TimeoutError as error:
        raise AssertionError(f"as_completed(): {error!r} with every future done") from None
    assert sorted(map(id, yielded)) == sorted(map(id, fs)), f"as_completed yielded {yielded}"
