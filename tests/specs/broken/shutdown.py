"""Broken shutdowns for the shutdown spec (specs/test_shutdown.py).

Each backend is one of the stdlib's pools with one bug in ``shutdown``, ``submit``, ``map``
or the context manager, each a mistake a real executor could make.
"""

from __future__ import annotations

import concurrent.futures
from concurrent.futures import thread
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from . import Broken

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

T = TypeVar("T")


class ShutdownDoesNotWait:
    """shutdown(wait=True) returns at once: it never joins the workers."""

    class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            super().shutdown(wait=False, cancel_futures=cancel_futures)


class ProcessShutdownDoesNotWait:
    """A process pool whose shutdown(wait=True) returns at once."""

    class ProcessPoolExecutor(concurrent.futures.ProcessPoolExecutor):
        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            super().shutdown(wait=False, cancel_futures=cancel_futures)


class DropsLateCalls:
    """submit() after shutdown returns a future that never completes instead of raising
    (and so does map(), which submits)."""

    class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Any:
            if self._shutdown:
                return concurrent.futures.Future()
            return super().submit(fn, *args, **kwargs)


class SecondShutdownRaises:
    """shutdown() of a pool already shut down raises instead of returning."""

    class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            if self._shutdown:
                raise RuntimeError("the executor is already shut down")
            super().shutdown(wait, cancel_futures=cancel_futures)


class LazyMap:
    """map() is a generator: it submits nothing until the first next(), so after shutdown
    it raises only then, not at the call."""

    class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
        def map(
            self,
            fn: Callable[..., T],
            *iterables: Iterable[Any],
            timeout: float | None = None,
            chunksize: int = 1,
        ) -> Iterator[T]:
            yield from super().map(fn, *iterables, timeout=timeout, chunksize=chunksize)


class ExitDoesNotWait:
    """Leaving ``with executor:`` shuts down with wait=False."""

    class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc_val: BaseException | None,
            exc_tb: TracebackType | None,
        ) -> None:
            self.shutdown(wait=False)


class ChecksShutdownUnlocked:
    """submit() reads the shutdown flag before taking the lock: a shutdown() in between
    puts the workers' exit sentinel first, and the call queued after it never runs
    (race only)."""

    class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Any:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            item = thread._WorkItem(future, fn, args, kwargs)
            with self._shutdown_lock:
                self._work_queue.put(item)
                self._adjust_thread_count()
            return future


SPEC = "test_shutdown.py"

CASES = [
    Broken(f"{__name__}:{backend.__name__}.{pool}", SPEC, bug)
    for backend, pool, bug in [
        (ShutdownDoesNotWait, "ThreadPoolExecutor", "shutdown(wait=True) does not wait"),
        (
            ProcessShutdownDoesNotWait,
            "ProcessPoolExecutor",
            "a process pool's shutdown(wait=True) does not wait",
        ),
        (DropsLateCalls, "ThreadPoolExecutor", "submit() after shutdown is silently dropped"),
        (SecondShutdownRaises, "ThreadPoolExecutor", "a second shutdown() raises"),
        (LazyMap, "ThreadPoolExecutor", "map() after shutdown raises only at next()"),
        (ExitDoesNotWait, "ThreadPoolExecutor", "leaving `with executor:` does not wait"),
    ]
]

RACE_ONLY_CASES = [
    Broken(
        f"{__name__}:ChecksShutdownUnlocked.ThreadPoolExecutor",
        SPEC,
        "a submit() racing with shutdown() is accepted and never runs",
        race_only=True,
    ),
]
