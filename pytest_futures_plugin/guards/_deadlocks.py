"""The deadlock watcher: futures on real threads that can never complete, reported in seconds.

Standard library only.  While a watcher is active, every wait with **no timeout** on futures
(``Future.result()``/``exception()``, ``wait()``, ``as_completed()``, the stdlib's or
executor_impl's; or ``Thread.join()``) registers itself from its own thread, and every pool
worker records the future it runs (:mod:`._waits`: no thread's frames are read but the
thread's own).  A daemon thread (:data:`WATCHER_THREAD_NAME`) reads those registries every
*interval* seconds and builds the futures' wait-for graph: a thread **waits** while its
innermost such call is registered (a wait with a timeout ends by itself: never a deadlock);
``result()`` and ``wait(ALL_COMPLETED)`` need every future, ``wait(FIRST_*)`` and
``as_completed()`` any one.  A future is **run** by the worker that recorded it, or
**queued** in the thread pool (the stdlib's or executor_impl's, from the registry of worker
threads and queues each keeps) whose queue holds it.

Everything else may progress: a thread blocked on an Event, a lock, a socket, a sleep; a future
running in another process or a pool this module does not know, or held by no pool.  Progress
propagates (a future run by a progressing thread can complete; a queued one can start if its
pool has a progressing worker or room for a thread; a waiting thread progresses if what it
needs can complete); what is left can never progress: a **cycle** (T waits on F run by W, W on
G run by T) or a **starved pool** (every worker waits on futures queued in it).  Only a state
two consecutive polls saw alike (threads, waits, futures and their states) counts.  A pool
written in Python that keeps no such registry (a third-party one, not derived from the
stdlib's) is not seen: a future it runs counts as one that may complete, so its deadlocks are
left to the hang guard.

The watcher then records a :class:`FuturesDeadlockError` and **recovers** without completing a
future behind its worker's back (whose own ``set_result`` would then raise
``InvalidStateError``): it cancels the queued futures the threads wait on, wakes each
deadlocked ``result()`` (which raises ``TimeoutError``, as on a spurious wake-up) and
``wait()`` (which returns what is done); their tasks end, their futures complete normally, and
``as_completed()`` and ``join()`` follow.  A deadlock still there two polls later (a cycle of
``as_completed()`` only) gets its futures failed, as the hang guard's recovery does.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable

from pytest_futures_plugin._thread_dump import _describe_future, _describe_futures

from . import _waits
from ._waits import LOCK_BOUND, Wait

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "DEFAULT_INTERVAL",
    "WATCHER_THREAD_NAME",
    "DeadlockWatcher",
    "FuturesDeadlockError",
]

WATCHER_THREAD_NAME = "pytest-futures-deadlock-watch"
DEFAULT_INTERVAL = 0.2
"""Seconds between two polls: a deadlock is reported 2 to 3 polls after it formed."""

_real_monotonic = time.monotonic  # the real clock, whatever a scheduler patches later

_DONE = frozenset(("CANCELLED", "CANCELLED_AND_NOTIFIED", "FINISHED"))
_QUEUED = frozenset(("PENDING", "CANCELLED"))  # what a pool's queue may still hold
_CALLS = {
    "result": "Future.result()",
    "exception": "Future.exception()",
    "wait": "wait()",
    "as_completed": "as_completed()",
    "join": "Thread.join()",
}


class FuturesDeadlockError(AssertionError):
    """Threads wait on futures that can never complete; the message is the report.

    ``graph`` holds a line per deadlocked thread; ``cycle`` the thread names of a cycle, if
    there is one; ``starved`` a line per pool whose every worker waits on its own queue.  An
    ``AssertionError`` for the same reasons as the hang guard's error (pytest's teardown and
    unittest count it as a failure).
    """

    def __init__(self, message: str, graph: list[str], cycle: list[str], starved: list[str]):
        super().__init__(message)
        self.graph = graph
        self.cycle = cycle
        self.starved = starved


class _Pool:
    """A thread pool seen through its module's registry of workers: its queue, workers, size."""

    __slots__ = ("executor", "queue", "workers")

    def __init__(self, queue: Any, executor: Any) -> None:
        self.queue = queue
        self.executor = executor
        self.workers: set[int] = set()

    def has_room(self) -> bool:
        """Whether a new submit could still start a thread (or the pool is unknown/gone)."""
        executor = self.executor
        if executor is None:
            return True
        try:
            return bool(len(executor._threads) < executor._max_workers)
        except (AttributeError, TypeError):
            return True

    def queued(self) -> list[Any]:
        """The futures in the queue, read without taking anything off it."""
        found: list[Any] = []
        for ref in gc.get_referents(self.queue):  # the items, or the list holding them
            for item in ref if isinstance(ref, list) else (ref,):
                future = getattr(item, "future", None)  # the stdlib's _WorkItem
                if future is None and isinstance(item, tuple) and item:
                    future = item[0]  # executor_impl's (future, fn, args, kwargs)
                if hasattr(future, "set_running_or_notify_cancel"):
                    found.append(future)
        return found

    def describe(self) -> str:
        name = type(self.executor).__name__ if self.executor is not None else "pool"
        size = getattr(self.executor, "_max_workers", "?")
        return f"{name}(max_workers={size})"


def _name_threads(threads: dict[int, threading.Thread]) -> dict[int, str]:
    names = {ident: thread.name for ident, thread in threads.items()}
    counts = collections.Counter(names.values())
    return {i: n if counts[n] == 1 else f"{n} (ident {i})" for i, n in names.items()}


def _find_pools(alive: dict[int, threading.Thread]) -> dict[int, _Pool]:
    """The thread pools with a worker alive, by id of their queue: the stdlib's and
    executor_impl's, from the registry of worker threads and queues each pool module keeps
    (the executor from the weak reference each worker was started with)."""
    import concurrent.futures.thread as stdlib_thread

    import executor_impl.thread as our_thread

    pools: dict[int, _Pool] = {}
    for registry in (stdlib_thread._threads_queues, our_thread._live_workers):
        for _ in range(3):  # a worker that starts or ends meanwhile changes the registry
            try:
                workers = list(registry.items())
                break
            except RuntimeError:
                continue
        else:
            continue
        for thread, queue in workers:
            if thread.ident not in alive:
                continue
            pool = pools.get(id(queue))
            if pool is None:
                args = getattr(thread, "_args", None)  # gone once the worker ended
                ref = args[0] if isinstance(args, tuple) and args else None
                executor = ref() if isinstance(ref, weakref.ref) else None
                pool = pools[id(queue)] = _Pool(queue, executor)
            pool.workers.add(thread.ident)
    return pools


def _innermost(alive: dict[int, threading.Thread]) -> dict[int, Wait]:
    """Each living thread's innermost registered wait."""
    found: dict[int, Wait] = {}
    for wait in _waits.waits.copy().values():
        if wait.ident in alive:
            other = found.get(wait.ident)
            if other is None or other.seq < wait.seq:
                found[wait.ident] = wait
    return found


class _Graph:
    """One poll's wait-for graph and what in it can never progress."""

    def __init__(self, exclude: tuple[int, ...] = ()) -> None:
        alive = {
            t.ident: t
            for t in threading.enumerate()
            if t.ident is not None and t.ident not in exclude
        }
        self.alive = alive
        self.names = _name_threads(alive)
        self.waits = _innermost(alive)
        self.workers: dict[int, str] = {}  # id(future) -> name of the thread running it
        self.runner: dict[int, int] = {}  # id(future) -> ident of the thread running it
        self._pools: dict[int, _Pool] | None = None
        self._queued: dict[int, _Pool] | None = None
        if self.waits:
            for ident, ref in _waits.running.copy().items():
                future = ref()
                if ident in alive and getattr(future, "_state", "FINISHED") not in _DONE:
                    self.runner[id(future)] = ident
                    self.workers[id(future)] = self.names[ident]
        self.stuck = self._stuck() if self.waits else set()

    @property
    def pools(self) -> dict[int, _Pool]:
        """The thread pools with a worker alive, by id of their queue."""
        if self._pools is None:
            self._pools = _find_pools(self.alive)
        return self._pools

    def queued_in(self, future: Any) -> _Pool | None:
        """The pool whose queue holds *future*, if any."""
        if self._queued is None:
            self._queued = {}
            for pool in self.pools.values():
                for queued in pool.queued():
                    self._queued[id(queued)] = pool
        return self._queued.get(id(future))

    def _future_can_complete(self, future: Any, live: set[int], *, notified: bool) -> bool:
        """Whether *future* may still complete (*notified*: complete for ``wait()`` and
        ``as_completed()``, which learn of a cancel only once a worker dequeues the call)."""
        state = getattr(future, "_state", None)
        if state in _DONE and not (notified and state == "CANCELLED"):
            return True
        runner = self.runner.get(id(future))
        if runner is not None:
            return runner in live
        if state not in _QUEUED:
            return True  # running where no worker recorded it: another process, an unknown pool
        pool = self.queued_in(future)
        if pool is None:
            return True  # in no pool we know: anyone may still set it
        return pool.has_room() or any(worker in live for worker in pool.workers)

    def _stuck(self) -> set[int]:
        live = set(self.alive) - set(self.waits)
        progress = True
        while progress:
            progress = False
            for ident, wait in self.waits.items():
                if ident in live:
                    continue
                if wait.kind == "join":
                    joined = wait.joined.ident if wait.joined is not None else None
                    ok = joined not in self.alive or joined in live
                else:
                    notified = wait.kind in ("wait", "as_completed")
                    can = [
                        self._future_can_complete(f, live, notified=notified) for f in wait.futures
                    ]
                    ok = (all(can) if wait.every else any(can)) if can else True
                if ok:
                    live.add(ident)
                    progress = True
        return set(self.waits) - live

    def signature(self) -> frozenset[tuple[Any, ...]]:
        """What two polls must share to count as the same deadlock."""
        return frozenset(
            (
                ident,
                id(self.waits[ident]),
                tuple((id(f), getattr(f, "_state", None)) for f in self.waits[ident].futures),
            )
            for ident in self.stuck
        )

    def queued_futures(self) -> list[Any]:
        """The pending futures the deadlocked threads wait on that a pool still holds."""
        found = {}
        for ident in self.stuck:
            for future in self.waits[ident].futures:
                if getattr(future, "_state", None) in _QUEUED and self.queued_in(future):
                    found[id(future)] = future
        return list(found.values())

    # -- the report ----------------------------------------------------------------------------

    def _line(self, ident: int, wait: Wait) -> str:
        """``<thread> waits in <call> on <what> (inside <context>)``, as the hang guard's."""
        if wait.kind == "join":
            target = f"thread {wait.joined.name if wait.joined is not None else '?'!r}"
        elif wait.kind in ("result", "exception"):
            target = _describe_future(wait.futures[0], self.workers)
        else:
            target = _describe_futures(wait.futures, self.workers)
        via = f" (inside {', '.join(wait.via)})" if wait.via else ""
        return f"{self.names[ident]} waits in {_CALLS[wait.kind]} on {target}{via}"

    def report(self, elapsed: float, context: str) -> FuturesDeadlockError:
        graph: list[str] = []
        edges: dict[int, list[int]] = {}
        order = sorted(
            self.stuck, key=lambda i: (i != threading.main_thread().ident, self.names[i])
        )
        for ident in order:
            wait = self.waits[ident]
            line = self._line(ident, wait)
            pools = [
                self.queued_in(f) for f in wait.futures if getattr(f, "_state", None) in _QUEUED
            ]
            pool = next((p for p in pools if p is not None), None)
            if pool is not None:
                line += f" (queued in {pool.describe()}: no worker has started it)"
            if wait.where:
                line += f", at {wait.where}"
            graph.append(line)
            targets = [self.runner[id(f)] for f in wait.futures if id(f) in self.runner]
            if wait.joined is not None and wait.joined.ident is not None:
                targets.append(wait.joined.ident)
            edges[ident] = [t for t in targets if t in self.stuck]
        cycle = [self.names[i] for i in _find_cycle(edges, order)]
        starved = [
            f"{pool.describe()}: every worker ({', '.join(sorted(self.names[w] for w in pool.workers))}) "
            "waits on futures queued in that same pool"
            for pool in self.pools.values()
            if pool.workers
            and pool.workers <= self.stuck
            and not pool.has_room()
            and any(self.queued_in(f) is pool for w in pool.workers for f in self.waits[w].futures)
        ]
        text = [
            (
                "Deadlock on real threads: these threads wait, with no timeout, on futures that "
                f"can never complete (found by pytest-futures' deadlock watcher {elapsed:.1f} s "
                f"into the test{'; ' + context if context else ''})."
            )
        ]
        text.append("Wait-for graph:")
        text.extend(f"  {line}" for line in graph)
        if cycle:
            text.append("Cycle: " + " -> ".join([*cycle, cycle[0]]))
        text.extend(f"Starvation: {line}" for line in starved)
        text.append(
            "The deadlocked waits were released (queued futures cancelled, Future.result() "
            "raised TimeoutError) so that the test can end."
        )
        return FuturesDeadlockError("\n".join(text), graph, cycle, starved)


def _find_cycle(edges: dict[int, list[int]], order: list[int]) -> list[int]:
    """A cycle of the graph *edges* (depth-first from each node in *order*), or []."""
    done: set[int] = set()

    def visit(node: int, path: list[int]) -> list[int]:
        if node in path:
            return path[path.index(node) :]
        if node in done:
            return []
        path.append(node)
        for target in edges.get(node, ()):
            found = visit(target, path)
            if found:
                return found
        path.pop()
        done.add(node)
        return []

    for start in order:
        found = visit(start, [])
        if found:
            return found
    return []


# -- recovery ----------------------------------------------------------------------------------


def _cancel(future: Any) -> None:
    """Cancel a queued future and tell its ``wait()``/``as_completed()`` waiters now.

    The pool would tell them when a worker dequeues the call, which a starved pool never does;
    that late notification finds no waiter left (each removes itself once told).
    """
    future.cancel()
    lock = future._condition
    if not lock.acquire(True, LOCK_BOUND):
        return
    try:
        if future._state == "CANCELLED":
            for waiter in list(future._waiters):
                waiter.add_cancelled(future)
    finally:
        lock.release()


def _recover(graph: _Graph, error: BaseException, *, force: bool) -> None:
    """Unblock the deadlocked threads (see the module docstring); *force* fails the futures
    they wait on instead, for a deadlock the gentle way did not end."""
    for future in graph.queued_futures():
        with contextlib.suppress(Exception):
            _cancel(future)
    for ident in graph.stuck:
        wait = graph.waits[ident]
        if force:
            for future in wait.futures:
                with contextlib.suppress(Exception):  # finished meanwhile: InvalidStateError
                    if not future.done():
                        future.set_exception(error)
        elif wait.wake is not None:
            with contextlib.suppress(Exception):
                wait.wake()


# -- the watcher -------------------------------------------------------------------------------


class DeadlockWatcher:
    """Poll the registered waits every *interval* seconds from a daemon thread; on a deadlock
    record a :class:`FuturesDeadlockError` in ``errors`` (and pass it to *on_report*, called in
    the watcher thread, which must not block) and unblock the deadlocked threads.

    Use ``with DeadlockWatcher(context="test: t.py::t"):`` around a region, or ``start()`` and
    ``stop()``; ``with watcher.watching():`` around a part of it raises the first deadlock
    found while that part ran, at its end.  Raises ``ValueError`` for an *interval* that is
    not a positive number, ``RuntimeError`` if started twice.
    """

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        context: str = "",
        *,
        on_report: Callable[[FuturesDeadlockError], object] | None = None,
    ) -> None:
        """Prepare a watcher; its thread starts with ``start()``."""
        if not (isinstance(interval, (int, float)) and 0 < interval < 3600):
            raise ValueError(f"deadlock watcher interval must be in (0, 3600) s, got {interval!r}")
        self.interval = float(interval)
        self.context = context
        self.on_report = on_report
        self.errors: list[FuturesDeadlockError] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watching = False
        self._started = 0.0
        self._previous: frozenset[tuple[Any, ...]] | None = None
        self._reported: set[frozenset[tuple[Any, ...]]] = set()

    def start(self) -> DeadlockWatcher:
        """Start the watcher thread."""
        if self._thread is not None:
            raise RuntimeError("a DeadlockWatcher watches one region; create one per region")
        self._started = _real_monotonic()
        _waits.activate()  # from now on, waits with no timeout register themselves
        self._watching = True
        self._thread = threading.Thread(target=self._run, name=WATCHER_THREAD_NAME, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the watcher thread and wait for it (at most one poll)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()
        if self._watching:
            self._watching = False
            _waits.deactivate()

    def __enter__(self) -> DeadlockWatcher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Raise, at the end of the block, the first deadlock found while it ran (in place of
        the block's own error, which the recovery caused)."""
        seen = len(self.errors)
        try:
            yield
        except BaseException:
            if len(self.errors) > seen:
                raise self.errors[seen] from None
            raise
        if len(self.errors) > seen:
            raise self.errors[seen]

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            try:
                self.poll(exclude=(me,))
            except Exception:  # pragma: no cover - a watcher must never take the test down
                self._previous = None

    def poll(self, exclude: tuple[int, ...] = ()) -> FuturesDeadlockError | None:
        """One poll: the deadlock it recorded, if this look confirmed the previous one."""
        graph = _Graph(exclude)
        if not graph.stuck:
            self._previous = None
            return None
        signature = graph.signature()
        if signature != self._previous:
            self._previous = signature
            return None
        self._previous = None
        if signature in self._reported:  # the gentle recovery did not end it
            _recover(graph, self.errors[-1], force=True)
            return None
        self._reported.add(signature)
        error = graph.report(_real_monotonic() - self._started, self.context)
        self.errors.append(error)
        if self.on_report is not None:
            with contextlib.suppress(Exception):
                self.on_report(error)
        _recover(graph, error, force=False)
        return error
