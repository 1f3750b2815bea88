"""ProcessPoolExecutor: run calls in a pool of worker processes, with no relay threads.

Data flow::

    submit(fn, *args)   pickles (fn, args, kwargs) in the caller's thread, then under the
        |               pool lock hands the call to an idle worker, else to a new worker
        |               (up to max_workers), else to a busy one with < PREFETCH calls,
        |               else leaves it in the pending deque
        v
    worker socket       non-blocking write; bytes the kernel does not take wait in that
        |               worker's out-buffer until the manager sees the socket writable
        v
    worker process      read frame, unpickle, call, pickle the outcome, write frame
        |               (executor_impl/_process_worker.py)
        v
    manager thread      one per pool: select() on every worker socket, every worker's
                        process sentinel and a wake-up pipe.  It parses result frames,
                        completes the futures (done callbacks run here), hands pending calls
                        to the workers that freed up, replaces retired workers, and breaks
                        the pool when a worker dies unexpectedly (executor_impl/
                        _process_manager.py; the wire's parent side: _process_io.py)
    or the caller       a call that went to an idle worker is claimed for its caller: the
                        manager leaves that socket alone, and ``result()`` reads the answer
                        itself (executor_impl/_process_direct.py tells when and how)

The stdlib relays every call through a feeder thread and a manager thread, with a lock and
a semaphore around each queue; here the caller writes the call straight to a worker's
socket and one thread reads the results (or the caller reads its own), so a call costs a few
system calls, and ``submit(fn).result()`` wakes no thread but the caller.

Nothing blocks on a worker: parent-side sockets are non-blocking and every write is buffered,
so a worker that dies mid-read, mid-write or mid-pickle is seen by its process sentinel and
breaks the pool (``BrokenProcessPool`` for every pending and running call, a distinct
exception object each; later submits raise it too) instead of hanging anyone.

Differences from ``concurrent.futures.process`` (behaviour, not API):

* ``fn`` and its arguments are pickled by ``submit`` in the caller's thread: a call that
  cannot be pickled fails its own future at once (the pool keeps working), and later
  mutations of the arguments are not seen by the worker.
* A call whose task cannot be unpickled in the worker, or whose result cannot be unpickled
  in the parent, fails its own future with that error (or the ``SystemExit`` raised while
  unpickling); the stdlib breaks the whole pool.
* ``shutdown(cancel_futures=True)`` notifies ``wait()``/``as_completed()`` of the calls it
  cancels (CPython gh-136655).
* ``map(..., chunksize=n)``: when a call in a chunk raises, the results before it in the
  chunk are still yielded before the exception (the stdlib drops them).
* Each broken future gets its own ``BrokenProcessPool`` instance (the stdlib shares one).
* ``max_tasks_per_child`` never hangs (CPython gh-115634): retired workers are replaced
  whenever calls are pending, also after ``shutdown(wait=False)`` or garbage collection.
* The answer to a call sent to an idle worker is read by the thread that comes for it
  (``result()``, ``exception()``, ``done()``, ``running()``); until somebody does, or the
  pool is used again, the future's private ``_state`` (and its ``repr``) may still say
  running although the worker has answered.  The futures are ``ProcessFuture``, a
  ``Future`` subclass.  A done callback added while a thread is reading the answer runs in
  that thread.
* ``terminate_workers()`` and ``kill_workers()`` (new in Python 3.14) exist on every
  version.  They fail the calls sent to the workers with ``BrokenProcessPool`` before they
  return, and break the pool at once: later submits raise ``BrokenProcessPool`` (the stdlib
  raises ``RuntimeError`` until its manager thread notices the deaths, and for good when no
  call was running).  After ``shutdown(wait=False)`` they still end the workers (the stdlib
  has forgotten them by then and does nothing).
* POSIX only (file descriptors and ``os.writev``), as this project's machines are.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
import os
import pickle
import sys
import weakref
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from . import _sync
from ._executor import Executor
from ._process_direct import ProcessFuture
from ._process_io import remote_traceback
from ._process_manager import BROKEN, SHUTDOWN, Manager, PoolState, live_states
from ._process_worker import CRASH_POINTS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ._future import Future

__all__ = [
    "CRASH_POINTS",
    "BrokenProcessPool",
    "ProcessFuture",
    "ProcessPoolExecutor",
    "inject_crash",
    "worker_pids",
]

_T = TypeVar("_T")

_MAX_WINDOWS_WORKERS = 61

_cpu_count: Callable[[], int | None] = getattr(os, "process_cpu_count", os.cpu_count)


class ProcessPoolExecutor(Executor, concurrent.futures.ProcessPoolExecutor):
    """An executor that runs each call in one of at most *max_workers* processes.

    Drop-in for ``concurrent.futures.ProcessPoolExecutor`` (and an instance of it, for code
    that checks); see the module docstring for what differs inside.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
    ) -> None:
        """Create a pool of at most *max_workers* processes (default: the CPU count).

        *mp_context* starts them (default: the platform's; ``spawn`` when
        *max_tasks_per_child* is given); each runs ``initializer(*initargs)`` first, and a
        failing initializer breaks the pool.  After *max_tasks_per_child* calls a worker
        exits and is replaced.

        Raises ``ValueError`` for *max_workers* <= 0 (or > 61 on Windows), for
        *max_tasks_per_child* <= 0 or with the ``fork`` start method; ``TypeError`` for a
        non-callable *initializer* or a non-int *max_tasks_per_child*.
        """
        if max_workers is None:
            max_workers = _cpu_count() or 1
            if sys.platform == "win32":
                max_workers = min(_MAX_WINDOWS_WORKERS, max_workers)
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        elif sys.platform == "win32" and max_workers > _MAX_WINDOWS_WORKERS:
            raise ValueError(f"max_workers must be <= {_MAX_WINDOWS_WORKERS}")
        if mp_context is None:
            if max_tasks_per_child is not None:
                mp_context = multiprocessing.get_context("spawn")
            else:
                mp_context = multiprocessing.get_context()
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
            if mp_context.get_start_method(allow_none=False) == "fork":
                # Forking while the manager thread runs can deadlock the child (gh-90622).
                raise ValueError(
                    "max_tasks_per_child is incompatible with the 'fork' multiprocessing "
                    "start method; supply a different mp_context."
                )
        self._max_workers = max_workers
        self._mp_context = mp_context
        self._state = PoolState(max_workers, mp_context, initializer, initargs, max_tasks_per_child)
        # Dropping the executor stops accepting calls; the queued ones still finish.  The
        # weak reference lives in the state, which the manager thread keeps alive: one kept on
        # the executor would die with it in a garbage cycle, and then its callback never runs.
        self._state.owner = weakref.ref(self, partial(_collected, self._state))

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Schedule ``fn(*args, **kwargs)`` in a worker; return its Future.

        A call whose function or arguments cannot be pickled returns a future failed with
        the pickling error.  Raises ``RuntimeError`` after ``shutdown()``,
        ``BrokenProcessPool`` once a worker died or an initializer failed.
        """
        state = self._state
        self._check_open(state)
        future: ProcessFuture[_T] = ProcessFuture(state)
        try:
            data = pickle.dumps((fn, args, kwargs), pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:
            future.set_exception(exc)
            return future
        with state.lock:
            self._check_open(state)
            if state.manager is None:
                self._start_manager_locked(state)
            # An earlier claimed call that nobody came for: the manager reads its answer now.
            state.drop_dormant_locked()
            future.task_id = state.next_id()
            entry = (future.task_id, future, data)
            state.pending.append(entry)
            try:
                state.dispatch_locked(future)
            except BaseException:
                # No worker could be started: this call was not accepted.
                if entry in state.pending:
                    state.pending.remove(entry)
                raise
        return future

    @property
    def _processes(self) -> dict[int, Any]:  # type: ignore[override]
        """pid -> ``multiprocessing.Process`` of the live workers, as the stdlib's attribute
        (code in the wild reads it, e.g. to kill a worker in a test)."""
        state = self._state
        with state.lock:
            return {w.process.pid: w.process for w in state.workers.values()}

    @property
    def _broken(self) -> str | bool:  # type: ignore[override]
        """The stdlib's attribute: False, or why the pool broke (code polls it)."""
        return self._state.broken or False

    @staticmethod
    def _check_open(state: PoolState) -> None:
        if state.broken is not None:
            raise BrokenProcessPool(state.broken)
        if state.shutdown_reason is not None:
            raise RuntimeError(state.shutdown_reason)

    @staticmethod
    def _start_manager_locked(state: PoolState) -> None:
        if state.fork:
            # Fork every worker before the manager thread exists (gh-90622): never fork later.
            while len(state.workers) < state.max_workers:
                state.start_worker_locked()
        manager = Manager(state)
        try:
            state.manager = _sync.start_thread("ProcessPoolManager", manager.run, ())
        except RuntimeError as exc:
            # No thread can start at interpreter shutdown (gh-109047): the pool cannot work.
            state.broken = BROKEN
            state.cause = repr(exc)
            manager.selector.close()
            for worker in state.release_locked():  # forked workers: ended, reaped at once
                worker.process.join()
                worker.close()
            raise BrokenProcessPool(BROKEN) from exc
        live_states.add(state)

    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[_T]:
        """As ``Executor.map``; *chunksize* calls travel to a worker together.

        Results come in input order whatever the chunking; if a call raises, the results
        before it are yielded first.  *buffersize* counts chunks, as in the stdlib: at most
        *buffersize* submitted chunks wait to be yielded.  Raises ``ValueError`` if
        *chunksize* < 1, and as ``Executor.map`` for a bad *buffersize*.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if chunksize == 1:
            return super().map(fn, *iterables, timeout=timeout, buffersize=buffersize)
        chunks = super().map(
            partial(_process_chunk, fn),
            _chunks(iterables, chunksize),
            timeout=timeout,
            buffersize=buffersize,
        )
        return _flatten(chunks)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting calls; the workers exit once the queued calls are done.

        With *cancel_futures*, first cancel the calls no worker has started (their waiters
        are notified); with *wait*, return only after every worker exited.  Safe to call
        more than once.
        """
        state = self._state
        with state.lock:
            cancelled = [future for _, future, _ in state.pending] if cancel_futures else []
            if cancel_futures:
                state.pending.clear()
            manager = state.manager
            state.shut_down_locked(SHUTDOWN)
        for future in cancelled:
            if future.cancel():
                future.set_running_or_notify_cancel()
        if wait and manager is not None:
            manager.join()

    def terminate_workers(self) -> None:
        """End every worker process with SIGTERM; the pool is then shut down and unusable.

        The calls no worker has started are cancelled; the calls sent to a worker fail with
        ``BrokenProcessPool``; later submits raise ``BrokenProcessPool`` (``RuntimeError``
        when no worker was alive: the pool is then only shut down).  Returns at once: the
        pool's manager thread joins the workers.  After ``shutdown(wait=True)``, a no-op.
        New in Python 3.14, offered here on every version.
        """
        self._stop_workers(kill=False)

    def kill_workers(self) -> None:
        """As ``terminate_workers()``, with SIGKILL (a worker cannot ignore it)."""
        self._stop_workers(kill=True)

    def _stop_workers(self, kill: bool) -> None:
        state = self._state
        with state.lock:
            cancelled, failed = state.stop_workers_locked(kill)
        for future in cancelled:
            if future.cancel():
                future.set_running_or_notify_cancel()
        state.fail(failed)


def _collected(state: PoolState, _: object) -> None:
    with state.lock:
        state.shut_down_locked(SHUTDOWN)


class _ChunkFailure:
    """The exception that ended a chunk, after the results before it."""

    __slots__ = ("exception", "text")

    def __init__(self, exception: BaseException, text: str) -> None:
        self.exception = exception
        self.text = text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_ChunkFailure, (self.exception, self.text))


def _process_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    """Run in a worker: the results of a chunk, ending with a _ChunkFailure if one raised."""
    results = []
    for args in chunk:
        try:
            results.append(fn(*args))
        except BaseException as exc:
            import traceback

            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            results.append(_ChunkFailure(exc, text))
            break
    return results


def _chunks(iterables: tuple[Iterable[Any], ...], size: int) -> Iterator[list[tuple[Any, ...]]]:
    items = zip(*iterables)
    while True:
        chunk = list(itertools.islice(items, size))
        if not chunk:
            return
        yield chunk


def _flatten(chunks: Iterator[list[Any]]) -> Iterator[Any]:
    for chunk in chunks:
        chunk.reverse()
        while chunk:
            item = chunk.pop()
            if isinstance(item, _ChunkFailure):
                exception = item.exception
                exception.__cause__ = remote_traceback(f'\n"""\n{item.text}"""')
                del item
                try:
                    raise exception
                finally:
                    del exception
            yield item


def worker_pids(pool: ProcessPoolExecutor) -> list[int]:
    """The pids of *pool*'s live worker processes (a testing hook)."""
    state = pool._state
    with state.lock:
        return [w.process.pid for w in state.workers.values() if w.process.is_alive()]


def inject_crash(pool: ProcessPoolExecutor, point: str) -> None:
    """Make the next call *pool* sends exit its worker abruptly at *point* (a testing hook).

    *point* is one of ``CRASH_POINTS``.  Costs nothing on the normal path: the order
    travels in the flags of that one call's frame.
    """
    if point not in CRASH_POINTS:
        raise ValueError(f"unknown crash point {point!r}; expected one of {CRASH_POINTS}")
    state = pool._state
    with state.lock:
        state.crash_next = CRASH_POINTS.index(point) + 1
