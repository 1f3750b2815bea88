"""Broken ``wait()`` / ``as_completed()`` for the waiting specs (specs/test_waiting.py and
specs/test_waiting_pools.py).

Each backend is a namespace holding the broken function and the stdlib's ThreadPoolExecutor
(``--executor=tests.specs.broken.waiting:Namespace.ThreadPoolExecutor``): the spec looks the
API up in the namespace first.
"""

from __future__ import annotations

import collections
import concurrent.futures
import time
from concurrent.futures import _base
from typing import TYPE_CHECKING, Any

from . import Broken

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from concurrent.futures import Future

ALL_COMPLETED = concurrent.futures.ALL_COMPLETED
FIRST_EXCEPTION = concurrent.futures.FIRST_EXCEPTION


def _as_completed_once_per_mention(
    fs: Iterable[Future[Any]], timeout: float | None = None
) -> Iterator[Future[Any]]:
    """Counts the futures as given, not as a set: a future given twice is yielded twice."""
    fs = list(fs)
    mentions = collections.Counter(fs)
    for future in concurrent.futures.as_completed(fs, timeout):
        for _ in range(mentions[future]):
            yield future


def _wait_first_exception_as_all_completed(
    fs: Iterable[Future[Any]], timeout: float | None = None, return_when: str = ALL_COMPLETED
) -> Any:
    """Treats FIRST_EXCEPTION as ALL_COMPLETED (a table of return conditions missing a row)."""
    if return_when == FIRST_EXCEPTION:
        return_when = ALL_COMPLETED
    return concurrent.futures.wait(fs, timeout, return_when)


def _as_completed_without_timeout(
    fs: Iterable[Future[Any]], timeout: float | None = None
) -> Iterator[Future[Any]]:
    """Accepts *timeout* and never applies it."""
    return concurrent.futures.as_completed(fs)


def _as_completed_newest_first(
    fs: Iterable[Future[Any]], timeout: float | None = None
) -> Iterator[Future[Any]]:
    """The stdlib's algorithm, but the futures that completed between two ``next()`` calls
    come newest first: the waiter's batch is popped without being reversed."""
    end = None if timeout is None else time.monotonic() + timeout
    pending = set(fs)
    total = len(pending)
    with _base._AcquireFutures(pending):
        finished = {
            f for f in pending if f._state in (_base.CANCELLED_AND_NOTIFIED, _base.FINISHED)
        }
        pending -= finished
        waiter = _base._create_and_install_waiters(  # type: ignore[attr-defined]
            pending,
            _base._AS_COMPLETED,  # type: ignore[attr-defined]
        )
    try:
        yield from finished
        while pending:
            left = None if end is None else end - time.monotonic()
            if left is not None and left < 0:
                raise concurrent.futures.TimeoutError(
                    f"{len(pending)} (of {total}) futures unfinished"
                )
            waiter.event.wait(left)
            with waiter.lock:
                batch, waiter.finished_futures = waiter.finished_futures, []
                waiter.event.clear()
            while batch:
                future = batch.pop()
                pending.discard(future)
                yield future
    finally:
        for f in pending:
            with f._condition:
                f._waiters.remove(waiter)


def _as_completed_unlocked_snapshot(
    fs: Iterable[Future[Any]], timeout: float | None = None
) -> Iterator[Future[Any]]:
    """Reads which futures are done, then installs its waiter, without holding the futures'
    locks in between: a future that finishes in that gap is never yielded. The gap is a few
    bytecodes wide, between two of the spec's steps; only a preemption right there shows it."""
    end = None if timeout is None else time.monotonic() + timeout
    pending = set(fs)
    total = len(pending)
    finished = {f for f in pending if f.done()}
    pending -= finished
    waiter = _base._AsCompletedWaiter()
    for f in pending:
        with f._condition:
            f._waiters.append(waiter)
    yield from finished
    try:
        while pending:
            left = None if end is None else end - time.monotonic()
            if left is not None and left < 0:
                raise concurrent.futures.TimeoutError(
                    f"{len(pending)} (of {total}) futures unfinished"
                )
            waiter.event.wait(left)
            with waiter.lock:
                done, waiter.finished_futures = waiter.finished_futures, []
                waiter.event.clear()
            for f in done:
                pending.discard(f)
                yield f
    finally:
        for f in pending:
            with f._condition:
                f._waiters.remove(waiter)


class YieldsDuplicates:
    """as_completed() yields a future as often as it appears in fs."""

    as_completed = staticmethod(_as_completed_once_per_mention)
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor


class FirstExceptionWaitsForAll:
    """wait(return_when=FIRST_EXCEPTION) behaves as ALL_COMPLETED."""

    wait = staticmethod(_wait_first_exception_as_all_completed)
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor


class AsCompletedIgnoresTimeout:
    """as_completed(timeout=...) waits however long it takes."""

    as_completed = staticmethod(_as_completed_without_timeout)
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor


class AsCompletedNewestFirst:
    """as_completed() yields the futures that completed together newest first."""

    as_completed = staticmethod(_as_completed_newest_first)
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor


class AsCompletedLosesAWakeUp:
    """as_completed() misses a future that finishes while it installs its waiter."""

    as_completed = staticmethod(_as_completed_unlocked_snapshot)
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor


CASES = [
    Broken(f"{__name__}:{backend.__name__}.ThreadPoolExecutor", spec, bug)
    for backend, spec, bug in [
        (YieldsDuplicates, "test_waiting.py", "as_completed() yields a future given twice twice"),
        (
            FirstExceptionWaitsForAll,
            "test_waiting_pools.py",
            "wait(FIRST_EXCEPTION) waits as ALL_COMPLETED",
        ),
        (AsCompletedIgnoresTimeout, "test_waiting_pools.py", "as_completed() ignores its timeout"),
        (
            AsCompletedNewestFirst,
            "test_waiting.py",
            "as_completed() yields futures completed together newest first",
        ),
    ]
]

RACE_ONLY_CASES = [
    Broken(
        f"{__name__}:AsCompletedLosesAWakeUp.ThreadPoolExecutor",
        "test_waiting_pools.py",
        "as_completed() never yields a future that finishes while it installs its waiter",
        race_only=True,
    ),
]
