"""The caller reading its own answer: ``ProcessFuture`` and its direct reads from a worker's
socket (see ``process.py`` for the data-flow picture, ``_process_manager`` for the pool state).

Direct answers.  A call that ``submit`` hands to an idle worker is *claimed* for the thread
that will wait for it: the manager stops watching that worker's socket, and ``result()``
(or ``exception()``, ``done()``, ``running()``) reads the answer from the socket itself.  The
answer then reaches the waiting thread without a hop through the manager thread, which is not
woken at all.  (Only with epoll, Linux's selector, where a registration changed by another
thread applies to a select() already waiting; elsewhere the manager reads every answer.)  A
claim nobody came for ends as soon as the pool or the future is used otherwise (the next
``submit``, a done callback, ``wait()`` or ``as_completed()``, a shutdown, another call sent
to that worker): the manager then watches the socket again.  A claim can also be taken in
``result()`` when the call is the only one in flight on its worker.  A dead worker is seen at
once either way: the manager always watches its process sentinel, and a thread reading
directly watches it too.  The reading thread polls for up to ``SPIN_SECONDS`` (50 us) before
it sleeps, as the worker does for its next call: on an idle machine the two wake-ups a sleeping
round trip pays cost more than a short call itself (see ``_process_worker.SPIN_SECONDS``).

A worker's socket has one reader at a time, whoever holds its ``read_lock`` (the manager, or
a thread reading its answer directly); the reader keeps it until what it read is settled, so
that nobody waits for an answer somebody else already took.

Lock order, as in ``_process_manager``: the pool's ``lock``, then its ``watch_lock``; a
future's own lock, then ``watch_lock`` (``wait()`` reaches a future's hook holding the
futures' locks); ``watch_lock`` is never held while taking another lock.  A thread reading
directly only *tries* a worker's ``read_lock`` (the manager alone waits for it, holding no
other lock), and takes ``lock`` again only to settle what it read.
"""

from __future__ import annotations

import select
import weakref
from typing import TYPE_CHECKING, Any, TypeVar

from . import _sync
from ._future import _DONE_STATES, RUNNING, Future
from ._process_io import Outcome, parse_frames, read_frames
from ._process_manager import Completion, complete
from ._process_worker import SPIN_SECONDS, spin

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._process_io import Worker
    from ._process_manager import PoolState

__all__ = ["ProcessFuture", "drop_claim", "read_directly"]

# A thread reading its answer directly re-checks its future at least this often (ms): a
# worker's end wakes it at once; this only bounds what nothing else would wake it for.
_POLL_SLICE_MS = 1000

_T = TypeVar("_T")


def _read_until(
    worker: Worker, future: ProcessFuture[Any], deadline: float | None, outcomes: list[Outcome]
) -> None:
    """Read *worker*'s answers into *outcomes* until the one for *future* is there, the
    worker ended, or *deadline* passed; wait in ``poll()`` on its socket and its sentinel."""
    task_id = future.task_id
    if not read_frames(worker, outcomes) or any(o[0] == task_id for o in outcomes):
        return
    poller = worker.poller
    if poller is None:
        poller = worker.poller = select.poll()
        poller.register(worker.fd, select.POLLIN)
        poller.register(worker.process.sentinel, select.POLLIN)
    while future._state not in _DONE_STATES:  # it is, if the pool broke meanwhile
        timeout, spin_for = _POLL_SLICE_MS, SPIN_SECONDS
        if deadline is not None:
            left = deadline - _sync.monotonic()
            if left <= 0:
                return
            timeout, spin_for = min(timeout, int(left * 1000) + 1), min(spin_for, left)
        # A short call's answer comes before this process would have fallen asleep.  The
        # spin's bound is CPU time, on the real clock: a virtual clock could leave it
        # unbounded (spin's own default clock).
        ready = spin(poller, spin_for) or poller.poll(timeout)
        if not ready:
            continue
        start = len(outcomes)
        if not read_frames(worker, outcomes) or len(ready) > 1 or ready[0][0] != worker.fd:
            return  # the worker ended: the manager notices it too
        if any(o[0] == task_id for o in outcomes[start:]):
            return


class ProcessFuture(Future[_T]):
    """A process pool's future: reads its answer from the worker's socket itself when it can
    (see the module docstring), else behaves exactly as ``Future``.

    ``result()``, ``exception()``, ``done()`` and ``running()`` read a claimed answer
    directly (the last two only what is already there); ``add_done_callback()`` and the
    waiter list of ``wait()`` / ``as_completed()`` hand it back to the manager thread.
    """

    __slots__ = ("_pool", "task_id")

    def __init__(self, pool: PoolState) -> None:
        super().__init__()
        # Weakly: a future kept after its pool is gone (an exception's traceback holds one)
        # must not keep the pool's state, its manager thread and workers' objects alive.
        # While the call runs, the manager thread holds the state.
        self._pool = weakref.ref(pool)
        self.task_id = 0  # set when the call is queued

    def _claimed(self, pool: PoolState | None) -> bool:
        """Whether this future's answer waits for somebody to come for it (no lock: only
        ``submit`` claims a future for later, before returning it)."""
        if pool is None:
            return False
        worker = pool.dormant
        return worker is not None and worker.claim is self

    def _alone(self, pool: PoolState) -> bool:
        """Whether this call is the only one in flight on its worker, unclaimed (a hint,
        read without the lock: ``read_directly`` checks again)."""
        entry = pool.inflight.get(self.task_id)
        if entry is None:
            return False
        worker = entry[1]
        return worker.claim is None and len(worker.tasks) == 1

    def _wait_until_done(self, timeout: float | None) -> None:
        pool = self._pool()
        if pool is not None and pool.direct and self._state == RUNNING:
            if timeout is not None and timeout <= 0:
                if self._claimed(pool):
                    read_directly(pool, self, _sync.monotonic())  # what is there, if any
                return
            if self._claimed(pool) or self._alone(pool):
                deadline = None if timeout is None else _sync.monotonic() + timeout
                if read_directly(pool, self, deadline):
                    return
                if deadline is not None:
                    timeout = deadline - _sync.monotonic()
        super()._wait_until_done(timeout)

    def _read_what_is_there(self) -> None:
        """Complete this future from its claimed answer if the worker has sent it."""
        if self._state == RUNNING:
            pool = self._pool()
            if pool is not None and self._claimed(pool):
                read_directly(pool, self, _sync.monotonic())

    def done(self) -> bool:
        """Return True if the future was cancelled or finished executing."""
        self._read_what_is_there()
        return super().done()

    def running(self) -> bool:
        """Return True if the future is currently executing."""
        self._read_what_is_there()
        return super().running()

    def _drop_claim(self) -> None:
        pool = self._pool()
        if pool is not None and self._claimed(pool):
            drop_claim(pool, self)

    def add_done_callback(self, fn: Callable[[Future[_T]], object]) -> None:
        """As ``Future.add_done_callback``; the callback runs in the manager thread (or in
        the thread that completes or has completed the future)."""
        self._drop_claim()
        super().add_done_callback(fn)

    @property
    def _waiters(self) -> list[Any]:  # type: ignore[override]
        """The waiter list (``wait()`` and ``as_completed()`` append to it, holding this
        future's lock): somebody waits, so the manager completes the future from now on."""
        self._drop_claim()
        return Future._waiters.fget(self)  # type: ignore[attr-defined,no-any-return]


def drop_claim(pool: PoolState, future: ProcessFuture[Any]) -> None:
    """End *future*'s claim if nobody came for it: the manager reads its answer.

    Takes only ``watch_lock``: ``wait()`` calls this (through ``_waiters``) holding the
    locks of all its futures, some of which ``dispatch_locked`` may be waiting for.
    """
    with pool.watch_lock:
        worker = pool.dormant
        if worker is not None and worker.claim is future:
            pool.unclaim_wlocked(worker)


def read_directly(pool: PoolState, future: ProcessFuture[Any], deadline: float | None) -> bool:
    """Read *future*'s answer from its worker's socket in this thread, waiting until
    *deadline* (``_sync.monotonic()``; ``None``: no limit) or only for what is there
    (a deadline already passed).

    Possible when *future* is claimed and nobody has come for it yet, or when its call
    is the only one in flight on its worker and nobody else reads that socket.  Returns
    True when *future* is done or *deadline* passed; False when the caller must wait the
    usual way: reading directly was not possible, or the worker ended first (the manager
    takes it from there).
    """
    with pool.lock:
        entry = pool.inflight.get(future.task_id)
        if entry is None:
            return future._state in _DONE_STATES
        worker = entry[1]
        with pool.watch_lock:
            if worker.claim is None and len(worker.tasks) == 1:
                worker.claim = future
                pool.watch_wlocked(worker)  # the manager stops waiting for this answer
            elif pool.dormant is worker and worker.claim is future:
                pool.dormant = None  # claimed, and now somebody came
            else:
                return False
            if not worker.read_lock.acquire(False):  # the manager is reading it
                pool.unclaim_wlocked(worker)
                return False
    outcomes: list[Outcome] = []
    completed: list[Completion] = []
    try:
        try:
            _read_until(worker, future, deadline, outcomes)
        except BaseException:  # KeyboardInterrupt: parse what it left, then settle
            parse_frames(worker, outcomes)
            raise
        finally:
            with pool.lock:
                completed = pool.settle_locked(outcomes)
                if completed:
                    pool.dispatch_locked()  # the worker is free for pending calls
                if worker.claim is future:  # no answer yet: the manager waits for it
                    with pool.watch_lock:
                        pool.unclaim_wlocked(worker)
    finally:
        worker.read_lock.release()
        complete(completed)
    if future._state in _DONE_STATES:
        return True
    return deadline is not None and _sync.monotonic() >= deadline
