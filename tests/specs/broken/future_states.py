"""Broken Futures for the Future state-transition spec (specs/test_future_states.py)."""

from __future__ import annotations

import concurrent.futures
from concurrent.futures import _base
from typing import Any

from . import Broken


class CancelsRunningFuture(concurrent.futures.Future[Any]):
    """cancel() of a RUNNING future succeeds (it must return False)."""

    def cancel(self) -> bool:
        with self._condition:
            if self._state == _base.RUNNING:
                self._state = _base.PENDING
        return super().cancel()


class ResultTwice(concurrent.futures.Future[Any]):
    """set_result() on a finished future overwrites it instead of raising InvalidStateError."""

    def set_result(self, result: Any) -> None:
        with self._condition:
            if self._state == _base.FINISHED:
                self._result = result
                return
        super().set_result(result)


class CallbacksInReverse(concurrent.futures.Future[Any]):
    """Done callbacks run in reverse registration order."""

    def _invoke_callbacks(self) -> None:
        self._done_callbacks.reverse()  # type: ignore[attr-defined]
        super()._invoke_callbacks()  # type: ignore[misc]


class CancelsRunning:
    """A backend whose Future lets cancel() succeed on a running future."""

    Future = CancelsRunningFuture
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor


class OverwritesResult:
    """A backend whose Future lets set_result() overwrite a finished one."""

    Future = ResultTwice
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor


class ReversesCallbacks:
    """A backend whose Future runs done callbacks last-added first."""

    Future = CallbacksInReverse
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor


CASES = [
    Broken(f"{__name__}:{backend.__name__}.ThreadPoolExecutor", "test_future_states.py", bug)
    for backend, bug in [
        (CancelsRunning, "cancel() of a running future returns True"),
        (OverwritesResult, "set_result() of a finished future overwrites it"),
        (ReversesCallbacks, "done callbacks run in reverse registration order"),
    ]
]
