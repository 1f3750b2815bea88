"""Bounded waits, for every spec: the bound, and the helpers that wait within it.

Nothing here blocks without a bound: a wait that a correct executor finishes in milliseconds is
given :data:`BOUND` seconds, and on expiry fails naming what it waited for, instead of hanging:
:func:`result_within` (a future), :func:`call_within_bound` and :class:`Background` (any call,
the latter watched from the spec's thread while it blocks), :func:`shut_down_within_bound` (a
pool's cleanup), :func:`join_threads_started_since` (the threads a pool left behind). The spec
modules import them through :mod:`._harness`.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from pytest_futures_plugin import tasks
from pytest_futures_plugin.guards import HELPER_THREAD_PREFIX, describe_threads

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from pytest_futures_plugin.backends import FuturesAPI

__all__ = [
    "BOUND",
    "DEFAULT_BOUND",
    "SPEC_BOUND_ENV",
    "Background",
    "call_within_bound",
    "drain_before_shutdown",
    "hung",
    "join_threads_started_since",
    "result_within",
    "shut_down_within_bound",
]

SPEC_BOUND_ENV = "PYTEST_FUTURES_SPEC_BOUND"
DEFAULT_BOUND = 10.0


def _spec_bound() -> float:
    """The bound ``PYTEST_FUTURES_SPEC_BOUND`` gives (the plugin sets it from
    ``--futures-spec-bound`` or the ini file), else :data:`DEFAULT_BOUND`.

    Raises ValueError naming the bad value.
    """
    text = os.environ.get(SPEC_BOUND_ENV, "")
    if not text:
        return DEFAULT_BOUND
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{SPEC_BOUND_ENV}={text!r}: expected a positive number of seconds")
    return seconds


BOUND = _spec_bound()
"""Seconds one blocking call of a spec (a step, an invariant, the teardown, the drain before
shutdown) may take; only a broken executor ever waits this long. When it is hit the example
fails with every thread's stack and what each waits on, and the test does not run (nor shrink)
further examples: see :func:`run_spec`."""


def result_within(future: Future[Any], what: str, api: FuturesAPI) -> Any:
    """``future.result()``, failing with a message naming *what* and the future if the
    executor does not finish it within :data:`BOUND` seconds."""
    try:
        return future.result(timeout=BOUND)
    except api.TimeoutError:
        raise AssertionError(hung(f"{what}: {future!r} not done after {BOUND}s")) from None


def hung(what: str) -> str:
    """The message of a wait that ran out its bound: *what*, then every thread's stack and
    what each waits on (futures, threads, Events)."""
    return f"{what}\n{describe_threads()}"


class Background:
    """One call run in a daemon thread of its own, so that a spec can watch it block (is
    ``returned`` still unset a moment later?) and wait for it no longer than :data:`BOUND`.

    ``called`` is set just before the call starts, ``returned`` once it returned or raised;
    :meth:`finish` waits for it.
    """

    def __init__(self, what: str, function: Callable[[], Any]) -> None:
        self.what = what
        self.function = function
        self.value: Any = None
        self.error: BaseException | None = None
        self.called = threading.Event()
        self.returned = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"{HELPER_THREAD_PREFIX}: {what}", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        self.called.set()
        try:
            self.value = self.function()
        except BaseException as error:
            self.error = error
        finally:
            self.returned.set()

    def finish(self) -> Any:
        """What the call returned; re-raises what it raised.

        Raises AssertionError naming *what* if it has not returned within ``BOUND`` seconds
        (its thread is then left behind, blocked for good).
        """
        if not self.returned.wait(BOUND):
            raise AssertionError(hung(f"{self.what} did not return within {BOUND}s"))
        if self.error is not None:
            raise self.error
        return self.value


def call_within_bound(what: str, function: Callable[[], Any]) -> Any:
    """``function()``, failing naming *what* if it blocks for more than :data:`BOUND`
    seconds; re-raises what it raised."""
    return Background(what, function).finish()


def shut_down_within_bound(pool: Executor, when: str = "") -> None:
    """``pool.shutdown(wait=True)``, for a spec's cleanup: every gate is open by then, so
    nothing should keep it.

    Raises AssertionError naming the pool (and *when*, e.g. ``"at teardown"``) if it has not
    returned within :data:`BOUND` seconds, or if it raised.
    """
    what = f"shutdown() of {pool!r}{' ' + when if when else ''}"
    shutdown = Background(what, lambda: pool.shutdown(wait=True))
    if not shutdown.returned.wait(BOUND):
        raise AssertionError(hung(f"{what}: still waiting after {BOUND}s"))
    if shutdown.error is not None:
        raise AssertionError(f"{what} raised {shutdown.error!r}") from shutdown.error


def drain_before_shutdown(executor: Executor, *, failing: bool) -> None:
    """Run one last call and wait for it, so that the pool has dequeued every earlier call
    before ``shutdown`` begins.

    CPython gh-94440 (fixed in 3.10 and later, not in 3.9): a call cancelled while still
    queued (by ``cancel()``, or by ``map`` after a call that raised) can make the stdlib
    process pool's ``shutdown(wait=True)`` hang for good. That is the shutdown spec's
    subject; elsewhere it would only turn a spec into a hang.

    Raises AssertionError if the last call fails, unless *failing*: when a step already
    failed the pool may be broken, and nothing is asserted.
    """
    try:
        executor.submit(tasks.return_value, None).result(timeout=BOUND)
    except Exception as error:
        if not failing:
            raise AssertionError(f"the last call before shutdown() failed: {error!r}") from error


def join_threads_started_since(before: set[threading.Thread]) -> list[str]:
    """Wait up to :data:`BOUND` seconds in all for the non-daemon threads started since *before*
    (``set(threading.enumerate())`` taken before the pool was made: its workers and manager)
    to end; return the names of those still running.

    A machine does this once its pool is shut down and every call ended, so that no thread of
    its pool still runs, holding one of that pool's locks, when the next example forks the
    workers of its own pool: the fork's child could collect the old pool, run its weakref
    callback, which takes that lock, and hang. The stdlib's process pool needs it: after
    ``shutdown(wait=False)`` no later ``shutdown(wait=True)`` joins its manager thread.
    """
    current = threading.current_thread()
    started = [t for t in threading.enumerate() if t not in before and not t.daemon]
    deadline = time.monotonic() + BOUND  # one bound for them all, not one each
    for thread in started:
        if thread is not current:
            thread.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in started if t.is_alive() and t is not current]
