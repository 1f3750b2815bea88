"""Future: the result of an asynchronous computation, and its state machine.

Legal transitions (the Future spec in ``specs/`` mirrors this table)::

    state                   cancel()          set_running_or_    set_result()
                                              notify_cancel()    set_exception()
    ----------------------  ----------------  -----------------  -----------------
    PENDING                 -> CANCELLED      -> RUNNING         -> FINISHED
                               returns True      returns True
    RUNNING                 returns False     RuntimeError       -> FINISHED
    CANCELLED               returns True      -> CANCELLED_AND_  InvalidStateError
                                                 NOTIFIED, False
    CANCELLED_AND_NOTIFIED  returns True      RuntimeError       InvalidStateError
    FINISHED                returns False     RuntimeError       InvalidStateError

``done()`` is true in the last three states.  Threads blocked in ``result()`` /
``exception()`` wake on entering CANCELLED or FINISHED; ``wait()`` / ``as_completed()``
waiters are told on entering CANCELLED_AND_NOTIFIED or FINISHED, exactly as in
``concurrent.futures`` (an executor calls ``set_running_or_notify_cancel()`` on each future it
dequeues, which is what turns a user's ``cancel()`` into a notification).

How this differs from the stdlib's ``Future`` inside (the behaviour above is the same):

* No ``threading.Condition`` per future.  A future owns one plain lock (``_condition``, named
  so that ``concurrent.futures.wait`` and ``as_completed``, which lock each future by that
  name, work on our futures too); the waiter list, the callback list and the list of parked
  threads are created only when first needed.  A pending future costs about a tenth of the
  stdlib's memory.
* A thread that blocks in ``result()`` parks on a lock of its own, which the completing
  thread releases: nobody else is woken, nothing is re-checked in a loop.
* Reads of a terminal state take no lock: ``_result`` / ``_exception`` are written before
  ``_state`` under the lock, and a future never leaves a terminal state.
* A "falsy" exception (one whose ``__bool__`` is false) is still raised by ``result()``: the
  stdlib tests ``if self._exception:`` and returns ``None`` instead.

The class derives from ``concurrent.futures.Future`` (without running its ``__init__``) because
``asyncio.wrap_future`` and therefore ``loop.run_in_executor`` accept nothing else.
"""

from __future__ import annotations

import logging
from concurrent.futures import _base
from typing import TYPE_CHECKING, Any, TypeVar

from . import _hooks, _sync

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "CANCELLED",
    "CANCELLED_AND_NOTIFIED",
    "FINISHED",
    "PENDING",
    "RUNNING",
    "BrokenExecutor",
    "CancelledError",
    "Future",
    "InvalidStateError",
    "TimeoutError",
]

_T = TypeVar("_T")

# The stdlib's exception classes, by identity: `except concurrent.futures.CancelledError`
# must catch ours.  (On 3.11+ TimeoutError is the builtin; before, the module's own class.)
CancelledError = _base.CancelledError
TimeoutError = _base.TimeoutError
InvalidStateError = _base.InvalidStateError
BrokenExecutor = _base.BrokenExecutor

# The stdlib's state strings, so that code which reads `future._state` (the stdlib's own
# wait/as_completed among it) sees the values it expects.
PENDING: str = _base.PENDING
RUNNING: str = _base.RUNNING
CANCELLED: str = _base.CANCELLED
CANCELLED_AND_NOTIFIED: str = _base.CANCELLED_AND_NOTIFIED
FINISHED: str = _base.FINISHED

_CANCELLED_STATES = frozenset((CANCELLED, CANCELLED_AND_NOTIFIED))
_DONE_STATES = frozenset((CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED))
_DESCRIPTION = {
    PENDING: "pending",
    RUNNING: "running",
    CANCELLED: "cancelled",
    CANCELLED_AND_NOTIFIED: "cancelled",
    FINISHED: "finished",
}

LOGGER = logging.getLogger("concurrent.futures")


class Future(_base.Future[_T]):
    """The result of an asynchronous computation (``concurrent.futures.Future``)."""

    __slots__ = (
        "_blocked",
        "_condition",
        "_done_callbacks",
        "_exception",
        "_result",
        "_state",
        "_waiter_list",
    )

    def __init__(self) -> None:
        """Initialise a pending future. Should not be called by clients, only by executors."""
        # Deliberately no super().__init__(): it would allocate the Condition we avoid.
        # A plain lock where the stdlib has a Condition: code that locks futures by this
        # name (the stdlib's wait/as_completed) only calls acquire() and release().
        self._condition = _sync.allocate_lock()  # type: ignore[assignment]
        self._state = PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        # Created on first use; None means "none yet".
        self._waiter_list: list[Any] | None = None  # wait()/as_completed() waiters
        self._done_callbacks: list[Callable[[Future[_T]], object]] | None = None
        self._blocked: list[Any] | None = None  # parked locks of threads in result()

    # -- stdlib compatibility --------------------------------------------------------------

    @property  # a plain attribute in the stdlib
    def _waiters(self) -> list[Any]:  # type: ignore[override]
        """The waiter list, created on demand (``concurrent.futures.wait`` appends to it)."""
        waiters = self._waiter_list
        if waiters is None:
            waiters = self._waiter_list = []
        return waiters

    def __repr__(self) -> str:
        # No lock: repr may be called while the lock is held (InvalidStateError's message).
        state = self._state
        name = type(self).__name__
        if state == FINISHED:
            exception = self._exception
            if exception is not None:
                outcome = f"raised {type(exception).__name__}"
            else:
                outcome = f"returned {type(self._result).__name__}"
            return f"<{name} at {id(self):#x} state=finished {outcome}>"
        return f"<{name} at {id(self):#x} state={_DESCRIPTION[state]}>"

    # -- queries -----------------------------------------------------------------------------

    def cancelled(self) -> bool:
        """Return True if the future was cancelled."""
        return self._state in _CANCELLED_STATES

    def running(self) -> bool:
        """Return True if the future is currently executing."""
        return self._state == RUNNING

    def done(self) -> bool:
        """Return True if the future was cancelled or finished executing."""
        return self._state in _DONE_STATES

    def result(self, timeout: float | None = None) -> _T:
        """Return the call's result, waiting up to *timeout* seconds (None: no limit).

        Raises ``CancelledError`` if the future was cancelled, ``TimeoutError`` if it is not
        done in time, and the call's own exception if it raised.
        """
        if self._state not in _DONE_STATES:
            self._wait_until_done(timeout)
        state = self._state
        if state == FINISHED:
            exception = self._exception
            if exception is None:
                return self._result  # type: ignore[no-any-return]
            try:
                raise exception
            finally:
                # Break the cycle exception -> traceback -> this frame -> exception.
                exception = None
                self = None  # type: ignore[assignment]
        if state in _CANCELLED_STATES:
            raise CancelledError()
        raise TimeoutError()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Return the exception the call raised (None if it returned), waiting as ``result``.

        Raises ``CancelledError`` if the future was cancelled, ``TimeoutError`` if it is not
        done in time.
        """
        if self._state not in _DONE_STATES:
            self._wait_until_done(timeout)
        state = self._state
        if state == FINISHED:
            return self._exception
        if state in _CANCELLED_STATES:
            raise CancelledError()
        raise TimeoutError()

    def _wait_until_done(self, timeout: float | None) -> None:
        """Block until the future is done or *timeout* seconds passed; the caller re-reads."""
        if timeout is not None and timeout <= 0:
            return  # like Condition.wait: a non-positive timeout does not block
        with self._condition:
            if self._state in _DONE_STATES:
                return
            parked = _sync.allocate_lock()
            parked.acquire()
            if self._blocked is None:
                self._blocked = [parked]
            else:
                self._blocked.append(parked)
        if timeout is None:
            watcher = _hooks.watcher  # a deadlock watcher, while one runs
            if watcher is None:
                parked.acquire()
            else:
                watcher.park(self, parked)
        elif not parked.acquire(True, timeout):
            with self._condition:
                blocked = self._blocked
                if blocked is not None and parked in blocked:
                    blocked.remove(parked)

    # -- callbacks ---------------------------------------------------------------------------

    def add_done_callback(self, fn: Callable[[Future[_T]], object]) -> None:
        """Call ``fn(future)`` when the future is done, or now if it already is.

        Callbacks run in the order they were added, in the thread that completes (or
        cancels) the future; an ``Exception`` a callback raises is logged on the
        ``concurrent.futures`` logger and does not stop the others.
        """
        with self._condition:
            if self._state not in _DONE_STATES:
                if self._done_callbacks is None:
                    self._done_callbacks = [fn]
                else:
                    self._done_callbacks.append(fn)
                return
        self._run_callbacks((fn,))

    def _wake_and_call_back(self, blocked: list[Any] | None, callbacks: list[Any] | None) -> None:
        """Wake the threads parked in ``result()``, then run the callbacks (lock released)."""
        if blocked is not None:
            for parked in blocked:
                parked.release()
        if callbacks is not None:
            self._run_callbacks(callbacks)

    def _run_callbacks(self, callbacks: Sequence[Callable[[Future[_T]], object]]) -> None:
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                LOGGER.exception("exception calling callback for %r", self)

    # -- transitions -------------------------------------------------------------------------

    def cancel(self) -> bool:
        """Cancel the future if it has not started; return True if it is (now) cancelled.

        A running or finished future cannot be cancelled: the call returns False.
        """
        with self._condition:
            state = self._state
            if state != PENDING:
                return state in _CANCELLED_STATES
            self._state = CANCELLED
            blocked, self._blocked = self._blocked, None
            callbacks, self._done_callbacks = self._done_callbacks, None
        self._wake_and_call_back(blocked, callbacks)
        return True

    def set_running_or_notify_cancel(self) -> bool:
        """Mark the future running (True) or, if it was cancelled, notify waiters (False).

        For executors and tests only: an executor calls it once before running the work and
        skips the work when it returns False.  Raises ``RuntimeError`` in any other state.
        """
        with self._condition:
            state = self._state
            if state == PENDING:
                self._state = RUNNING
                return True
            if state == CANCELLED:
                self._state = CANCELLED_AND_NOTIFIED
                if self._waiter_list:
                    for waiter in self._waiter_list:
                        waiter.add_cancelled(self)
                return False
        LOGGER.critical("Future %s in unexpected state: %s", id(self), state)
        raise RuntimeError("Future in unexpected state")

    def set_result(self, result: _T) -> None:
        """Finish the future with *result*. For executors and tests only.

        Raises ``InvalidStateError`` if the future is already done.
        """
        with self._condition:
            if self._state in _DONE_STATES:
                raise InvalidStateError(f"{self._state}: {self!r}")
            self._result = result
            self._state = FINISHED
            if self._waiter_list:
                for waiter in self._waiter_list:
                    waiter.add_result(self)
            blocked, self._blocked = self._blocked, None
            callbacks, self._done_callbacks = self._done_callbacks, None
        self._wake_and_call_back(blocked, callbacks)

    def set_exception(self, exception: BaseException | None) -> None:
        """Finish the future with *exception*. For executors and tests only.

        Raises ``InvalidStateError`` if the future is already done.
        """
        with self._condition:
            if self._state in _DONE_STATES:
                raise InvalidStateError(f"{self._state}: {self!r}")
            self._exception = exception
            self._state = FINISHED
            if self._waiter_list:
                for waiter in self._waiter_list:
                    waiter.add_exception(self)
            blocked, self._blocked = self._blocked, None
            callbacks, self._done_callbacks = self._done_callbacks, None
        self._wake_and_call_back(blocked, callbacks)
