"""Executor: the abstract base of executor_impl's pools, with ``map`` and the context manager.

It derives from ``concurrent.futures.Executor`` so that ``isinstance(pool,
concurrent.futures.Executor)`` holds for our pools, as code that accepts "any executor"
checks exactly that.
"""

from __future__ import annotations

from concurrent.futures import _base
from typing import TYPE_CHECKING, Any, TypeVar

from . import _sync

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from concurrent.futures import Future

__all__ = ["Executor"]

_T = TypeVar("_T")


class Executor(_base.Executor):
    """An object that runs calls asynchronously (``concurrent.futures.Executor``)."""

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)`` and return a Future representing the call."""
        raise NotImplementedError()

    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[_T]:
        """Return an iterator equivalent to ``map(fn, *iterables)``, the calls run by this pool.

        Every call is submitted before this method returns; results come in input order,
        whatever order the calls finish in.  If a call raised, its exception is raised when
        the iterator reaches its position.  *timeout* is measured from this call: reaching a
        result not ready by then raises ``TimeoutError``.  Leaving the iterator early (an
        exception, a timeout, ``close()``, garbage collection) cancels the calls that have not
        started.  *chunksize* is only used by process pools.
        """
        end_time = None if timeout is None else timeout + _sync.monotonic()
        submit = self.submit
        fs = [submit(fn, *args) for args in zip(*iterables)]
        # The generator is a separate function so that the submits above happen now, not on
        # the first next().
        return _results_in_order(fs, end_time)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Free the executor's resources; safe to call more than once.

        With *wait*, return only after the running and queued calls finished; with
        *cancel_futures*, cancel the calls that have not started first.
        """


def _results_in_order(fs: list[Future[_T]], end_time: float | None) -> Iterator[_T]:
    try:
        fs.reverse()  # pop() from the end is O(1) and drops our reference as we go
        while fs:
            if end_time is None:
                yield _result_or_cancel(fs.pop())
            else:
                yield _result_or_cancel(fs.pop(), end_time - _sync.monotonic())
    finally:
        for f in fs:
            f.cancel()


def _result_or_cancel(f: Future[_T], timeout: float | None = None) -> _T:
    try:
        try:
            return f.result(timeout)
        except BaseException:
            f.cancel()  # a timeout or an interrupt: do not leave this one to run unobserved
            raise
    finally:
        del f  # break the cycle through the exception's traceback
