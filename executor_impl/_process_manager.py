"""The machinery behind ProcessPoolExecutor: the state a pool shares with its manager
thread (dispatch, settle, break, release) and that thread's loop (see ``process.py`` for the
data-flow picture; ``_process_io`` reads the wire, ``_process_direct`` lets a caller read its
own answer).

Everything here runs in the parent process.  ``PoolState`` is guarded by its ``lock``; what
the manager's selector watches, by its ``watch_lock`` (a leaf lock, see below).

A worker's socket has one reader at a time, whoever holds its ``read_lock`` (the manager, or
a thread reading its answer directly); the reader keeps it until what it read is settled, so
that nobody waits for an answer somebody else already took.

Lock order: ``lock``, then ``watch_lock``; a future's own lock, then ``watch_lock`` (``wait()``
reaches a future's hook holding the futures' locks); ``watch_lock`` is never held while
taking another lock.  A ``read_lock`` is only waited for by the manager, holding no other
lock; the others only try it (``_process_direct`` takes the same locks in the same order).
"""

from __future__ import annotations

import itertools
import os
import selectors
import weakref
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from . import _sync
from ._future import LOGGER, Future
from ._process_io import Outcome, Worker, consume, parent_fds, read_frames, remote_traceback, widen
from ._process_worker import EXIT, FRAME, worker_main

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._process_direct import ProcessFuture

__all__ = [
    "BROKEN",
    "PREFETCH",
    "SHUTDOWN",
    "Completion",
    "Manager",
    "PoolState",
    "complete",
    "live_states",
]

# Calls a busy worker may have queued behind the one it runs: enough to keep it busy while
# the manager thread waits for the GIL, few enough to spread work over idle workers.
PREFETCH = 4

SHUTDOWN = "cannot schedule new futures after shutdown"
_INTERPRETER_SHUTDOWN = "cannot schedule new futures after interpreter shutdown"
BROKEN = "A child process terminated abruptly, the process pool is not usable anymore"
_BROKEN_FUTURE = (
    "A process in the process pool was terminated abruptly while the future was running or pending."
)

# Every pool state whose manager thread may be running, for interpreter exit.
live_states: weakref.WeakSet[PoolState] = weakref.WeakSet()

# A future to complete with an answer, once no lock is held.
Completion = tuple[Future[Any], bool, Any]


class PoolState:
    """Everything the pool and its manager thread share; guarded by ``lock``.

    The manager holds this, not the executor, so a collected executor's calls still finish.
    """

    def __init__(
        self,
        max_workers: int,
        ctx: Any,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        max_tasks: int | None,
    ) -> None:
        self.max_workers = max_workers
        self.ctx = ctx
        self.worker_args = (initializer, initargs, max_tasks)
        self.max_tasks = max_tasks
        self.fork = ctx.get_start_method() == "fork"
        self.lock = _sync.allocate_lock()
        self.pending: deque[tuple[int, Future[Any], bytes]] = deque()
        self.inflight: dict[int, tuple[Future[Any], Worker]] = {}
        self.workers: dict[int, Worker] = {}  # by descriptor
        self.next_id = itertools.count(1).__next__
        self.shutdown_reason: str | None = None
        self.broken: str | None = None
        self.manager: Any = None
        self.changed = False  # workers or write interest changed: the manager re-registers
        self.crash_next = 0  # fault injection: crash point of the next call sent
        self.cause: str | None = None  # why the pool broke, for BrokenProcessPool.__cause__
        self.owner: Any = None  # weak reference to the executor, set by the executor
        # The manager's wake-up pipe and selector, opened with the manager thread.
        self.wake_r = self.wake_w = -1
        self.wake_open = False
        self.selector: selectors.BaseSelector | None = None
        # Guards the selector's registrations, the workers' claims and ``dormant``.
        self.watch_lock = _sync.allocate_lock()
        # Whether answers may be read directly (epoll only, see the module docstring);
        # elsewhere the manager thread alone changes registrations and reads every answer.
        self.direct = False
        # The worker whose claim nobody has come for yet (at most one).
        self.dormant: Worker | None = None

    def open_selector(self) -> selectors.BaseSelector:
        """Open the manager's wake-up pipe and selector (the latter watching the former)."""
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        parent_fds.update((self.wake_r, self.wake_w))
        self.wake_open = True
        self.selector = selector = selectors.DefaultSelector()
        selector.register(self.wake_r, selectors.EVENT_READ, None)
        self.direct = isinstance(selector, getattr(selectors, "EpollSelector", ()))
        return selector

    # -- called with watch_lock held ---------------------------------------------------------

    def watch_wlocked(self, worker: Worker) -> None:
        """Register *worker*'s socket for what the manager must hear of it: answers unless
        claimed (or idle after a direct answer), room for its out-buffer.

        Nothing before the manager adopted the worker (adopting it calls this) or after it
        forgot it.
        """
        if not worker.adopted:
            return
        selector = self.selector
        assert selector is not None
        events = (selectors.EVENT_READ if worker.claim is None and worker.expect else 0) | (
            selectors.EVENT_WRITE if worker.want_write else 0
        )
        if events == worker.events:
            return
        if not events:
            selector.unregister(worker.fd)
        elif not worker.events:
            selector.register(worker.fd, events, worker)
        else:
            selector.modify(worker.fd, events, worker)
        worker.events = events

    def unclaim_wlocked(self, worker: Worker, expect: bool = True) -> None:
        """End *worker*'s claim: the manager waits for its answers again (if *expect*)."""
        worker.claim = None
        worker.expect = expect
        if self.dormant is worker:
            self.dormant = None
        self.watch_wlocked(worker)

    # -- called with lock held ---------------------------------------------------------------

    def wake_locked(self) -> None:
        if self.wake_open:
            try:
                os.write(self.wake_w, b"\0")
            except BlockingIOError:
                pass  # already full of wake-ups

    def shut_down_locked(self, reason: str) -> None:
        """Refuse new calls; the manager finishes the queued ones, then stops."""
        if self.shutdown_reason is None:
            self.shutdown_reason = reason
        self.drop_dormant_locked()  # the manager waits for every answer now
        self.wake_locked()

    def drop_dormant_locked(self) -> None:
        """End the claim nobody came for, if any: the manager reads that answer."""
        if self.dormant is not None:
            with self.watch_lock:
                if self.dormant is not None:
                    self.unclaim_wlocked(self.dormant)

    def pick_worker_locked(self) -> Worker | None:
        least: Worker | None = None
        for worker in self.workers.values():
            if (
                worker.exiting
                or worker.init_failure is not None
                or (worker.budget is not None and worker.budget <= 0)
            ):
                continue
            if not worker.tasks:
                return worker
            if least is None or len(worker.tasks) < len(least.tasks):
                least = worker
        if len(self.workers) < self.max_workers and not (self.fork and self.manager is not None):
            return self.start_worker_locked()
        if least is not None and len(least.tasks) < PREFETCH:
            return least
        return None

    def start_worker_locked(self) -> Worker:
        parent_conn, child_conn = self.ctx.Pipe(duplex=True)
        parent_fds.add(parent_conn.fileno())
        widen(parent_conn.fileno())
        widen(child_conn.fileno())
        process = self.ctx.Process(
            target=worker_main, args=(child_conn, *self.worker_args), name="ProcessPoolWorker"
        )
        try:
            process.start()
        except BaseException:
            parent_fds.discard(parent_conn.fileno())
            parent_conn.close()
            raise
        finally:
            child_conn.close()
        worker = Worker(process, parent_conn, self.max_tasks)
        self.workers[worker.fd] = worker
        self.changed = True
        self.wake_locked()
        return worker

    def dispatch_locked(self, claimant: ProcessFuture[Any] | None = None) -> None:
        """Hand pending calls to workers that can take them.

        *claimant*: the call ``submit`` just queued; if it goes to an idle worker, it is
        claimed for direct reading (see the module docstring).
        """
        pending = self.pending
        while pending:
            worker = self.pick_worker_locked()
            if worker is None:
                return
            task_id, future, data = pending.popleft()
            if future.set_running_or_notify_cancel():
                claim = future is claimant and self.direct and not worker.tasks
                self.send_locked(worker, task_id, future, data, claimant if claim else None)

    def send_locked(
        self,
        worker: Worker,
        task_id: int,
        future: Future[Any],
        data: bytes,
        claim: ProcessFuture[Any] | None = None,
    ) -> None:
        header = FRAME.pack(len(data), task_id, self.crash_next)
        self.crash_next = 0
        self.inflight[task_id] = (future, worker)
        worker.tasks.add(task_id)
        if worker.budget is not None:
            worker.budget -= 1
        if claim is not None:
            with self.watch_lock:  # before the answer can come: the manager ignores it
                worker.claim = claim
                self.dormant = worker
                self.watch_wlocked(worker)
        elif self.dormant is worker or (worker.claim is None and not worker.expect):
            with self.watch_lock:  # the manager reads this answer (and a claimed one before)
                if self.dormant is worker or (worker.claim is None and not worker.expect):
                    self.unclaim_wlocked(worker)
        parts = [memoryview(header), memoryview(data)]
        if worker.outbuf:
            worker.outbuf.extend(parts)
            return
        try:
            written = os.writev(worker.fd, parts)
        except BlockingIOError:
            written = 0
        except OSError:
            return  # the worker is gone: its sentinel will break the pool and fail this call
        if written < len(header) + len(data):
            worker.outbuf.extend(parts)
            consume(worker.outbuf, written)
            self.changed = True
            self.wake_locked()

    def settle_locked(self, outcomes: list[Outcome]) -> list[Completion]:
        """Account for the answers read; return the futures to complete once unlocked."""
        completed: list[Completion] = []
        for task_id, (raised, value) in outcomes:
            entry = self.inflight.pop(task_id, None)
            if entry is None:
                continue  # failed meanwhile: the pool broke
            future, worker = entry
            worker.tasks.discard(task_id)
            if worker.budget is not None and worker.budget <= 0 and not worker.tasks:
                worker.exiting = True  # it exits after its last result: expected
            if worker.claim is future:
                with self.watch_lock:
                    self.unclaim_wlocked(worker, expect=bool(worker.tasks))
            completed.append((future, raised, value))
        return completed

    def break_locked(self, cause: str | None) -> list[tuple[Future[Any], bool]]:
        """Mark the pool broken; return (future, running) for every call it had."""
        self.broken = BROKEN
        failed = [(future, False) for _, future, _ in self.pending]
        failed += [(future, True) for future, _ in self.inflight.values()]
        self.pending.clear()
        self.inflight.clear()
        self.cause = cause
        return failed

    def stop_workers_locked(
        self, kill: bool
    ) -> tuple[list[Future[Any]], list[tuple[Future[Any], bool]]]:
        """``terminate_workers()`` (SIGTERM) or, with *kill*, ``kill_workers()`` (SIGKILL).

        Refuses new calls and takes every queued call (for the caller to cancel, as
        ``shutdown(cancel_futures=True)`` does); signals every live worker and breaks the
        pool, so that the calls sent to workers fail with ``BrokenProcessPool``.  With no
        worker alive only the shutdown remains.  The manager thread joins the workers.
        Returns (futures to cancel, ``fail()``'s list), for the caller once unlocked.
        """
        cancelled = [future for _, future, _ in self.pending]
        self.pending.clear()
        self.shut_down_locked(SHUTDOWN)
        if not self.workers:
            return cancelled, []
        for worker in self.workers.values():
            if kill:
                worker.process.kill()
            else:
                worker.process.terminate()
        if self.broken is not None:  # broken already: its calls failed then
            return cancelled, []
        how = "kill_workers()" if kill else "terminate_workers()"
        return cancelled, self.break_locked(f"{how} ended the worker processes")

    def release_locked(self) -> list[Worker]:
        """Tell every worker to exit (end it if broken), close the wake-up pipe; return the
        workers for the caller to join once the lock is released."""
        workers = list(self.workers.values())
        self.workers.clear()
        for worker in workers:
            if self.broken is not None:
                worker.process.terminate()
                continue
            worker.exiting = True
            try:  # an idle worker's socket has room; if not, it is stuck: end it
                os.write(worker.fd, FRAME.pack(0, 0, EXIT))
            except OSError:
                worker.process.terminate()
        if self.wake_open:
            self.wake_open = False
            parent_fds.difference_update((self.wake_r, self.wake_w))
            os.close(self.wake_r)
            os.close(self.wake_w)
        return workers

    # -- called without the lock -------------------------------------------------------------

    def fail(self, failed: list[tuple[Future[Any], bool]]) -> None:
        for future, running in failed:
            if running or future.set_running_or_notify_cancel():
                error = BrokenProcessPool(_BROKEN_FUTURE)
                if self.cause is not None:
                    error.__cause__ = remote_traceback(f"\n'''\n{self.cause}'''")
                future.set_exception(error)


def complete(completed: list[Completion]) -> None:
    """Complete the futures of answers read, with no lock held (their callbacks run here)."""
    for future, raised, value in completed:
        if raised:
            future.set_exception(value)
        else:
            future.set_result(value)


class Manager:
    """The manager thread's loop: results in, calls out, deaths noticed."""

    def __init__(self, state: PoolState) -> None:
        self.state = state
        self.selector = state.open_selector()

    def run(self) -> None:
        state = self.state
        try:
            while True:
                with state.lock:
                    if state.changed:
                        self.adopt_locked()
                    if state.broken is not None or (
                        state.shutdown_reason is not None
                        and not state.pending
                        and not state.inflight
                    ):
                        break
                self.step()
        except BaseException:  # pragma: no cover - only a bug in this module gets here
            LOGGER.critical("Exception in the process pool's manager thread", exc_info=True)
            with state.lock:
                failed = state.break_locked("the manager thread failed")
            state.fail(failed)
        finally:
            self.close()

    def adopt_locked(self) -> None:
        """Watch the sentinels of new workers, and every socket for what it must."""
        state = self.state
        state.changed = False
        with state.watch_lock:
            for worker in state.workers.values():
                if not worker.adopted:
                    self.selector.register(worker.process.sentinel, selectors.EVENT_READ, worker)
                    worker.adopted = True
                worker.want_write = bool(worker.outbuf)
                state.watch_wlocked(worker)

    def step(self) -> None:
        state = self.state
        outcomes: list[Outcome] = []
        readable: list[Worker] = []
        writable: list[Worker] = []
        dead: list[Worker] = []
        for key, mask in self.selector.select():
            worker = key.data
            if worker is None:
                try:
                    while os.read(state.wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            elif key.fd == worker.fd:
                if mask & selectors.EVENT_READ:
                    readable.append(worker)
                if mask & selectors.EVENT_WRITE:
                    writable.append(worker)
            else:
                dead.append(worker)
        # Each socket is read holding its read_lock until its answers are settled.  A
        # readable socket whose lock is taken is being read directly (it was unregistered
        # after select() saw it ready): that thread reads what it needs and hands the rest
        # back.  A dead worker's lock is waited for: a thread reading it directly sees the
        # death too (it polls the sentinel) and soon lets go; the lock is then kept until
        # the worker is buried.  What a dead worker wrote before it died still counts.
        held = [w for w in readable if w not in dead and w.read_lock.acquire(False)]
        for worker in dead:
            worker.read_lock.acquire()
            held.append(worker)
        try:
            for worker in held:
                read_frames(worker, outcomes)
            failed: list[tuple[Future[Any], bool]] = []
            with state.lock:
                for worker in writable:
                    self.flush_locked(worker)
                completed = state.settle_locked(outcomes)
                for worker in dead:
                    failed += self.buried_locked(worker)
                if state.broken is None:
                    state.dispatch_locked()
        finally:
            for worker in held:
                worker.read_lock.release()
        del outcomes
        complete(completed)
        del completed
        state.fail(failed)

    def flush_locked(self, worker: Worker) -> None:
        outbuf = worker.outbuf
        while outbuf:
            try:
                written = os.writev(worker.fd, list(itertools.islice(outbuf, 64)))
            except BlockingIOError:
                return
            except OSError:
                outbuf.clear()  # the worker is gone; its sentinel tells the rest
                break
            consume(outbuf, written)
        self.state.changed = True  # no more write interest

    def buried_locked(self, worker: Worker) -> list[tuple[Future[Any], bool]]:
        """Forget a worker whose process ended; break the pool unless that was expected."""
        state = self.state
        with state.watch_lock:
            worker.claim = None
            if state.dormant is worker:
                state.dormant = None
            if worker.events:
                self.selector.unregister(worker.fd)
                worker.events = 0
            if worker.adopted:
                self.selector.unregister(worker.process.sentinel)
                worker.adopted = False
        del state.workers[worker.fd]
        worker.process.join()
        exitcode = worker.process.exitcode
        worker.close()
        if state.broken is not None or (worker.exiting and not worker.tasks):
            return []
        if worker.init_failure is not None:
            return state.break_locked(f"A worker's initializer failed:\n{worker.init_failure}")
        return state.break_locked(
            f"worker process {worker.process.pid} ended with exit code {exitcode} "
            f"while it had {len(worker.tasks)} call(s)"
        )

    def close(self) -> None:
        """Stop every worker (politely when idle, by force when broken) and free it all."""
        state = self.state
        with state.lock:
            workers = state.release_locked()
            with state.watch_lock:
                state.dormant = None
                for worker in workers:
                    worker.adopted = False  # no registration changes from now on
        for worker in workers:
            worker.process.join()
            with worker.read_lock:  # a thread reading it directly has seen it end
                worker.close()
        self.selector.close()


def _python_exit() -> None:
    """At interpreter exit: refuse new calls, let the queued ones finish, join the managers."""
    states = list(live_states)
    for state in states:
        with state.lock:
            state.shut_down_locked(_INTERPRETER_SHUTDOWN)
    for state in states:
        if state.manager is not None:
            state.manager.join()


def _after_fork_in_child() -> None:
    """In a forked child: drop every descriptor and pool inherited from the parent."""
    for fd in list(parent_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    parent_fds.clear()
    for state in list(live_states):
        state.wake_open = False
        state.broken = "this pool belongs to the parent process"
        state.manager = None
        state.direct = False  # its selector is the parent's
        state.dormant = None
    live_states.clear()


_sync.register_atexit(_python_exit)
_sync.register_after_fork_in_child(_after_fork_in_child)
