"""Broken pools for the broken-pool spec (specs/test_broken_pools.py).

Most are executor_impl's ProcessPoolExecutor with one bug in what it does once a worker died
or an initializer failed: the pool's shared state (``PoolState``, which the manager thread
uses to break the pool) is given a subclass with the bug. The forgetful pool still ends its
workers and lets ``shutdown()`` return, so the spec fails on a bounded wait, never a hang.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
from typing import TYPE_CHECKING, Any, Callable

import executor_impl
from executor_impl._process_manager import BROKEN, PoolState

from . import Broken

if TYPE_CHECKING:
    from executor_impl._future import Future

FORK = (
    multiprocessing.get_context("fork")
    if "fork" in multiprocessing.get_all_start_methods()
    else None
)


class _WithState(executor_impl.ProcessPoolExecutor):
    """executor_impl's process pool whose state is of class ``state_class``."""

    state_class: type[PoolState] = PoolState

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
    ) -> None:
        super().__init__(
            max_workers, mp_context, initializer, initargs, max_tasks_per_child=max_tasks_per_child
        )
        self._state.__class__ = self.state_class


class _ForgetsTheCalls(PoolState):
    def fail(self, failed: list[tuple[Future[Any], bool]]) -> None:
        """The pool breaks (submit raises) but its calls' futures are never resolved."""


class ForgetsTheCallsOfABrokenPool(_WithState):
    """When a worker dies, the futures of every call the pool had stay pending for ever."""

    state_class = _ForgetsTheCalls


class _PlainRuntimeError(PoolState):
    def fail(self, failed: list[tuple[Future[Any], bool]]) -> None:
        for future, running in failed:
            if running or future.set_running_or_notify_cancel():
                future.set_exception(RuntimeError("a worker died"))


class FailsCallsWithRuntimeError(_WithState):
    """The calls of a broken pool fail with a plain RuntimeError, not BrokenProcessPool."""

    state_class = _PlainRuntimeError


class AcceptsCallsWhenBroken(executor_impl.ProcessPoolExecutor):
    """submit() checks for shutdown only: on a broken pool it queues the call for ever.

    Forked workers (where the platform has fork): no new worker is ever started for such a
    call, so nothing outlives the test."""

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
    ) -> None:
        if mp_context is None and max_tasks_per_child is None:
            mp_context = FORK
        super().__init__(
            max_workers, mp_context, initializer, initargs, max_tasks_per_child=max_tasks_per_child
        )

    @staticmethod
    def _check_open(state: PoolState) -> None:
        if state.shutdown_reason is not None:
            raise RuntimeError(state.shutdown_reason)


class _FlaggedLate(PoolState):
    """Fails the calls first, and only then marks the pool broken for submit()."""

    breaking = False

    def break_locked(self, cause: str | None) -> list[tuple[Future[Any], bool]]:
        failed = super().break_locked(cause)
        self.broken, self.breaking = None, True
        return failed

    def fail(self, failed: list[tuple[Future[Any], bool]]) -> None:
        super().fail(failed)
        if self.breaking:
            self.broken = BROKEN


class RefusesCallsOnlyAfterFailingThem(_WithState):
    """A dead worker's calls fail before the pool refuses new ones: a submit() in between
    is queued on the broken pool, for ever (the stdlib sets its flag first)."""

    state_class = _FlaggedLate


def _logged_and_ignored(initializer: Callable[..., object], *args: Any) -> None:
    try:
        initializer(*args)
    except Exception:
        logging.getLogger(__name__).exception("initializer failed; carrying on")


class IgnoresAFailingInitializer(concurrent.futures.ThreadPoolExecutor):
    """A thread pool that logs an initializer's exception and runs the calls anyway."""

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        if initializer is not None:
            initializer, initargs = _logged_and_ignored, (initializer, *initargs)
        super().__init__(max_workers, thread_name_prefix, initializer, initargs)


CASES = [
    Broken(f"{__name__}:{pool.__name__}", "test_broken_pools.py", bug)
    for pool, bug in [
        (ForgetsTheCallsOfABrokenPool, "a dead worker leaves every call's future pending"),
        (FailsCallsWithRuntimeError, "a dead worker fails the calls with a plain RuntimeError"),
        (AcceptsCallsWhenBroken, "submit() to a broken pool queues the call for ever"),
        (IgnoresAFailingInitializer, "a failing initializer is logged, the calls run anyway"),
    ]
]

RACE_ONLY_CASES = [
    Broken(
        f"{__name__}:{RefusesCallsOnlyAfterFailingThem.__name__}",
        "test_broken_pools.py",
        "a submit() after the calls failed but before the pool is flagged broken is lost",
        race_only=True,
    )
]
