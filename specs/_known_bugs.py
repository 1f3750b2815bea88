"""Known bugs, recognised by what the backend under test does, never by its class or module.

Each :class:`KnownBug` names an upstream issue (its id and link, and whether the bug comes from
CPython's ``concurrent.futures``) and carries a *probe*: a short, bounded experiment run on the
backend under test (its factory and its API module), which says whether that backend shows
exactly that bug. A spec test that the bug would fail names it
(``@expects_known_bug("gh-132063/result")``); where the probe finds the bug the test is a strict
xfail whose reason names the issue and its link (the report's KNOWN-BUG cell), and where it
does not, the test runs strictly. A stdlib subclass or loky, which inherit a CPython bug, thus
get the same cell as the stdlib; a fixed stdlib gets a strict run.

A probe runs at most once per backend name and process (memoised); it never waits without a
bound, shuts its pool down, and a probe that fails (the backend is too broken to try) counts as
"bug not shown": the spec then runs strictly and reports what is wrong.

Third-party bugs are added the same way::

    register(KnownBug(
        key="loky-123", issue="https://github.com/joblib/loky/issues/123",
        summary="an unpicklable exception breaks the pool",
        probe=lambda backend: ...,  # True when *backend* shows the bug
    ))

This module imports neither pytest nor Hypothesis' engine; the spec modules apply the verdict
(:func:`xfail_reason`) through their ``futures_known_bugs`` fixture.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import TYPE_CHECKING, Any, Callable

from pytest_futures_plugin import tasks
from pytest_futures_plugin.controls import Controls
from pytest_futures_plugin.guards import process_wide

from . import _known_bugs_ecosystem, _tasks
from ._harness import BOUND, join_threads_started_since, shut_down_within_bound

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pytest_futures_plugin.backends import Backend

CPYTHON_ISSUES = "https://github.com/python/cpython/issues/"

PROBE_BOUND = 10.0
"""Seconds a probe waits for any one thing at most (less where the spec bound is lower)."""


def _bound() -> float:
    return min(PROBE_BOUND, BOUND)


@dataclasses.dataclass(frozen=True)
class KnownBug:
    """One known bug: *key* (how a test names it: the issue, or ``issue/variant`` where one
    issue shows in several ways), *issue* (``gh-N``, ``bpo-N``, an issue URL, or the module of
    a reproduction shipped in ``pytest_futures_plugin.upstream``), *summary* (one line), *url*
    (the issue's page, or the reproduction's installed file; derived for a CPython ``gh-N`` or
    an issue given as a URL), *cpython* (inherited from
    CPython's ``concurrent.futures``), and *probe*: given the backend under test, whether it
    shows exactly this bug (bounded; it must shut down any pool it makes)."""

    key: str
    issue: str
    summary: str
    probe: Callable[[Backend], bool]
    url: str = ""
    cpython: bool = False
    package: str = ""
    """For a bug of a third-party executor: its top-level package (``"distributed"``). Only
    a backend whose executor is built from that package (a class of its type's MRO comes
    from it) can show this bug; another executor that behaves the same way has a bug of its
    own, which the spec reports as FAIL, not under this package's issue. CPython's bugs have
    none: any executor may inherit them, by subclassing or by copying the stdlib's code."""

    def __post_init__(self) -> None:
        if not self.url:
            if self.issue.startswith(("https://", "http://")):
                object.__setattr__(self, "url", self.issue)
            elif self.issue.startswith("gh-"):
                object.__setattr__(self, "url", CPYTHON_ISSUES + self.issue[3:])
            else:
                raise ValueError(f"KnownBug {self.key!r}: give the url of issue {self.issue!r}")

    @property
    def reason(self) -> str:
        """The xfail reason: the issue first (the report's KNOWN-BUG footnote), then why."""
        notes = ["inherited from CPython"] if self.cpython else []
        if self.url != self.issue:
            notes.append(self.url)
        return f"{self.issue}: {self.summary}" + (f" ({'; '.join(notes)})" if notes else "")


REGISTRY: dict[str, KnownBug] = {}
"""Every known bug, by key."""

_SHOWN: dict[tuple[str, str], bool] = {}
_PROBE_ERRORS: dict[tuple[str, str], BaseException] = {}
_LOCK = threading.Lock()


def register(bug: KnownBug) -> KnownBug:
    """Add *bug* to :data:`REGISTRY`. Raises ValueError if its key is taken by another bug."""
    existing = REGISTRY.setdefault(bug.key, bug)
    if existing is not bug:
        raise ValueError(f"known bug {bug.key!r} is registered already: {existing.reason}")
    return bug


def shows(backend: Backend, key: str) -> bool:
    """Whether *backend* shows the known bug *key*: its probe, run once per backend name.

    Raises KeyError naming *key* and the registered keys if no such bug is registered.
    """
    try:
        bug = REGISTRY[key]
    except KeyError:
        raise KeyError(f"no known bug {key!r}; registered: {', '.join(sorted(REGISTRY))}") from None
    seen = (backend.name, key)
    with _LOCK:
        if seen not in _SHOWN:
            try:
                with process_wide():  # the library's own threads, started on first use
                    _SHOWN[seen] = (
                        not bug.package or bug.package in _packages_of(backend)
                    ) and bool(bug.probe(backend))
            except Exception as error:  # too broken to try: the spec itself will say why
                _PROBE_ERRORS[seen] = error
                _SHOWN[seen] = False
        return _SHOWN[seen]


_PACKAGES: dict[str, frozenset[str]] = {}


def _packages_of(backend: Backend) -> frozenset[str]:
    """The top-level packages of the classes an executor of *backend* is built from (the MRO
    of its type), found once per backend name."""
    if backend.name not in _PACKAGES:
        pool = backend.make(max_workers=1)
        try:
            mro = type(pool).__mro__
        finally:
            shut_down_within_bound(pool, "of a known-bug probe")
        _PACKAGES[backend.name] = frozenset(c.__module__.partition(".")[0] for c in mro)
    return _PACKAGES[backend.name]


def xfail_reason(backend: Backend, keys: tuple[str, ...]) -> str | None:
    """The strict-xfail reason for a test that names the bugs *keys*: that of every bug the
    backend shows, joined; None when it shows none of them (the test then runs strictly)."""
    reasons = [REGISTRY[key].reason for key in keys if shows(backend, key)]
    return "; ".join(reasons) or None


def expects_known_bug(*keys: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a spec test that the known bugs *keys* would fail: its ``futures_known_bugs``
    fixture (requested by the test) reads them from the function.

    Raises KeyError at import naming an unregistered key.
    """
    for key in keys:
        if key not in REGISTRY:
            raise KeyError(f"no known bug {key!r}; registered: {', '.join(sorted(REGISTRY))}")

    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        test.__futures_known_bugs__ = (*getattr(test, "__futures_known_bugs__", ()), *keys)  # type: ignore[attr-defined]
        return test

    return mark


def named_by(test: Callable[..., Any]) -> tuple[str, ...]:
    """The keys of the known bugs *test* was decorated with (see :func:`expects_known_bug`)."""
    keys: tuple[str, ...] = getattr(test, "__futures_known_bugs__", ())
    return keys


# ------------------------------------------------------------------------------------------
# The probes of the bugs CPython's concurrent.futures has (or had)


def _falsy_outcome(backend: Backend) -> tuple[BaseException | None, bool]:
    """Run a call raising a falsy exception on a one-worker pool of *backend*: what
    ``exception()`` gives, and whether ``result()`` raised."""
    pool = backend.make(max_workers=1)
    try:
        future: Future[Any] = pool.submit(tasks.raise_exception, _tasks.FalsyError("probe"))
        error = future.exception(timeout=_bound())
        try:
            future.result(timeout=0)
        except _tasks.FalsyError:
            return error, True
        return error, False
    finally:
        shut_down_within_bound(pool, "of a known-bug probe")


def _falsy_lost_by_exception(backend: Backend) -> bool:
    error, _ = _falsy_outcome(backend)
    return error is None


def _falsy_lost_by_result(backend: Backend) -> bool:
    _, raised = _falsy_outcome(backend)
    return not raised


def _falsy_lost_by_map(backend: Backend) -> bool:
    """``map`` over a call raising a falsy exception yields None instead of raising it (the
    stdlib's map takes each result with ``result()``; an executor whose map reads its results
    another way, dask's, does not inherit the bug from its futures). On the stdlib's process
    pool the lost exception leaves its chunk's result None, which ``map`` then fails to
    reverse: an AttributeError instead of the call's exception."""
    pool = backend.make(max_workers=1)
    try:
        results = pool.map(_tasks.return_or_raise, [_tasks.FalsyError("probe")], timeout=_bound())
        try:
            list(results)
        except _tasks.FalsyError:
            return False
        except AttributeError as error:
            return "reverse" in str(error)  # the process pool's chunk of a lost exception
        return True
    finally:
        shut_down_within_bound(pool, "of a known-bug probe")


_FALSY = (
    "the stdlib's Future.result() tests `if self._exception:`, and its process pool "
    "`if result_item.exception:`, so a falsy exception is lost"
)
register(
    KnownBug(
        key="gh-132063/result",
        issue="gh-132063",
        summary=_FALSY + " (result() returns None)",
        probe=_falsy_lost_by_result,
        cpython=True,
    )
)
register(
    KnownBug(
        key="gh-132063/map",
        issue="gh-132063",
        summary=_FALSY + " (map() yields None, or fails with AttributeError on a process pool)",
        probe=_falsy_lost_by_map,
        cpython=True,
    )
)
register(
    KnownBug(
        key="gh-132063/exception",
        issue="gh-132063",
        summary=_FALSY + " (exception() returns None)",
        probe=_falsy_lost_by_exception,
        cpython=True,
    )
)

QUEUED_BEHIND = 8
"""Calls a probe queues behind a blocked one."""


def _cancel_futures_leaves_waiters(backend: Backend) -> bool:
    """``shutdown(wait=False, cancel_futures=True)`` cancels a queued future, yet
    ``wait(timeout=0)`` reports it not done (its waiters were never notified)."""
    if not backend.capabilities.cancel_futures:
        return False
    api = backend.api
    with Controls(timeout=_bound()) as controls:
        gate = controls.gate("probe")
        before = set(threading.enumerate())
        pool = backend.make(max_workers=1)
        try:
            pool.submit(tasks.block_on, gate)
            gate.wait_inside(1, timeout=_bound())
            last = [pool.submit(tasks.return_value, i) for i in range(QUEUED_BEHIND)][-1]
            pool.shutdown(wait=False, cancel_futures=True)
            try:
                last.result(timeout=_bound())  # a process pool cancels in its manager thread
            except api.CancelledError:
                pass
            if not last.cancelled():
                return False
            return last in api.wait([last], timeout=0).not_done
        finally:
            gate.release()
            shut_down_within_bound(pool, "of a known-bug probe")
            join_threads_started_since(before)


def _in_threads_leaves_waiters(backend: Backend) -> bool:
    return not backend.capabilities.processes and _cancel_futures_leaves_waiters(backend)


def _in_processes_leaves_waiters(backend: Backend) -> bool:
    return backend.capabilities.processes and _cancel_futures_leaves_waiters(backend)


_WAITERS = (
    "shutdown(cancel_futures=True) cancels queued futures without notifying wait()/as_completed()"
)
register(
    KnownBug(
        key="gh-109934",
        issue="gh-109934",
        summary=_WAITERS + " (thread pool)",
        probe=_in_threads_leaves_waiters,
        cpython=True,
    )
)
register(
    KnownBug(
        key="gh-136655",
        issue="gh-136655",
        summary=_WAITERS + " (process pool)",
        probe=_in_processes_leaves_waiters,
        cpython=True,
    )
)


def _shares_one_broken_process_pool(backend: Backend) -> bool:
    """A worker dies with two calls submitted: both futures fail with the very same exception
    instance. The worker crashes only once both calls are submitted: a pool that broke before
    the second ``submit`` would raise there instead of failing its future."""
    if not backend.capabilities.processes:
        return False
    with Controls(timeout=_bound()) as controls:
        crash, pids = controls.gate("crash"), controls.recorder("pids")
        held = controls.gate("held until both calls are submitted")
        pool = backend.make(max_workers=1)
        try:
            futures: list[Future[Any]] = [
                pool.submit(_tasks.hold, held, crash, pids, "crashes", os.getpid()),
                pool.submit(tasks.return_value, "queued behind the crash"),
            ]
            held.wait_inside(1, timeout=_bound())
            crash.release()
            held.release()
            errors = [future.exception(timeout=_bound()) for future in futures]
        finally:
            controls.close()
            shut_down_within_bound(pool, "of a known-bug probe's broken pool")
    return errors[0] is not None and errors[0] is errors[1]


register(
    KnownBug(
        key="gh-101267",
        issue="gh-101267",
        summary="the process pool fails every future of a broken pool with one shared "
        "BrokenProcessPool instance",
        probe=_shares_one_broken_process_pool,
        cpython=True,
    )
)


def _unnotified_cancel_not_done(backend: Backend) -> bool:
    """A future cancelled by ``cancel()`` alone (no pool) is not done for ``wait()``."""
    api = backend.api
    future: Future[Any] = api.Future()
    future.cancel()
    return future in api.wait([future], timeout=0).not_done


register(
    KnownBug(
        key="gh-92001",
        issue="gh-92001",
        summary="wait() and as_completed() count a future cancelled by cancel() alone as not "
        "done until set_running_or_notify_cancel()",
        probe=_unnotified_cancel_not_done,
        cpython=True,
    )
)


# ------------------------------------------------------------------------------------------
# The bugs of third-party executors (their probes live in their own module)

_known_bugs_ecosystem.register_all()


__all__ = [
    "REGISTRY",
    "KnownBug",
    "expects_known_bug",
    "named_by",
    "register",
    "shows",
    "xfail_reason",
]
