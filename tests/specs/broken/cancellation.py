"""Broken cancellation for the cancellation spec (specs/test_cancellation.py).

Each backend is one of executor_impl's pools with one bug in how it cancels. They build on
executor_impl rather than on the stdlib because the stdlib's pools do not notify waiters of
the futures ``shutdown(cancel_futures=True)`` cancels (gh-109934, gh-136655): a stdlib-based
broken pool would fail ``test_shutdown_cancel_futures_wakes_waiters`` by that bug alone,
whatever the state machine finds.

Where the bug lives in the future, the pool gives each future it makes a class of its own
(``__class__`` assignment, right after ``submit``): the bugs matter for calls still queued
behind a busy worker, which the worker has not touched by then.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, ClassVar, TypeVar

import executor_impl
from executor_impl import _future

from . import Broken

T = TypeVar("T")


class _DropsOutcomeOnceCancelled(executor_impl.Future[Any]):
    """A future whose pool, having run a call whose future got cancelled meanwhile, drops
    the outcome instead of failing on InvalidStateError (so the bug shows in the future's
    states, not as a dead worker)."""

    __slots__ = ()

    def set_result(self, result: Any) -> None:
        try:
            super().set_result(result)
        except executor_impl.InvalidStateError:
            pass

    def set_exception(self, exception: BaseException | None) -> None:
        try:
            super().set_exception(exception)
        except executor_impl.InvalidStateError:
            pass


class RunsEvenIfCancelled(_DropsOutcomeOnceCancelled):
    """The worker ignores what set_running_or_notify_cancel() says: a call whose future was
    cancelled while queued still runs (its waiters are notified, then it runs anyway)."""

    __slots__ = ()

    def set_running_or_notify_cancel(self) -> bool:
        super().set_running_or_notify_cancel()
        return True


class CancelsRunning(_DropsOutcomeOnceCancelled):
    """cancel() takes "not done" for "not started": it cancels a running call too (whose
    outcome the pool then drops)."""

    __slots__ = ()

    def cancel(self) -> bool:
        with self._condition:
            if self._state == _future.RUNNING:
                self._state = _future.PENDING
        return super().cancel()


class MarksRunningUnlocked(_DropsOutcomeOnceCancelled):
    """set_running_or_notify_cancel() reads PENDING, then takes the lock to write RUNNING:
    a cancel() in between returns True and is overwritten, and the call runs."""

    __slots__ = ()

    def set_running_or_notify_cancel(self) -> bool:
        if self._state == _future.PENDING:
            with self._condition:
                self._state = _future.RUNNING
            return True
        return super().set_running_or_notify_cancel()


class _ThreadPoolOf(executor_impl.ThreadPoolExecutor):
    """executor_impl's thread pool handing out futures of ``future_class``."""

    future_class: ClassVar[type[executor_impl.Future[Any]]]

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> executor_impl.Future[T]:
        future = super().submit(fn, *args, **kwargs)
        future.__class__ = self.future_class
        return future


class _ProcessPoolOf(executor_impl.ProcessPoolExecutor):
    """executor_impl's process pool handing out futures of ``future_class``."""

    future_class: ClassVar[type[executor_impl.Future[Any]]]

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> executor_impl.Future[T]:
        future = super().submit(fn, *args, **kwargs)
        future.__class__ = self.future_class
        return future


# ------------------------------------------------------------------------------ the pools


class WorkerIgnoresCancel:
    """Thread pool: a cancelled queued call still runs."""

    class ThreadPoolExecutor(_ThreadPoolOf):
        future_class = RunsEvenIfCancelled


class ProcessWorkerIgnoresCancel:
    """Process pool: a call cancelled while pending is still sent to a worker and runs."""

    class ProcessPoolExecutor(_ProcessPoolOf):
        future_class = RunsEvenIfCancelled


class CancelOfRunning:
    """Thread pool: cancel() of a running call returns True."""

    class ThreadPoolExecutor(_ThreadPoolOf):
        future_class = CancelsRunning


class CheckThenMark:
    """Thread pool: a cancel() racing with the worker's start is lost (race only)."""

    class ThreadPoolExecutor(_ThreadPoolOf):
        future_class = MarksRunningUnlocked


class IgnoresCancelFutures:
    """Thread pool: shutdown() accepts cancel_futures and ignores it."""

    class ThreadPoolExecutor(executor_impl.ThreadPoolExecutor):
        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            super().shutdown(wait)


class CancelFuturesFailsRunning:
    """Thread pool: shutdown(cancel_futures=True) ends every outstanding future, the running
    ones too (with CancelledError as their exception, since cancel() refuses them)."""

    class ThreadPoolExecutor(executor_impl.ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.outstanding: weakref.WeakSet[executor_impl.Future[Any]] = weakref.WeakSet()

        def submit(
            self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
        ) -> executor_impl.Future[T]:
            future = super().submit(fn, *args, **kwargs)
            future.__class__ = _DropsOutcomeOnceCancelled
            self.outstanding.add(future)
            return future

        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            if cancel_futures:
                for future in list(self.outstanding):
                    if not future.cancel():
                        future.set_exception(executor_impl.CancelledError())
            super().shutdown(wait, cancel_futures=cancel_futures)


SPEC = "test_cancellation.py"

CASES = [
    Broken(f"{__name__}:{backend.__name__}.{pool}", SPEC, bug)
    for backend, pool, bug in [
        (WorkerIgnoresCancel, "ThreadPoolExecutor", "a cancelled queued call still runs"),
        (
            ProcessWorkerIgnoresCancel,
            "ProcessPoolExecutor",
            "a process pool sends a call cancelled while pending to a worker",
        ),
        (CancelOfRunning, "ThreadPoolExecutor", "cancel() of a running call returns True"),
        (
            IgnoresCancelFutures,
            "ThreadPoolExecutor",
            "shutdown(cancel_futures=True) leaves the queued calls to run",
        ),
        (
            CancelFuturesFailsRunning,
            "ThreadPoolExecutor",
            "shutdown(cancel_futures=True) ends the running calls too",
        ),
    ]
]

RACE_ONLY_CASES = [
    Broken(
        f"{__name__}:CheckThenMark.ThreadPoolExecutor",
        SPEC,
        "a cancel() between the worker's read of PENDING and its write of RUNNING is lost",
        race_only=True,
    ),
]
