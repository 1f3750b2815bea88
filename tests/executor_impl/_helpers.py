"""Helpers shared by the executor_impl tests: the API they run against, bounded waits, probes.

Every test runs against a module that has the ``concurrent.futures`` API (``FuturesAPI``):
executor_impl, and the stdlib as the reference. Nothing here sleeps; every wait is bounded by
``LONG_WAIT`` so that a bug turns into a failure that names what was waited for, not a hang.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Generic, Protocol, TypeVar

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from concurrent.futures import Future
    from concurrent.futures._base import DoneAndNotDoneFutures

T = TypeVar("T")

LONG_WAIT = 10.0
"""Seconds any wait that must succeed is allowed; only a bug ever waits this long."""

SHORT_TIMEOUT = 0.01
"""Seconds for a timeout that the test expects to expire."""


class FuturesAPI(Protocol):
    """The module-level API that executor_impl shares with ``concurrent.futures``."""

    __name__: str
    FIRST_COMPLETED: str
    FIRST_EXCEPTION: str
    ALL_COMPLETED: str
    Future: type[concurrent.futures.Future[Any]]
    Executor: type[concurrent.futures.Executor]
    ThreadPoolExecutor: type[concurrent.futures.ThreadPoolExecutor]
    CancelledError: type[concurrent.futures.CancelledError]
    TimeoutError: type[Exception]
    InvalidStateError: type[concurrent.futures.InvalidStateError]
    BrokenExecutor: type[concurrent.futures.BrokenExecutor]

    # Spelled concurrent.futures.Future: in this class body, Future is the attribute above.
    def wait(
        self,
        fs: Iterable[concurrent.futures.Future[T]],
        timeout: float | None = None,
        return_when: str = "ALL_COMPLETED",
    ) -> DoneAndNotDoneFutures[T]: ...

    def as_completed(
        self, fs: Iterable[concurrent.futures.Future[T]], timeout: float | None = None
    ) -> Iterator[concurrent.futures.Future[T]]: ...


MODULE_NAMES = {"impl": "executor_impl", "stdlib": "concurrent.futures"}
"""The modules under test, by the id their parameter carries."""


def load_api(kind: str) -> FuturesAPI:
    """Import the module of that kind (a key of ``MODULE_NAMES``) as a ``FuturesAPI``."""
    api: FuturesAPI = importlib.import_module(MODULE_NAMES[kind])
    return api


def is_stdlib(cf: FuturesAPI) -> bool:
    """Whether *cf* is ``concurrent.futures`` itself (the reference)."""
    return cf.__name__ == "concurrent.futures"


def broken_thread_pool_error(cf: FuturesAPI) -> type[concurrent.futures.BrokenExecutor]:
    """``BrokenThreadPool`` from the ``thread`` submodule of *cf*."""
    error: type[concurrent.futures.BrokenExecutor]
    error = importlib.import_module(cf.__name__ + ".thread").BrokenThreadPool
    return error


def wait_for(event: threading.Event, what: str) -> None:
    """Wait for *event* at most ``LONG_WAIT`` seconds; fail naming *what* was awaited."""
    assert event.wait(timeout=LONG_WAIT), f"waited {LONG_WAIT}s in vain for {what}"


def acquire_within(semaphore: threading.Semaphore, what: str) -> None:
    """Acquire *semaphore* within ``LONG_WAIT`` seconds; fail naming *what* was awaited."""
    assert semaphore.acquire(timeout=LONG_WAIT), f"waited {LONG_WAIT}s in vain for {what}"


class BackgroundCall(Generic[T]):
    """Run ``fn()`` in a daemon thread; ``outcome()`` hands back its result within a bound.

    The thread is a daemon so that a call which never returns (the bug a test is looking
    for) cannot keep the interpreter from exiting; the test fails in ``outcome()`` instead.
    """

    def __init__(self, fn: Callable[[], T], name: str = "test-background-call") -> None:
        self._fn = fn
        self._finished = threading.Event()
        self._result: T | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._result = self._fn()
        except BaseException as exc:  # handed to outcome(), never lost in this thread
            self._error = exc
        finally:
            self._finished.set()

    def outcome(self, what: str) -> T:
        """Return what ``fn()`` returned (or raise what it raised) once it has finished."""
        wait_for(self._finished, what)
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # set, since no error was raised


def after(event: threading.Event, action: Callable[[], object]) -> BackgroundCall[None]:
    """Run *action* in a background thread once *event* is set.

    Tests set *event* right before they block (in ``result()``, ``wait()``, ...), so the
    action most likely happens while they are blocked, and is correct either way.
    """

    def run() -> None:
        wait_for(event, "the test to block")
        action()

    return BackgroundCall(run, name="test-after")


def set_once_shut_down(
    pool: concurrent.futures.Executor, event: threading.Event
) -> BackgroundCall[None]:
    """Set *event* from a background thread as soon as *pool* refuses new work, that is once
    ``shutdown()`` has begun: a task blocked on *event* is then still running when shutdown
    starts, whatever the scheduling.

    No public API tells that shutdown has begun, so this polls ``submit()`` (the calls it
    manages to submit are no-ops run later); it never sleeps, and gives up after LONG_WAIT.
    """

    def poll() -> None:
        deadline = time.monotonic() + LONG_WAIT
        while time.monotonic() < deadline:
            try:
                pool.submit(int)
            except RuntimeError:
                event.set()
                return
        raise AssertionError(f"the pool still accepted work {LONG_WAIT}s later")

    return BackgroundCall(poll, name="test-set-once-shut-down")


class FalsyError(Exception):
    """An exception whose truth value is False (as any with ``__len__`` returning 0)."""

    def __bool__(self) -> bool:
        return False


def raise_(exc: BaseException) -> Callable[..., Any]:
    """A task that raises *exc*."""

    def task(*args: object, **kwargs: object) -> Any:
        raise exc

    return task


# Futures in each state, reached through the public API only.
STATE_BUILDERS: dict[str, Callable[[FuturesAPI], Future[Any]]] = {}


def _state(
    name: str,
) -> Callable[[Callable[[FuturesAPI], Future[Any]]], Callable[[FuturesAPI], Future[Any]]]:
    def register(
        builder: Callable[[FuturesAPI], Future[Any]],
    ) -> Callable[[FuturesAPI], Future[Any]]:
        STATE_BUILDERS[name] = builder
        return builder

    return register


@_state("pending")
def pending_future(cf: FuturesAPI) -> Future[Any]:
    """A new future."""
    return cf.Future()


@_state("running")
def running_future(cf: FuturesAPI) -> Future[Any]:
    """A future an executor has started."""
    future = cf.Future()
    assert future.set_running_or_notify_cancel()
    return future


@_state("cancelled")
def cancelled_future(cf: FuturesAPI) -> Future[Any]:
    """A pending future that was cancelled; no executor has noticed yet."""
    future = cf.Future()
    assert future.cancel()
    return future


@_state("cancelled_and_notified")
def cancelled_and_notified_future(cf: FuturesAPI) -> Future[Any]:
    """A cancelled future whose executor has noticed (and notified its waiters)."""
    future = cancelled_future(cf)
    assert not future.set_running_or_notify_cancel()
    return future


@_state("returned")
def returned_future(cf: FuturesAPI) -> Future[Any]:
    """A future finished with the result 42."""
    future = cf.Future()
    future.set_result(42)
    return future


@_state("raised")
def raised_future(cf: FuturesAPI) -> Future[Any]:
    """A future finished with a ValueError."""
    future = cf.Future()
    future.set_exception(ValueError("raised on purpose"))
    return future


# Probes for known stdlib bugs: the stdlib param is marked xfail(strict=True) only while the
# running Python still has the bug, so a fixed Python makes the test pass, not XPASS.


@functools.cache
def stdlib_result_swallows_falsy_exceptions() -> bool:
    """gh-132063: ``Future.result()`` tests ``if self._exception:`` and returns None."""
    future: Future[None] = concurrent.futures.Future()
    future.set_exception(FalsyError())
    try:
        future.result()
    except FalsyError:
        return False
    return True


@functools.cache
def stdlib_repr_hides_falsy_exceptions() -> bool:
    """gh-132063: ``Future.__repr__`` tests ``if self._exception:`` and says 'returned'."""
    future: Future[None] = concurrent.futures.Future()
    future.set_exception(FalsyError())
    return "raised" not in repr(future)


@functools.cache
def stdlib_shutdown_leaves_cancelled_futures_unnotified() -> bool:
    """gh-109934 (thread pool) / gh-136655 (process pool): ``shutdown(cancel_futures=True)``
    calls ``cancel()`` but never ``set_running_or_notify_cancel()``, so ``wait()`` and
    ``as_completed()`` never count those futures as done."""
    release = threading.Event()
    started = threading.Event()

    def block() -> None:
        started.set()
        release.wait(LONG_WAIT)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(block)
            queued = pool.submit(int)
            wait_for(started, "the probe's blocking task to start")
            pool.shutdown(wait=False, cancel_futures=True)
            done = concurrent.futures.wait([queued], timeout=0).done
        finally:
            release.set()
    return not done


def stdlib_map_leaves_timed_out_future_uncancelled() -> bool:
    """gh-95166: ``Executor.map`` of older Pythons (3.9 still has it) does not cancel the
    future whose ``result()`` raised (e.g. TimeoutError) when the iterator is left; it only
    cancels the ones after it. The fix added ``_base._result_or_cancel``."""
    return not hasattr(importlib.import_module("concurrent.futures._base"), "_result_or_cancel")


def xfail_stdlib_if(
    request: pytest.FixtureRequest, cf: FuturesAPI, bug_present: bool, reason: str
) -> None:
    """Mark the running test xfail(strict=True) when it runs on the stdlib and the stdlib
    still has the bug named in *reason*."""
    if is_stdlib(cf) and bug_present:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def workers(prefix: str) -> list[threading.Thread]:
    """The live threads of the pool whose thread name prefix is *prefix*."""
    return [t for t in threading.enumerate() if t.name.startswith(prefix + "_")]
