"""Known bugs of third-party executors (loky, futurist, dask, executorlib), each recognised by
a behaviour probe run on the backend under test, never by its name or class.

Each is a bug the specs found in that executor against the ``concurrent.futures``
documentation; the project's ``docs/upstream/`` holds a standalone reproduction of each, ready to
file upstream where no upstream report exists (the issue's link where one does). They ship as
``pytest_futures_plugin.upstream``: the KNOWN-BUG cell names the module (``python -m
pytest_futures_plugin.upstream.NAME`` runs it, wherever pytest-futures is installed) and its
reason gives the installed file. A race has no probe that shows it on demand: the spec that
sees it decides (``_seen``, the keys in :data:`RACY`). The
probes here are compact versions of those reproductions (the specs cannot import the docs):
bounded, and each shuts its pool down. Registered on import (by :mod:`._known_bugs`).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from typing import TYPE_CHECKING, Any

from pytest_futures_plugin import faults, tasks
from pytest_futures_plugin.controls import Controls

from . import _tasks
from ._harness import join_threads_started_since, shut_down_within_bound

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pytest_futures_plugin.backends import Backend

QUEUED = 4
"""Calls a probe queues behind a blocked one (more than a process pool's call queue takes)."""


def _bound() -> float:
    from ._known_bugs import _bound as bound

    return bound()


REPRODUCTIONS = "pytest_futures_plugin.upstream"
"""The package the reproductions ship in (the repository's ``docs/upstream/``)."""


def _reproduction(name: str) -> tuple[str, str]:
    """The module of the reproduction *name* (what the KNOWN-BUG cell names: ``python -m``
    runs it) and its file, as installed. Raises LookupError if it is not installed."""
    module = f"{REPRODUCTIONS}.{name}"
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise LookupError(f"the reproduction {module} is not installed with pytest-futures")
    return module, spec.origin


def _an_unpicklable_exception_breaks_the_pool(backend: Backend) -> bool:
    """After a call raised an exception that cannot be pickled, the next call on the same
    pool fails (the pool broke) instead of returning its result."""
    if not backend.capabilities.processes:
        return False
    api = backend.api
    pool = backend.make(max_workers=1)
    try:
        first = pool.submit(faults.raise_unpicklable_error, "a known-bug probe")
        try:
            first.result(timeout=_bound())
        except api.TimeoutError:
            raise
        except BaseException:
            pass  # failing this call is right; what matters is the next one
        try:
            return bool(pool.submit(tasks.return_value, 1024).result(timeout=_bound()) != 1024)
        except api.TimeoutError:
            raise
        except Exception:
            return True
    finally:
        shut_down_within_bound(pool, "of a known-bug probe")


def _queued_behind_a_held_call(backend: Backend, **shutdown: bool) -> list[Future[Any]]:
    """Queue :data:`QUEUED` calls behind a held one on a one-worker pool, shut it down with
    *shutdown* (``wait=False``), let the held call go, and wait (bounded) for the queued
    calls: the queued futures."""
    api = backend.api
    with Controls(timeout=_bound()) as controls:
        gate = controls.gate("known-bug probe")
        before = set(threading.enumerate())
        pool = backend.make(max_workers=1)
        try:
            held = pool.submit(tasks.block_on, gate)
            gate.wait_inside(1, timeout=_bound())
            if held.done():  # ran inside submit(): nothing can queue behind it
                raise RuntimeError("the held call ended before the probe could queue calls")
            queued = [pool.submit(tasks.return_value, i) for i in range(QUEUED)]
            pool.shutdown(wait=False, **shutdown)
            gate.release()
            deadline = time.monotonic() + _bound()
            for future in queued:  # not wait(): gh-109934 leaves cancelled futures unnotified
                try:
                    future.exception(timeout=max(0.0, deadline - time.monotonic()))
                except (api.CancelledError, api.TimeoutError):
                    pass
            return queued
        finally:
            gate.release()
            shut_down_within_bound(pool, "of a known-bug probe")
            join_threads_started_since(before)


def _cancel_futures_cancels_nothing(backend: Backend) -> bool:
    """``shutdown(wait=False, cancel_futures=True)`` cancels none of the calls queued behind a
    held one (the documentation: it cancels all pending futures not yet running)."""
    if not backend.capabilities.cancel_futures:
        return False
    queued = _queued_behind_a_held_call(backend, cancel_futures=True)
    return not any(future.cancelled() for future in queued)


def _shutdown_nowait_strands_queued_calls(backend: Backend) -> bool:
    """After ``shutdown(wait=False)``, calls queued before it are neither run nor cancelled
    within the bound (the documentation: pending futures are executed before the resources
    are freed)."""
    queued = _queued_behind_a_held_call(backend)
    return not all(future.done() for future in queued)


def _running_and_cancel(backend: Backend) -> tuple[bool, bool]:
    """Hold one call inside a worker: whether its future says ``running()``, and what
    ``cancel()`` returns for it."""
    with Controls(timeout=_bound()) as controls:
        gate = controls.gate("known-bug probe")
        before = set(threading.enumerate())
        pool = backend.make(max_workers=2)
        try:
            future = pool.submit(tasks.block_on, gate, "held")
            gate.wait_inside(1, timeout=_bound())
            if future.done():  # ran inside submit(): no running state to look at
                raise RuntimeError("the held call ended before the probe could look at it")
            running = future.running()
            cancelled = future.cancel()
            return running, cancelled
        finally:
            gate.release()
            shut_down_within_bound(pool, "of a known-bug probe")
            join_threads_started_since(before)


def _running_never_true(backend: Backend) -> bool:
    running, _ = _running_and_cancel(backend)
    return not running


def _cancel_of_a_running_call_succeeds(backend: Backend) -> bool:
    _, cancelled = _running_and_cancel(backend)
    return cancelled


def _map_rejects_an_iterator(backend: Backend) -> bool:
    """``map()`` over an iterator (not a sequence) refuses it or loses its items."""
    pool = backend.make(max_workers=2)
    try:
        return list(pool.map(tasks.return_value, iter([1, 2]), timeout=_bound())) != [1, 2]
    except TypeError:
        return True
    finally:
        shut_down_within_bound(pool, "of a known-bug probe")


def _map_after_shutdown_runs(backend: Backend) -> bool:
    """``map()`` after ``shutdown()`` runs the calls instead of raising RuntimeError."""
    pool = backend.make(max_workers=2)
    try:
        pool.shutdown(wait=False)
        list(pool.map(tasks.return_value, [1, 2], timeout=_bound()))
    except RuntimeError:
        return False
    finally:
        shut_down_within_bound(pool, "of a known-bug probe")
    return True


def _callback_submit_deadlocks(backend: Backend) -> bool:
    """A done callback's ``submit()`` during ``shutdown(wait=True)`` neither returns nor
    raises: it waits for a lock that the shutdown holds while it waits for that very call."""
    from ._callback_submit import callback_submits_during_shutdown

    return callback_submits_during_shutdown(backend, _bound()).stuck


RACY = frozenset({"dask_cancelled_calls_still_start"})
"""The bugs that are races: their probe is :func:`_seen_by_the_spec`."""


def _seen_by_the_spec(backend: Backend) -> bool:
    """The probe of a race (see :mod:`._seen`): no probe can make it show on demand, so the
    spec that sees it decides, run by run; any executor built from the package may show it."""
    del backend
    return True


def _map_timeout_overdue_raises_value_error(backend: Backend) -> bool:
    """Taking a ``map()`` result after the deadline has passed raises ValueError (dask turns
    the negative time left into a string it cannot parse) instead of the API's TimeoutError.
    A deadline of a nanosecond has passed before ``map`` returns."""
    pool = backend.make(max_workers=1)
    try:
        results = pool.map(tasks.return_value, [1], timeout=1e-9)
        try:
            next(results)
        except ValueError:
            return True
        except backend.api.TimeoutError:
            return False
        return False
    finally:
        shut_down_within_bound(pool, "of a known-bug probe")


def _base_exception_hangs(backend: Backend) -> bool:
    """``map()`` over a call raising a BaseException that is not an Exception never delivers
    it: taking the result times out (dask's ``sync()`` catches only ``Exception``, so the
    exception escapes into its event loop and the waiting thread is never woken; its
    ``shutdown(wait=True)`` then hangs the same way, so the probe shuts down without waiting
    first)."""
    pool = backend.make(max_workers=1)
    try:
        results = pool.map(_tasks.return_or_raise, [_tasks.SpecBaseError(1)], timeout=_HANG)
        try:
            next(results)
        except backend.api.TimeoutError:
            return True
        except _tasks.SpecBaseError:
            return False
        return False
    finally:
        pool.shutdown(wait=False)
        shut_down_within_bound(pool, "of a known-bug probe")


def _unpicklable_result_stays_pending(backend: Backend) -> bool:
    """On a pool of processes, the future of a call whose result cannot be pickled is not done
    within the probe's wait (the worker fails to send it, and no one is told)."""
    if not backend.capabilities.processes:
        return False
    pool = backend.make(max_workers=1)
    try:
        future = pool.submit(faults.return_unpicklable, "a known-bug probe")
        try:
            future.exception(timeout=_HANG)
        except backend.api.TimeoutError:
            return True
        return False
    finally:
        shut_down_within_bound(pool, "of a known-bug probe")


def _cancel_kills_later_calls(backend: Backend) -> bool:
    """After ``cancel()`` of a call queued behind a held one succeeded, a call submitted later
    does not run within the probe's wait once the held call is released (executorlib's
    scheduler thread dies of the CancelledError its own ``future.exception()`` raises on the
    cancelled call's future). False where ``cancel()`` fails: the call was not pending.

    The dying thread's CancelledError is kept from ``threading.excepthook`` for the probe's
    length (it is the bug, not an error of the test that asked); a pool that hangs in
    ``shutdown(wait=True)`` is left to a daemon thread (:func:`_shut_down_or_leave`)."""
    hook = threading.excepthook

    def keep_cancelled(args: threading.ExceptHookArgs) -> None:
        if not isinstance(args.exc_value, backend.api.CancelledError):
            hook(args)

    threading.excepthook = keep_cancelled
    stuck = False
    try:
        with Controls(timeout=_bound()) as controls:
            gate = controls.gate("known-bug probe")
            before = set(threading.enumerate())
            pool = backend.make(max_workers=1)
            try:
                held = pool.submit(tasks.block_on, gate)
                gate.wait_inside(1, timeout=_bound())
                if held.done():  # ran inside submit(): nothing can queue behind it
                    raise RuntimeError("the held call ended before the probe could queue calls")
                if not pool.submit(tasks.return_value, 1).cancel():
                    return False
                later = pool.submit(tasks.return_value, 2)
                gate.release()
                try:
                    stuck = later.result(timeout=_HANG) != 2
                except backend.api.TimeoutError:
                    stuck = True
                return stuck
            finally:
                gate.release()
                if stuck:  # its shutdown hangs and its threads wait for ever: leave them
                    _shut_down_or_leave(pool)
                else:
                    shut_down_within_bound(pool, "of a known-bug probe")
                    join_threads_started_since(before)
    finally:
        threading.excepthook = hook


def _shut_down_or_leave(pool: Any) -> None:
    """``pool.shutdown(wait=True)`` in a daemon thread, waited for :data:`_HANG` seconds: a
    pool whose bug hangs its shutdown is left to that thread (and its own threads to
    themselves: nothing can stop them from outside)."""
    shutdown = threading.Thread(target=pool.shutdown, name="known-bug probe shutdown", daemon=True)
    shutdown.start()
    shutdown.join(_HANG)


_HANG = 3.0
"""Seconds a probe waits for a result that a correct executor delivers in milliseconds."""


_PACKAGES = {
    "loky": "loky",
    "futurist": "futurist",
    "dask": "distributed",
    "executorlib": "executorlib",
}
"""The package each bug lives in, by the prefix of its key: only executors built from it can
show the bug (see ``KnownBug.package``)."""


def register_all() -> None:
    """Register the third-party known bugs (called once, by :mod:`._known_bugs`)."""
    from ._known_bugs import KnownBug, register

    def bug(key: str, summary: str, probe: Any, issue: str = "") -> None:
        module, path = (issue, issue) if issue else _reproduction(key)
        package = _PACKAGES[key.partition("_")[0]]
        register(
            KnownBug(key=key, issue=module, url=path, summary=summary, probe=probe, package=package)
        )

    bug(
        "loky_unpicklable_exception",
        "loky: a call raising an unpicklable exception kills its worker and breaks the executor",
        _an_unpicklable_exception_breaks_the_pool,
    )
    bug(
        "futurist_shutdown_cancel_futures",
        "futurist: shutdown(cancel_futures=True) accepts the keyword and cancels nothing",
        _cancel_futures_cancels_nothing,
    )
    bug(
        "futurist_shutdown_nowait_pending",
        "futurist: shutdown(wait=False) leaves the calls still queued pending for ever",
        _shutdown_nowait_strands_queued_calls,
    )
    bug(
        "futurist_callback_submit_deadlock",
        "futurist: a done callback that calls submit() while shutdown(wait=True) waits "
        "deadlocks (shutdown holds the lock that submit() takes)",
        _callback_submit_deadlocks,
    )
    bug(
        "dask_running_never_true",
        "dask ClientExecutor: Future.running() is never True (set_running_or_notify_cancel "
        "is never called)",
        _running_never_true,
    )
    bug(
        "dask_cancel_running_returns_true",
        "dask ClientExecutor: cancel() returns True for a call that is running (or already "
        "handed to a worker), and the call goes on",
        _cancel_of_a_running_call_succeeds,
    )
    bug(
        "dask_map_rejects_iterators",
        "dask ClientExecutor: map() refuses an iterator (Client.map takes no iterators)",
        _map_rejects_an_iterator,
    )
    bug(
        "dask_map_after_shutdown",
        "dask ClientExecutor: map() after shutdown() runs the calls instead of raising "
        "RuntimeError",
        _map_after_shutdown_runs,
    )
    bug(
        "dask_cancelled_calls_still_start",
        "dask ClientExecutor: calls cancelled by leaving map()'s results early may still start "
        "(Client.cancel returns before the worker hears of it: a race, seen by the spec)",
        _seen_by_the_spec,
    )
    bug(
        "dask_map_timeout_overdue",
        "dask ClientExecutor: a map() result taken after the deadline raises ValueError, not "
        "TimeoutError (the negative time left reaches dask.utils.parse_timedelta)",
        _map_timeout_overdue_raises_value_error,
        issue="https://github.com/dask/distributed/issues/4583",
    )
    bug(
        "dask_base_exception_hangs",
        "dask ClientExecutor: after a call raised a BaseException that is not an Exception, "
        "map() never delivers it (next() times out) and shutdown(wait=True) hangs "
        "(distributed.utils.sync catches only Exception)",
        _base_exception_hangs,
    )
    bug(
        "dask_unpicklable_result_pending",
        "dask ClientExecutor on worker processes: the future of a call whose result cannot be "
        "pickled stays pending for ever (the worker logs the error; no one is told)",
        _unpicklable_result_stays_pending,
    )
    bug(
        "executorlib_cancel_kills_scheduler",
        "executorlib: cancel() of a call not yet taken by its scheduler thread kills that "
        "thread (CancelledError from its own future.exception()); later calls never run and "
        "shutdown(wait=True) hangs",
        _cancel_kills_later_calls,
    )
