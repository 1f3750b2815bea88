"""wait() and as_completed(): block on several futures at once.

Both install one waiter object on every future that is not yet done.  A future calls the
waiter's ``add_result`` / ``add_exception`` / ``add_cancelled`` (the protocol the stdlib's
futures speak too) when it becomes FINISHED or CANCELLED_AND_NOTIFIED, under the future's
own lock.  The waiter counts, records the future, and opens its gate (a lock the waiting
thread is parked on) once the caller's condition holds.

The futures may come from any executor, ours or the stdlib's or a mix: only the stdlib's
future protocol is used (``_condition`` to lock, ``_state`` to read, ``_waiters`` to install).
Futures are locked in ``id()`` order, as the stdlib does, so two threads waiting on
overlapping sets cannot deadlock each other, whichever module they call.

Neither function keeps a reference to a future it has already handed back.
"""

from __future__ import annotations

from concurrent.futures import _base
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from . import _hooks, _sync
from ._future import CANCELLED_AND_NOTIFIED, FINISHED, TimeoutError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from concurrent.futures import Future

__all__ = ["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION", "as_completed", "wait"]

_T = TypeVar("_T")

FIRST_COMPLETED: str = _base.FIRST_COMPLETED
FIRST_EXCEPTION: str = _base.FIRST_EXCEPTION
ALL_COMPLETED: str = _base.ALL_COMPLETED
_AS_COMPLETED = "_AS_COMPLETED"
_RETURN_WHEN = (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED)

# Only these two states are "done" for waiters: a CANCELLED future is done for result(),
# but wait()/as_completed() learn of it when its executor notifies the cancel.
_NOTIFIED = frozenset((CANCELLED_AND_NOTIFIED, FINISHED))

if TYPE_CHECKING:

    class DoneAndNotDoneFutures(NamedTuple):
        done: set[Future[Any]]
        not_done: set[Future[Any]]

else:
    # The stdlib's own namedtuple class, so results compare and pickle alike.
    DoneAndNotDoneFutures = _base.DoneAndNotDoneFutures


class _Waiter:
    """Counts notifications from futures and opens a gate when the condition holds."""

    __slots__ = ("_gate", "_lock", "_mode", "_open", "_pending", "finished")

    def __init__(self, pending: int, mode: str) -> None:
        self.finished: list[Future[Any]] = []
        self._pending = pending
        self._mode = mode
        self._lock = _sync.allocate_lock()
        self._gate = _sync.allocate_lock()
        self._gate.acquire()
        self._open = False  # invariant, under _lock: _open <=> _gate is released

    def add_result(self, future: Future[Any]) -> None:
        self._record(future, raised=False)

    def add_exception(self, future: Future[Any]) -> None:
        self._record(future, raised=True)

    def add_cancelled(self, future: Future[Any]) -> None:
        self._record(future, raised=False)

    def _record(self, future: Future[Any], *, raised: bool) -> None:
        with self._lock:
            self.finished.append(future)
            self._pending -= 1
            if self._open:
                return
            mode = self._mode
            if (
                mode in (_AS_COMPLETED, FIRST_COMPLETED)
                or self._pending == 0
                or (raised and mode == FIRST_EXCEPTION)
            ):
                self._open = True
                self._gate.release()

    def take(self, timeout: float | None, waiting_on: Iterable[Any] = ()) -> list[Future[Any]]:
        """Wait until the gate opens (or *timeout*), close it again, return what finished.

        *waiting_on* (the futures not yet done) is only read by a deadlock watcher.
        """
        if timeout is None:
            watcher = _hooks.watcher  # a deadlock watcher, while one runs
            opened = self._gate.acquire() if watcher is None else watcher.take(self, waiting_on)
        elif timeout > 0:
            opened = self._gate.acquire(True, timeout)
        else:
            opened = self._gate.acquire(False)
        with self._lock:
            if self._open:
                if not opened:  # opened after our timeout: close it, it will not block
                    self._gate.acquire()
                self._open = False
            finished, self.finished = self.finished, []
        return finished


def _lock_all(fs: Iterable[Future[Any]]) -> list[Future[Any]]:
    ordered = sorted(fs, key=_sync.identity)
    for f in ordered:
        f._condition.acquire()
    return ordered


def _unlock_all(ordered: list[Future[Any]]) -> None:
    for f in ordered:
        f._condition.release()


def _remove_waiter(f: Future[Any], waiter: _Waiter) -> None:
    with f._condition:
        f._waiters.remove(waiter)  # type: ignore[arg-type]


def wait(
    fs: Iterable[Future[_T]], timeout: float | None = None, return_when: str = ALL_COMPLETED
) -> DoneAndNotDoneFutures:
    """Wait for the futures in *fs* (from any executors) to complete.

    *return_when* is ``FIRST_COMPLETED`` (any future finishes or is cancelled),
    ``FIRST_EXCEPTION`` (any future raises; else as ``ALL_COMPLETED``) or ``ALL_COMPLETED``.
    Waits at most *timeout* seconds (None: no limit).  Returns the named 2-tuple of sets
    ``(done, not_done)``; duplicates in *fs* appear once.

    Raises ``ValueError`` for any other *return_when*, even when no wait is needed (the
    stdlib only notices when it has to wait).
    """
    if return_when not in _RETURN_WHEN:
        raise ValueError(f"Invalid return condition: {return_when!r}")
    # Dicts, not sets: the futures are visited in the order given (a set's order is that of
    # the futures' addresses), so a run under a deterministic scheduler replays.
    futures: dict[Future[Any], None] = dict.fromkeys(fs)
    ordered = _lock_all(futures)
    try:
        done = {f for f in futures if f._state in _NOTIFIED}
        not_done = [f for f in futures if f not in done]
        if not not_done or (
            done
            and (
                return_when == FIRST_COMPLETED
                or (
                    return_when == FIRST_EXCEPTION
                    and any(not f.cancelled() and f.exception() is not None for f in done)
                )
            )
        ):
            return DoneAndNotDoneFutures(done, set(not_done))
        waiter = _Waiter(len(not_done), return_when)
        for f in not_done:
            f._waiters.append(waiter)  # type: ignore[arg-type]
    finally:
        _unlock_all(ordered)
    del ordered
    try:
        done.update(waiter.take(timeout, not_done))
    finally:
        for f in not_done:
            _remove_waiter(f, waiter)
    return DoneAndNotDoneFutures(done, {f for f in futures if f not in done})


def as_completed(fs: Iterable[Future[_T]], timeout: float | None = None) -> Iterator[Future[_T]]:
    """Yield the futures in *fs* (from any executors) as they complete.

    Futures already done come first; then each as it finishes or is cancelled.  Each future
    is yielded once, duplicates in *fs* included.  Raises ``TimeoutError`` ("N (of M)
    futures unfinished") if they have not all completed *timeout* seconds after the call
    (``__next__``, as this is a generator).
    """
    if timeout is not None:
        end_time = timeout + _sync.monotonic()
    pending: dict[Future[_T], None] = dict.fromkeys(fs)  # in the order given, as in wait()
    total = len(pending)
    ordered = _lock_all(pending)
    try:
        finished = [f for f in pending if f._state in _NOTIFIED]
        for f in finished:
            del pending[f]
        waiter = _Waiter(len(pending), _AS_COMPLETED)
        for f in pending:
            f._waiters.append(waiter)  # type: ignore[arg-type]
    finally:
        _unlock_all(ordered)
    del ordered
    try:
        while finished:
            yield finished.pop()  # pop as we yield: keep no reference to a yielded future
        while pending:
            if timeout is None:
                wait_timeout = None
            else:
                wait_timeout = end_time - _sync.monotonic()
                if wait_timeout < 0:
                    raise TimeoutError(f"{len(pending)} (of {total}) futures unfinished")
            finished = waiter.take(wait_timeout, pending)
            finished.reverse()  # pop() below then yields in completion order
            while finished:
                f = finished[-1]
                del pending[f]
                _remove_waiter(f, waiter)
                del f
                yield finished.pop()
    finally:
        for f in pending:
            _remove_waiter(f, waiter)
