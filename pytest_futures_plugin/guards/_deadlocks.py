"""The deadlock watcher: futures on real threads that can never complete, reported in seconds.

Standard library only.  A daemon thread (:data:`WATCHER_THREAD_NAME`) reads every thread's
stack every *interval* seconds, lock-free, and builds the futures' wait-for graph: a thread
**waits** when its innermost futures call (``Future.result()``/``exception()``, ``wait()``,
``as_completed()``, the stdlib's or executor_impl's; or ``Thread.join()``) has **no timeout**
(a wait with a timeout ends by itself: never a deadlock); ``result()`` and ``wait(ALL_COMPLETED)``
need every future, ``wait(FIRST_*)`` and ``as_completed()`` any one.  A future is **run** by the
worker whose frames show it, or **queued** in the thread pool whose queue holds it.

Everything else may progress: a thread blocked on an Event, a lock, a socket, a sleep; a future
running in another process or a pool this module does not know, or held by no pool.  Progress
propagates (a future run by a progressing thread can complete; a queued one can start if its
pool has a progressing worker or room for a thread; a waiting thread progresses if what it
needs can complete); what is left can never progress: a **cycle** (T waits on F run by W, W on
G run by T) or a **starved pool** (every worker waits on futures queued in it).  Only a state
two consecutive polls saw alike (threads, wait frames, futures and their states) counts.

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
import os
import sys
import sysconfig
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable

from pytest_futures_plugin._thread_dump import blocked_on, running_futures, wait_line

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

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

_FUTURES = ("concurrent/futures/_base.py", "executor_impl/_future.py", "executor_impl/_waiting.py")
_STDLIB_WORKER = "concurrent/futures/thread.py"
_OUR_WORKER = "executor_impl/thread.py"
_DONE = frozenset(("CANCELLED", "CANCELLED_AND_NOTIFIED", "FINISHED"))
_QUEUED = frozenset(("PENDING", "CANCELLED"))  # what a pool's queue may still hold
_ANY = frozenset(("FIRST_COMPLETED", "FIRST_EXCEPTION"))
# Frames of the stdlib, this plugin and executor_impl are not "the user's code" in a report.
_PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_DIRS = tuple(
    os.path.normpath(path).replace(os.sep, "/") + "/"
    for path in (sysconfig.get_paths()["stdlib"], _PLUGIN_DIR, _PLUGIN_DIR + "/../executor_impl")
)


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


class _Wait:
    """One thread's blocking wait: its kind, the frame of the call, what it needs."""

    __slots__ = ("every", "frame", "futures", "joined", "kind", "stack")

    def __init__(self, stack: FrameType, frame: FrameType, kind: str) -> None:
        self.stack = stack  # the innermost frame
        self.frame = frame  # the frame of result()/wait()/as_completed()/join()
        self.kind = kind
        self.futures: list[Any] = []
        self.joined: int | None = None  # ident of the thread a join() waits for
        self.every = True  # needs every future (else any one)


class _Pool:
    """A thread pool seen through its workers' frames: its queue, its workers, its size."""

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


def _name_threads(frames: dict[int, FrameType]) -> dict[int, str]:
    threads = {t.ident: t.name for t in threading.enumerate()}
    names = {ident: threads.get(ident, f"<unknown thread {ident}>") for ident in frames}
    counts = collections.Counter(names.values())
    return {i: n if counts[n] == 1 else f"{n} (ident {i})" for i, n in names.items()}


def _path(frame: FrameType) -> str:
    return frame.f_code.co_filename.replace(os.sep, "/")


def _find_wait(stack: FrameType, threads: dict[int, threading.Thread]) -> _Wait | None:
    """The innermost blocking wait of a stack, or None if it has none or it has a timeout."""
    frame: FrameType | None = stack
    while frame is not None:
        name, path = frame.f_code.co_name, _path(frame)
        if name in ("result", "exception", "wait", "as_completed") and path.endswith(_FUTURES):
            local = frame.f_locals
            if local.get("timeout") is not None:
                return None
            wait = _Wait(stack, frame, name)
            wait.futures = [f for f in blocked_on(stack) if f is not None]
            wait.every = name in ("result", "exception") or (
                name == "wait" and local.get("return_when") not in _ANY
            )
            return wait
        if name == "join" and path.endswith("/threading.py"):
            target = frame.f_locals.get("self")
            if not isinstance(target, threading.Thread) or frame.f_locals.get("timeout"):
                return None
            wait = _Wait(stack, frame, "join")
            wait.joined = target.ident if target.ident in threads else None
            return wait
        frame = frame.f_back
    return None


def _find_pool(stack: FrameType, pools: dict[int, _Pool]) -> _Pool | None:
    """The pool whose worker loop is on this stack (stdlib's or executor_impl's), if any."""
    frame: FrameType | None = stack
    while frame is not None:
        if frame.f_code.co_name == "_worker" and _path(frame).endswith(
            (_STDLIB_WORKER, _OUR_WORKER)
        ):
            local = frame.f_locals
            queue = local.get("work_queue")
            if queue is None:
                return None
            pool = pools.get(id(queue))
            if pool is None:
                ref = local.get("executor_reference", local.get("pool_ref"))
                executor = ref() if isinstance(ref, weakref.ref) else None
                pool = pools[id(queue)] = _Pool(queue, executor)
            return pool
        frame = frame.f_back
    return None


class _Graph:
    """One poll's wait-for graph and what in it can never progress."""

    def __init__(self, frames: dict[int, FrameType]) -> None:
        threads = {t.ident: t for t in threading.enumerate() if t.ident is not None}
        self.frames = frames
        self.names = _name_threads(frames)
        self.waits: dict[int, _Wait] = {}
        for ident, stack in frames.items():
            wait = _find_wait(stack, threads)
            if wait is not None:
                self.waits[ident] = wait
        # The rest reads pool workers' locals (before 3.13 a copy the frame keeps until the
        # next read): only when some thread waits without a timeout.
        self.workers: dict[int, str] = {}  # id(future) -> name of the thread running it
        self.runner: dict[int, int] = {}  # id(future) -> ident of the thread running it
        self._pools: dict[int, _Pool] | None = None
        self._queued: dict[int, _Pool] | None = None
        if self.waits:
            by_name = {name: ident for ident, name in self.names.items()}
            self.workers = running_futures(frames, self.names)
            self.runner = {f: by_name[n] for f, n in self.workers.items() if n in by_name}
        self.stuck = self._stuck() if self.waits else set()

    @property
    def pools(self) -> dict[int, _Pool]:
        """The thread pools whose worker loops are on some stack, by id of their queue."""
        if self._pools is None:
            self._pools = {}
            for ident, stack in self.frames.items():
                pool = _find_pool(stack, self._pools)
                if pool is not None:
                    pool.workers.add(ident)
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
            return True  # running where no frame shows it: another process, an unknown pool
        pool = self.queued_in(future)
        if pool is None:
            return True  # in no pool we know: anyone may still set it
        return pool.has_room() or any(worker in live for worker in pool.workers)

    def _stuck(self) -> set[int]:
        live = set(self.frames) - set(self.waits)
        progress = True
        while progress:
            progress = False
            for ident, wait in self.waits.items():
                if ident in live:
                    continue
                if wait.kind == "join":
                    ok = wait.joined is None or wait.joined in live
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
                id(self.waits[ident].frame),
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

    def report(self, elapsed: float, context: str) -> FuturesDeadlockError:
        graph: list[str] = []
        edges: dict[int, list[int]] = {}
        order = sorted(
            self.stuck, key=lambda i: (i != threading.main_thread().ident, self.names[i])
        )
        for ident in order:
            wait = self.waits[ident]
            line = wait_line(self.names[ident], wait.stack, self.workers) or (
                f"{self.names[ident]} waits in {wait.kind}()"
            )
            pools = [
                self.queued_in(f) for f in wait.futures if getattr(f, "_state", None) in _QUEUED
            ]
            pool = next((p for p in pools if p is not None), None)
            if pool is not None:
                line += f" (queued in {pool.describe()}: no worker has started it)"
            where = _user_frame(wait.frame)
            if where:
                line += f", at {where}"
            graph.append(line)
            targets = [self.runner[id(f)] for f in wait.futures if id(f) in self.runner]
            if wait.joined is not None:
                targets.append(wait.joined)
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


def _user_frame(frame: FrameType | None) -> str:
    """``file:line in function`` of the first caller outside the stdlib and this package."""
    while frame is not None:
        path = _path(frame)
        if not path.startswith(_LIBRARY_DIRS) and not path.startswith("<"):
            return f"{os.path.basename(path)}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return ""


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

_LOCK_BOUND = 1.0  # seconds the watcher waits for a future's lock (its holder is running)


def _inner(wait: _Wait, name: str, path: str) -> FrameType | None:
    """The frame called *name* in *path* between the innermost frame and the wait's frame."""
    frame: FrameType | None = wait.stack
    while frame is not None and frame is not wait.frame:
        if frame.f_code.co_name == name and _path(frame).endswith(path):
            return frame
        frame = frame.f_back
    return None


def _wake(wait: _Wait) -> bool:
    """Wake one deadlocked thread without completing anything it waits on; False if its kind
    of wait cannot be woken that way (``as_completed()`` loops, ``join()`` has no waiter)."""
    ours = "executor_impl/" in _path(wait.frame)
    if wait.kind in ("result", "exception"):
        future: Any = wait.frame.f_locals.get("self")
        lock: Any = getattr(future, "_condition", None)
        if ours:  # executor_impl parks each waiter on a lock of its own
            inner = _inner(wait, "_wait_until_done", "executor_impl/_future.py")
            parked: Any = inner.f_locals.get("parked") if inner is not None else None
            if parked is None or lock is None or not lock.acquire(True, _LOCK_BOUND):
                return False
            try:
                blocked = future._blocked
                if not blocked or not any(p is parked for p in blocked):
                    return False
                blocked.remove(parked)
            finally:
                lock.release()
            parked.release()  # result() finds the future not done: TimeoutError
            return True
        inner = _inner(wait, "wait", "/threading.py")  # Condition.wait on the future's lock
        waiter: Any = inner.f_locals.get("waiter") if inner is not None else None
        waiters: Any = getattr(lock, "_waiters", None)
        if waiter is None or waiters is None or not lock.acquire(True, _LOCK_BOUND):
            return False
        try:
            if not any(w is waiter for w in waiters):
                return False
            waiters.remove(waiter)
            waiter.release()  # what notify() does for this one waiter
        finally:
            lock.release()
        return True
    if wait.kind == "wait":
        if ours:
            inner = _inner(wait, "take", "executor_impl/_waiting.py")
            gate: Any = inner.f_locals.get("self") if inner is not None else None
            guard: Any = getattr(gate, "_lock", None)
            if guard is None or not guard.acquire(True, _LOCK_BOUND):
                return False
            try:
                if gate._open:
                    return False
                gate._open = True
                gate._gate.release()  # take() returns what finished so far
            finally:
                guard.release()
            return True
        event = getattr(wait.frame.f_locals.get("waiter"), "event", None)
        if event is None:
            return False
        event.set()  # wait() returns (done, not_done) as they are
        return True
    return False


def _cancel(future: Any) -> None:
    """Cancel a queued future and tell its ``wait()``/``as_completed()`` waiters now.

    The pool would tell them when a worker dequeues the call, which a starved pool never does;
    that late notification finds no waiter left (each removes itself once told).
    """
    future.cancel()
    lock = future._condition
    if not lock.acquire(True, _LOCK_BOUND):
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
        else:
            with contextlib.suppress(Exception):
                _wake(wait)


# -- the watcher -------------------------------------------------------------------------------


class DeadlockWatcher:
    """Poll every thread's stack every *interval* seconds from a daemon thread; on a deadlock
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
        self._started = 0.0
        self._previous: frozenset[tuple[Any, ...]] | None = None
        self._reported: set[frozenset[tuple[Any, ...]]] = set()

    def start(self) -> DeadlockWatcher:
        """Start the watcher thread."""
        if self._thread is not None:
            raise RuntimeError("a DeadlockWatcher watches one region; create one per region")
        self._started = _real_monotonic()
        self._thread = threading.Thread(target=self._run, name=WATCHER_THREAD_NAME, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the watcher thread and wait for it (at most one poll)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()

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
        frames = {k: v for k, v in sys._current_frames().items() if k not in exclude}
        graph = _Graph(frames)
        del frames
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
