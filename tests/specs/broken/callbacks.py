"""Broken done callbacks for the callbacks spec (specs/test_callbacks.py).

Each backend is the stdlib's ThreadPoolExecutor handing out futures of a ``Future`` subclass
with one bug in its callback handling. The pool makes its futures itself, so
:class:`GivesFuturesClass` gives each one the broken class as soon as ``submit`` made it,
before the worker may complete it.
"""

from __future__ import annotations

import concurrent.futures
import threading
from concurrent.futures import _base
from typing import Any, Callable, ClassVar, TypeVar

from . import Broken

T = TypeVar("T")

SWAP_TIMEOUT = 60.0
"""Seconds a worker waits for ``submit`` to give the future its class (it takes microseconds)."""


class GivesFuturesClass:
    """Mixin for a thread pool class: its futures are instances of ``future_class`` (a
    subclass of the pool's own Future class with the same layout).

    ``submit`` changes the class of the future the pool made; the task waits until that is
    done, so the worker completes the future (and calls back) through the broken class.
    """

    future_class: ClassVar[type[concurrent.futures.Future[Any]]]

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Any:
        swapped = threading.Event()

        def call() -> T:
            swapped.wait(SWAP_TIMEOUT)
            return fn(*args, **kwargs)

        future: _base.Future[T] = super().submit(call)  # type: ignore[misc]
        future.__class__ = self.future_class
        swapped.set()
        return future


class PoolOf(GivesFuturesClass, concurrent.futures.ThreadPoolExecutor):
    """The stdlib's ThreadPoolExecutor, handing out futures of ``future_class``."""


def _call_each(future: concurrent.futures.Future[Any], callbacks: list[Any]) -> None:
    """The stdlib's way: call each callback, log and ignore what it raises."""
    for callback in callbacks:
        try:
            callback(future)
        except Exception:
            _base.LOGGER.exception("exception calling callback for %r", future)


# ------------------------------------------------------------------------------ the bugs


class NotifyCallsBackAgain(concurrent.futures.Future[Any]):
    """When the worker dequeues a cancelled future, "notify" calls the callbacks a second
    time (cancel() already called them)."""

    def set_running_or_notify_cancel(self) -> bool:
        if super().set_running_or_notify_cancel():
            return True
        self._invoke_callbacks()  # type: ignore[attr-defined]
        return False


class LateCallbackQueued(concurrent.futures.Future[Any]):
    """add_done_callback() on a done future queues the callback instead of calling it: it is
    never called."""

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future[Any]], object]) -> None:
        with self._condition:
            self._done_callbacks.append(fn)  # type: ignore[attr-defined]


class RaisingCallbackStopsTheRest(concurrent.futures.Future[Any]):
    """One try around the loop: the first callback that raises is logged, the ones after it
    are never called."""

    def _invoke_callbacks(self) -> None:
        try:
            for callback in self._done_callbacks:  # type: ignore[attr-defined]
                callback(self)
        except Exception:
            _base.LOGGER.exception("exception calling callback for %r", self)


class CallsBackBeforeDone(concurrent.futures.Future[Any]):
    """set_result() calls the callbacks first, then finishes the future: a callback sees it
    still running."""

    def set_result(self, result: Any) -> None:
        with self._condition:
            callbacks = list(self._done_callbacks)  # type: ignore[attr-defined]
            self._done_callbacks.clear()  # type: ignore[attr-defined]
        _call_each(self, callbacks)
        super().set_result(result)


class UnlockedAddDoneCallback(concurrent.futures.Future[Any]):
    """add_done_callback() reads the state without the lock: a callback added while the
    worker completes the future can be appended after the worker called the list, and is
    lost. Only some interleavings show it."""

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future[Any]], object]) -> None:
        if self.done():
            _call_each(self, [fn])
            return
        self._done_callbacks.append(fn)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ backends
# Each holds the pool (``MODULE:Backend.ThreadPoolExecutor``) and its ``Future``.


class CallsBackAgainOnNotify:
    Future = NotifyCallsBackAgain

    class ThreadPoolExecutor(PoolOf):
        future_class = NotifyCallsBackAgain


class NeverCallsLateCallbacks:
    Future = LateCallbackQueued

    class ThreadPoolExecutor(PoolOf):
        future_class = LateCallbackQueued


class StopsAtARaisingCallback:
    Future = RaisingCallbackStopsTheRest

    class ThreadPoolExecutor(PoolOf):
        future_class = RaisingCallbackStopsTheRest


class CallsBackTooEarly:
    Future = CallsBackBeforeDone

    class ThreadPoolExecutor(PoolOf):
        future_class = CallsBackBeforeDone


class LosesRacingCallbacks:
    Future = UnlockedAddDoneCallback

    class ThreadPoolExecutor(PoolOf):
        future_class = UnlockedAddDoneCallback


class SubmitWaitsForShutdown:
    """``shutdown(wait=True)`` holds the lock ``submit()`` takes while it waits for the calls:
    a done callback's ``submit()`` then waits for the shutdown, which waits for the callback
    (futurist's deadlock, in an executor of no package the known bug is scoped to)."""

    class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._submit_lock = threading.Lock()

        def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Any:
            with self._submit_lock:
                return super().submit(fn, *args, **kwargs)

        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            with self._submit_lock:
                super().shutdown(wait=wait, cancel_futures=cancel_futures)


SPEC = "test_callbacks.py"

CASES = [
    Broken(f"{__name__}:{name}.ThreadPoolExecutor", SPEC, bug)
    for name, bug in [
        (
            "CallsBackAgainOnNotify",
            "a cancelled future's callbacks are called again when the worker dequeues it",
        ),
        (
            "NeverCallsLateCallbacks",
            "a callback added to a done future is queued, never called",
        ),
        (
            "StopsAtARaisingCallback",
            "a callback that raises stops the callbacks after it",
        ),
        (
            "CallsBackTooEarly",
            "callbacks are called before the future is finished",
        ),
        (
            "SubmitWaitsForShutdown",
            "a done callback's submit() during shutdown(wait=True) deadlocks",
        ),
    ]
]

RACE_ONLY_CASES = [
    Broken(
        f"{__name__}:LosesRacingCallbacks.ThreadPoolExecutor",
        SPEC,
        "a callback added while the future completes can be lost (unlocked state check)",
        race_only=True,
    ),
]
