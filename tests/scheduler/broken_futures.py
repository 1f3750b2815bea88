"""Futures with a race: each is right whenever its calls run one at a time, so only a parallel
section (``specs/test_linearizability.py``) catches it, under some interleavings.

Each class below ``*Future`` is also a backend namespace (``Future`` and
``ThreadPoolExecutor``), for ``--executor=tests.scheduler.broken_futures:NAME.ThreadPoolExecutor``.
"""

from __future__ import annotations

import concurrent.futures
from concurrent.futures import _base
from typing import Any, Callable

import executor_impl
from executor_impl import _future


class CancelInTwoStepsFuture(concurrent.futures.Future[Any]):
    """cancel() checks the state and sets CANCELLED under two separate holds of the lock: a
    set_running_or_notify_cancel() or set_result() in between also succeeds."""

    def cancel(self) -> bool:
        with self._condition:
            if self._state in (_base.RUNNING, _base.FINISHED):
                return False
            if self._state in (_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED):
                return True
        with self._condition:  # the bug: the state may have changed since
            self._state = _base.CANCELLED
            self._condition.notify_all()
        self._invoke_callbacks()  # type: ignore[attr-defined]
        return True


class UnlockedCallbackFuture(concurrent.futures.Future[Any]):
    """add_done_callback() asks done() and queues the callback under separate holds of the
    lock: a set_result() in between runs the callbacks before this one is queued, and it is
    never called."""

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future[Any]], object]) -> None:
        if not self.done():
            with self._condition:  # the bug: the future may be done by now
                self._done_callbacks.append(fn)  # type: ignore[attr-defined]
            return
        fn(self)


class SetResultInTwoStepsFuture(executor_impl.Future[Any]):
    """executor_impl's Future whose set_result() checks for done under the lock, then
    finishes the future under a second hold: two set_result() calls (or a cancel()) can both
    pass the check."""

    def set_result(self, result: Any) -> None:
        with self._condition:
            if self._state in (_future.CANCELLED, _future.CANCELLED_AND_NOTIFIED):
                raise _future.InvalidStateError(f"{self._state}: {self!r}")
            if self._state == _future.FINISHED:
                raise _future.InvalidStateError(f"{self._state}: {self!r}")
        with self._condition:  # the bug
            self._result = result
            self._state = _future.FINISHED
            blocked, self._blocked = self._blocked, None
            callbacks, self._done_callbacks = self._done_callbacks, None
        self._wake_and_call_back(blocked, callbacks)


class CancelInTwoSteps:
    """A backend whose Future's cancel() races with set_running_or_notify_cancel()."""

    Future = CancelInTwoStepsFuture
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor


class UnlockedCallback:
    """A backend whose Future can lose a done callback added while it completes."""

    Future = UnlockedCallbackFuture
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor


class SetResultInTwoSteps:
    """A backend (executor_impl's pool) whose Future can be finished twice."""

    Future = SetResultInTwoStepsFuture
    ThreadPoolExecutor = executor_impl.ThreadPoolExecutor
