"""Broken pool sizes for the pool-sizing spec (specs/test_pool_sizing.py).

Thread pools are the stdlib's ThreadPoolExecutor, process pools executor_impl's
ProcessPoolExecutor, each with one bug in how many workers it keeps or names.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable

import executor_impl

from . import Broken


class OneThreadTooMany(concurrent.futures.ThreadPoolExecutor):
    """Off by one: starts a thread while fewer than max_workers + 1 run (`<=` for `<`)."""

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(max_workers, thread_name_prefix, initializer, initargs)
        self._max_workers += 1


class AcceptsNoWorkers(concurrent.futures.ThreadPoolExecutor):
    """max_workers <= 0 is taken to mean one worker instead of raising ValueError."""

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        if max_workers is not None and max_workers <= 0:
            max_workers = 1
        super().__init__(max_workers, thread_name_prefix, initializer, initargs)


class IgnoresThreadNamePrefix(concurrent.futures.ThreadPoolExecutor):
    """thread_name_prefix is accepted and dropped: threads get the default names."""

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(max_workers, "", initializer, initargs)


class NeverRetiresWorkers(executor_impl.ProcessPoolExecutor):
    """max_tasks_per_child is validated, then ignored: workers live as long as the pool."""

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
        state = self._state
        initializer, initargs, _ = state.worker_args
        state.worker_args = (initializer, initargs, None)
        state.max_tasks = None


class OneProcessTooMany(executor_impl.ProcessPoolExecutor):
    """Off by one: keeps max_workers + 1 worker processes."""

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
        self._state.max_workers += 1


CASES = [
    Broken(f"{__name__}:{pool.__name__}", "test_pool_sizing.py", bug, race_only)
    for pool, bug, race_only in [
        # The extra worker is caught once it takes a call before the gate opens: it starts
        # at once, so real threads catch it, but only a schedule makes that certain.
        (OneThreadTooMany, "runs max_workers + 1 calls at once", True),
        (AcceptsNoWorkers, "max_workers=0 makes a pool of one thread", False),
        (IgnoresThreadNamePrefix, "thread_name_prefix is ignored", False),
        (NeverRetiresWorkers, "max_tasks_per_child is ignored", False),
        (OneProcessTooMany, "runs max_workers + 1 calls at once in processes", True),
    ]
]
