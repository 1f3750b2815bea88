"""Executor: the abstract base of executor_impl's pools, with ``map`` and the context manager.

It derives from ``concurrent.futures.Executor`` so that ``isinstance(pool,
concurrent.futures.Executor)`` holds for our pools, as code that accepts "any executor"
checks exactly that.
"""

from __future__ import annotations

import collections
import itertools
import weakref
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
        buffersize: int | None = None,
    ) -> Iterator[_T]:
        """Return an iterator equivalent to ``map(fn, *iterables)``, the calls run by this pool.

        Without *buffersize*, every call is submitted before this method returns; with it,
        the first *buffersize* calls are, and the iterables are read lazily from then on:
        each result taken from the iterator lets one more call be submitted, so at most
        *buffersize* submitted calls are waiting to be yielded and an endless iterable
        works.  Results come in input order, whatever order the calls finish in.  If a call
        raised, its exception is raised when the iterator reaches its position.  *timeout*
        is measured from this call: reaching a result not ready by then raises
        ``TimeoutError``.  Leaving the iterator early (an exception, a timeout, ``close()``,
        garbage collection) cancels the calls that have not started.  *chunksize* is only
        used by process pools.

        Raises ``TypeError`` if *buffersize* is not an integer or None, ``ValueError`` if
        it is below 1, before anything is submitted.
        """
        if buffersize is not None:
            _check_buffersize(buffersize)
        end_time = None if timeout is None else timeout + _sync.monotonic()
        if buffersize is not None:
            return _buffered_map(self, fn, zip(*iterables), buffersize, end_time)
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


def _check_buffersize(buffersize: object) -> None:
    """The stdlib's checks (3.14) on ``map``'s *buffersize*, and its messages."""
    if not isinstance(buffersize, int):
        raise TypeError(f"buffersize must be an integer or None, not {buffersize!r}")
    if buffersize < 1:
        raise ValueError(f"buffersize must be None or > 0, not {buffersize!r}")


def _buffered_map(
    executor: Executor,
    fn: Callable[..., _T],
    args_iter: Iterator[tuple[Any, ...]],
    buffersize: int,
    end_time: float | None,
) -> Iterator[_T]:
    """Submit the first *buffersize* calls now; return the iterator that submits the rest."""
    fs = collections.deque(
        executor.submit(fn, *args) for args in itertools.islice(args_iter, buffersize)
    )
    # A weak reference: the result iterator must not keep the pool alive (the stdlib's
    # does not either); once the pool is gone, the calls already submitted drain.
    return _buffered_results(weakref.ref(executor), fn, args_iter, fs, end_time)


def _buffered_results(
    executor_ref: weakref.ReferenceType[Executor],
    fn: Callable[..., _T],
    args_iter: Iterator[tuple[Any, ...]],
    fs: collections.deque[Future[_T]],
    end_time: float | None,
) -> Iterator[_T]:
    # The next call is submitted only after the oldest result was taken, so the buffer never
    # holds more than buffersize calls, not even while next() waits (the stdlib submits
    # first and holds buffersize + 1 during that wait: CPython gh-131466).
    held: list[_T] = []  # yield held.pop(): the generator keeps no reference to a result
    try:
        while fs:
            if end_time is None:
                held.append(_result_or_cancel(fs.popleft()))
            else:
                held.append(_result_or_cancel(fs.popleft(), end_time - _sync.monotonic()))
            executor = executor_ref()
            if executor is not None:
                args = next(args_iter, None)
                if args is not None:
                    fs.append(executor.submit(fn, *args))
                del executor
            yield held.pop()
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
