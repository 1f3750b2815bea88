"""The machinery behind ProcessPoolExecutor: the state a pool shares with its manager
thread, and that thread's loop (see ``process.py`` for the data-flow picture).

Everything here runs in the parent process.  ``_PoolState`` is guarded by its ``lock``; the
manager thread alone owns the selector and the workers' input buffers.
"""

from __future__ import annotations

import itertools
import os
import pickle
import selectors
import weakref
from collections import deque
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback
from typing import TYPE_CHECKING, Any

from . import _sync
from ._future import LOGGER, Future
from ._process_worker import ERROR, EXIT, FRAME, INIT_FAILED, worker_main

if TYPE_CHECKING:
    from collections.abc import Callable

# Calls a busy worker may have queued behind the one it runs: enough to keep it busy while
# the manager thread waits for the GIL, few enough to spread work over idle workers.
PREFETCH = 4
_READ_SIZE = 1 << 16

_SHUTDOWN = "cannot schedule new futures after shutdown"
_INTERPRETER_SHUTDOWN = "cannot schedule new futures after interpreter shutdown"
_BROKEN = "A child process terminated abruptly, the process pool is not usable anymore"
_BROKEN_FUTURE = (
    "A process in the process pool was terminated abruptly while the future was running or pending."
)

# Parent-side descriptors of every pool in this process.  A forked child (a fork-context
# worker of any pool, or the user's) closes them at once: it must not keep another worker's
# socket open, or that worker would not see end-of-file when this process dies.
_parent_fds: set[int] = set()
# Every pool state whose manager thread may be running, for interpreter exit.
_live_states: weakref.WeakSet[_PoolState] = weakref.WeakSet()


def _remote_traceback(text: str) -> BaseException:
    """The worker-side traceback, to attach as ``__cause__`` of an exception from a worker.

    The stdlib's own class, so code that checks ``type(exc.__cause__)`` sees what it expects
    (typeshed types its argument as a traceback object; it is the formatted text).
    """
    return _RemoteTraceback(text)  # type: ignore[arg-type]


class _Worker:
    """The parent's view of one worker process."""

    __slots__ = (
        "budget",
        "conn",
        "exiting",
        "fd",
        "inbuf",
        "init_failure",
        "outbuf",
        "process",
        "tasks",
    )

    def __init__(self, process: Any, conn: Any, budget: int | None) -> None:
        self.process = process
        self.conn = conn  # keeps the socket open; we use its descriptor directly
        self.fd: int = conn.fileno()
        os.set_blocking(self.fd, False)
        self.inbuf = bytearray()
        self.outbuf: deque[memoryview] = deque()
        self.tasks: set[int] = set()  # ids sent and not answered
        self.budget = budget  # calls it may still be sent (max_tasks_per_child)
        self.exiting = False  # it will exit and that is expected
        self.init_failure: str | None = None  # its initializer's traceback: it is exiting

    def close(self) -> None:
        _parent_fds.discard(self.fd)
        self.conn.close()


class _PoolState:
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
        self.inflight: dict[int, tuple[Future[Any], _Worker]] = {}
        self.workers: dict[int, _Worker] = {}  # by descriptor
        self.next_id = itertools.count(1).__next__
        self.shutdown_reason: str | None = None
        self.broken: str | None = None
        self.manager: Any = None
        self.changed = False  # workers or write interest changed: the manager re-registers
        self.crash_next = 0  # fault injection: crash point of the next call sent
        self.cause: str | None = None  # why the pool broke, for BrokenProcessPool.__cause__
        self.owner: Any = None  # weak reference to the executor, set by the executor
        # The manager's wake-up pipe, opened with the manager thread.
        self.wake_r = self.wake_w = -1
        self.wake_open = False

    def open_wake_pipe(self) -> None:
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        _parent_fds.update((self.wake_r, self.wake_w))
        self.wake_open = True

    # -- called with lock held ---------------------------------------------------------------

    def wake_locked(self) -> None:
        if self.wake_open:
            try:
                os.write(self.wake_w, b"\0")
            except BlockingIOError:
                pass  # already full of wake-ups

    def pick_worker_locked(self) -> _Worker | None:
        least: _Worker | None = None
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

    def start_worker_locked(self) -> _Worker:
        parent_conn, child_conn = self.ctx.Pipe(duplex=True)
        _parent_fds.add(parent_conn.fileno())
        process = self.ctx.Process(
            target=worker_main, args=(child_conn, *self.worker_args), name="ProcessPoolWorker"
        )
        try:
            process.start()
        except BaseException:
            _parent_fds.discard(parent_conn.fileno())
            parent_conn.close()
            raise
        finally:
            child_conn.close()
        worker = _Worker(process, parent_conn, self.max_tasks)
        self.workers[worker.fd] = worker
        self.changed = True
        self.wake_locked()
        return worker

    def dispatch_locked(self) -> None:
        """Hand pending calls to workers that can take them."""
        pending = self.pending
        while pending:
            worker = self.pick_worker_locked()
            if worker is None:
                return
            task_id, future, data = pending.popleft()
            if future.set_running_or_notify_cancel():
                self.send_locked(worker, task_id, future, data)

    def send_locked(self, worker: _Worker, task_id: int, future: Future[Any], data: bytes) -> None:
        header = FRAME.pack(len(data), task_id, self.crash_next)
        self.crash_next = 0
        self.inflight[task_id] = (future, worker)
        worker.tasks.add(task_id)
        if worker.budget is not None:
            worker.budget -= 1
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
            _consume(worker.outbuf, written)
            self.changed = True
            self.wake_locked()

    def break_locked(self, cause: str | None) -> list[tuple[Future[Any], bool]]:
        """Mark the pool broken; return (future, running) for every call it had."""
        self.broken = _BROKEN
        failed = [(future, False) for _, future, _ in self.pending]
        failed += [(future, True) for future, _ in self.inflight.values()]
        self.pending.clear()
        self.inflight.clear()
        self.cause = cause
        return failed

    def release_locked(self) -> list[_Worker]:
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
            _parent_fds.difference_update((self.wake_r, self.wake_w))
            os.close(self.wake_r)
            os.close(self.wake_w)
        return workers

    # -- called without the lock -------------------------------------------------------------

    def fail(self, failed: list[tuple[Future[Any], bool]]) -> None:
        for future, running in failed:
            if running or future.set_running_or_notify_cancel():
                error = BrokenProcessPool(_BROKEN_FUTURE)
                if self.cause is not None:
                    error.__cause__ = _remote_traceback(f"\n'''\n{self.cause}'''")
                future.set_exception(error)


def _consume(buffers: deque[memoryview], count: int) -> None:
    """Drop the first *count* bytes of the queued *buffers*."""
    while count:
        size = len(buffers[0])
        if count >= size:
            count -= size
            buffers.popleft()
        else:
            buffers[0] = buffers[0][count:]
            count = 0


def _decode(kind: int, payload: memoryview) -> tuple[bool, Any]:
    """(raised, value) from a result frame; an undecodable result fails its own call.

    *payload* views the worker's input buffer: it is released here, even when an exception's
    traceback keeps this frame alive, so that the buffer can be trimmed.
    """
    try:
        if kind == INIT_FAILED:
            return True, bytes(payload).decode("utf-8", "replace")
        value = pickle.loads(payload)
    except BaseException as exc:
        return True, exc
    finally:
        payload.release()
    if kind == ERROR:
        error, text = value
        error.__cause__ = _remote_traceback(f'\n"""\n{text}"""')
        return True, error
    return False, value


class _Manager:
    """The manager thread's loop: results in, calls out, deaths noticed."""

    def __init__(self, state: _PoolState) -> None:
        self.state = state
        self.selector = selectors.DefaultSelector()
        self.selector.register(state.wake_r, selectors.EVENT_READ, None)
        self.registered: dict[int, int] = {}  # worker fd -> events

    def run(self) -> None:
        state = self.state
        try:
            while True:
                with state.lock:
                    if state.changed:
                        self.register_locked()
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

    def register_locked(self) -> None:
        state = self.state
        state.changed = False
        for fd, worker in state.workers.items():
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if worker.outbuf else 0)
            old = self.registered.get(fd)
            if old is None:
                self.selector.register(fd, events, worker)
                self.selector.register(worker.process.sentinel, selectors.EVENT_READ, worker)
            elif old != events:
                self.selector.modify(fd, events, worker)
            self.registered[fd] = events

    def step(self) -> None:
        state = self.state
        outcomes: list[tuple[int, tuple[bool, Any]]] = []
        writable: list[_Worker] = []
        dead: list[_Worker] = []
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
                    self.read(worker, outcomes)
                if mask & selectors.EVENT_WRITE:
                    writable.append(worker)
            else:
                dead.append(worker)
        for worker in dead:  # what a dead worker wrote before it died still counts
            self.read(worker, outcomes)
        completed: list[tuple[Future[Any], bool, Any]] = []
        failed: list[tuple[Future[Any], bool]] = []
        with state.lock:
            for worker in writable:
                self.flush_locked(worker)
            for task_id, (raised, value) in outcomes:
                entry = state.inflight.pop(task_id, None)
                if entry is None:
                    continue
                future, worker = entry
                worker.tasks.discard(task_id)
                if worker.budget is not None and worker.budget <= 0 and not worker.tasks:
                    worker.exiting = True  # it exits after its last result: expected
                completed.append((future, raised, value))
            for worker in dead:
                failed += self.buried_locked(worker)
            if state.broken is None:
                state.dispatch_locked()
        del outcomes
        for future, raised, value in completed:
            if raised:
                future.set_exception(value)
            else:
                future.set_result(value)
        del completed
        state.fail(failed)

    def read(self, worker: _Worker, outcomes: list[tuple[int, tuple[bool, Any]]]) -> None:
        """Read what *worker* sent without blocking; decode every complete frame."""
        inbuf = worker.inbuf
        header = FRAME.size
        while True:
            # Ask for the whole of a partly received large frame at once.
            want = _READ_SIZE
            if len(inbuf) >= header:
                want = max(want, header + FRAME.unpack_from(inbuf)[0] - len(inbuf))
            try:
                chunk = os.read(worker.fd, want)
            except OSError:  # BlockingIOError: nothing more now; others: it is gone
                break
            if not chunk:
                break
            if inbuf:
                inbuf += chunk
            else:
                worker.inbuf = inbuf = bytearray(chunk)
            if len(chunk) < want:
                break
        pos = 0
        end = len(inbuf)
        with memoryview(inbuf) as view:
            while end - pos >= header:
                size, task_id, kind = FRAME.unpack_from(view, pos)
                stop = pos + header + size
                if stop > end:
                    break
                outcome = _decode(kind, view[pos + header : stop])
                if kind == INIT_FAILED:
                    # The pool breaks when the worker has exited (its sentinel), as the
                    # stdlib's does: by then whatever it logged has been flushed.
                    worker.init_failure = outcome[1]
                else:
                    outcomes.append((task_id, outcome))
                pos = stop
        if pos:
            del inbuf[:pos]

    def flush_locked(self, worker: _Worker) -> None:
        outbuf = worker.outbuf
        while outbuf:
            try:
                written = os.writev(worker.fd, list(itertools.islice(outbuf, 64)))
            except BlockingIOError:
                return
            except OSError:
                outbuf.clear()  # the worker is gone; its sentinel tells the rest
                break
            _consume(outbuf, written)
        self.state.changed = True  # no more write interest

    def buried_locked(self, worker: _Worker) -> list[tuple[Future[Any], bool]]:
        """Forget a worker whose process ended; break the pool unless that was expected."""
        state = self.state
        self.unregister(worker)
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

    def unregister(self, worker: _Worker) -> None:
        if self.registered.pop(worker.fd, None) is not None:
            self.selector.unregister(worker.fd)
            self.selector.unregister(worker.process.sentinel)

    def close(self) -> None:
        """Stop every worker (politely when idle, by force when broken) and free it all."""
        with self.state.lock:
            workers = self.state.release_locked()
        for worker in workers:
            worker.process.join()
            worker.close()
        self.selector.close()


def _python_exit() -> None:
    """At interpreter exit: refuse new calls, let the queued ones finish, join the managers."""
    states = list(_live_states)
    for state in states:
        with state.lock:
            if state.shutdown_reason is None:
                state.shutdown_reason = _INTERPRETER_SHUTDOWN
            state.wake_locked()
    for state in states:
        if state.manager is not None:
            state.manager.join()


def _after_fork_in_child() -> None:
    """In a forked child: drop every descriptor and pool inherited from the parent."""
    for fd in list(_parent_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _parent_fds.clear()
    for state in list(_live_states):
        state.wake_open = False
        state.broken = "this pool belongs to the parent process"
        state.manager = None
    _live_states.clear()


_sync.register_atexit(_python_exit)
_sync.register_after_fork_in_child(_after_fork_in_child)
