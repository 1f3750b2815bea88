"""Helpers of the process-pool tests: the pool under test, its workers, leak checks, probes.

The tests never look inside a pool except through one adapter, ``worker_pids_of``: the pids of
the live workers, from executor_impl's testing hook or from the stdlib's ``_processes``.
Everything a test creates is released by the ``process_pools`` fixture (``ProcessPools``),
which then fails the test if a worker process, or any other child, is still alive.

Nothing here sleeps: processes are awaited through their pidfd, tasks through gates (see
``_process_tasks.Gate``), every wait is bounded and fails naming what it waited for.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib
import multiprocessing
import os
import queue
import select
import signal
import subprocess
import sys
import time
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from . import _process_tasks as tasks
from ._helpers import LONG_WAIT, BackgroundCall, FuturesAPI, is_stdlib

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.managers import SyncManager

    from ._process_tasks import Gate

CONTEXTS = tuple(
    method
    for method in ("fork", "forkserver", "spawn")
    if method in multiprocessing.get_all_start_methods()
)
"""The start methods this platform offers, in the order the tests are parametrised."""

DEFAULT_CONTEXT = "fork" if "fork" in CONTEXTS else "spawn"
"""The start method of pools whose test is not about start methods: the platform default
up to Python 3.13 on Linux, and the cheapest (no interpreter start per worker)."""

CRASH_POINTS = ("task_received", "task_unpickled", "result_pickled", "result_half_sent")
"""The points at which ``executor_impl.process.inject_crash`` ends a worker."""

FORK_WARNING = "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
"""3.12+ warns when a multi-threaded process forks. Pytest's faulthandler watchdog thread
alone makes this process multi-threaded, so every fork-started pool would warn; the
warning says nothing about the pool under test."""

REPO_ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# The pool under test


def process_pool_class(cf: FuturesAPI) -> type[ProcessPoolExecutor]:
    """``ProcessPoolExecutor`` of *cf*."""
    return cast("type[ProcessPoolExecutor]", getattr(cf, "ProcessPoolExecutor"))  # noqa: B009  # FuturesAPI declares the thread side only


def broken_process_pool_error(cf: FuturesAPI) -> type[concurrent.futures.BrokenExecutor]:
    """``BrokenProcessPool`` from the ``process`` submodule of *cf*."""
    error: type[concurrent.futures.BrokenExecutor]
    error = importlib.import_module(cf.__name__ + ".process").BrokenProcessPool
    return error


def impl_process_module() -> Any:
    """``executor_impl.process``, imported when first needed (its testing hooks)."""
    return importlib.import_module("executor_impl.process")


def worker_pids_of(cf: FuturesAPI, pool: ProcessPoolExecutor) -> list[int]:
    """The pids of *pool*'s live worker processes, sorted.

    executor_impl offers the testing hook ``process.worker_pids``; for the stdlib this reads
    ``_processes`` (pid -> Process), which ``shutdown()`` resets to None.
    """
    if not is_stdlib(cf):
        return sorted(impl_process_module().worker_pids(pool))
    processes: dict[int, multiprocessing.Process] = getattr(pool, "_processes", None) or {}
    return sorted(pid for pid, process in list(processes.items()) if process.is_alive())


def inject_crash(pool: ProcessPoolExecutor, point: str) -> None:
    """executor_impl only: make the worker of the next task dispatched exit at *point*."""
    impl_process_module().inject_crash(pool, point)


def kill(pid: int) -> None:
    """SIGKILL *pid*, which may have exited already."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def entered(gate: Gate, what: str) -> int:
    """The pid of the next worker that enters *gate*, waiting at most ``LONG_WAIT``."""
    try:
        return gate.entered.get(timeout=LONG_WAIT)
    except queue.Empty:
        raise AssertionError(f"waited {LONG_WAIT}s in vain for {what}") from None


def results_within(cf: FuturesAPI, futures: list[Future[Any]], what: str) -> None:
    """Wait until every future in *futures* is done (``cf.wait``), at most ``LONG_WAIT``."""
    not_done = cf.wait(futures, timeout=LONG_WAIT).not_done
    assert not not_done, f"{len(not_done)} of {len(futures)} futures not done: waited for {what}"


# ---------------------------------------------------------------------------------------------
# Processes


def wait_until_gone(pids: set[int], timeout: float) -> set[int]:
    """Wait until every process in *pids* has exited (a zombie has), at most *timeout*
    seconds in all; return those still running."""
    deadline = time.monotonic() + timeout
    running: set[int] = set()
    for pid in sorted(pids):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        except (AttributeError, OSError):  # no pidfd (not Linux): a single look
            if _is_running(pid):
                running.add(pid)
            continue
        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)
        if not ready:
            running.add(pid)
    return running


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return _state(pid) not in ("Z", None)


def _state(pid: int) -> str | None:
    """The state letter of *pid* in /proc ("Z" for a zombie), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def direct_children() -> set[int]:
    """The pids whose parent is this process, however they were started (Linux: from /proc;
    elsewhere, multiprocessing's children only)."""
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except FileNotFoundError:
        return {child.pid for child in multiprocessing.active_children() if child.pid}
    children = set()
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # exited meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            children.add(int(entry))
    return children


def start_shared_processes() -> SyncManager:
    """Start what multiprocessing would otherwise start lazily in the middle of some test
    and keep for the rest of the session (the forkserver, the resource tracker), plus the
    manager that serves the gates, so that no test mistakes them for leaked processes."""
    if "forkserver" in CONTEXTS:
        importlib.import_module("multiprocessing.forkserver").ensure_running()
    importlib.import_module("multiprocessing.resource_tracker").ensure_running()
    return multiprocessing.get_context("spawn").Manager()


class ProcessPools:
    """Makes the process pools and gates of one test, and cleans up after it.

    ``close()`` opens every gate, shuts every pool down (bounded), and reports every worker
    process this object saw, and every child process started during the test, that is still
    running ``LONG_WAIT`` seconds later; those are killed so that the next test starts clean.
    """

    def __init__(self, manager: SyncManager) -> None:
        self._manager = manager
        self._pools: list[tuple[weakref.ref[ProcessPoolExecutor], FuturesAPI]] = []
        self._gates: list[Gate] = []
        self._pids: set[int] = set()
        self._children_before = direct_children()

    def make(
        self, cf: FuturesAPI, context: str | None = DEFAULT_CONTEXT, **kwargs: Any
    ) -> ProcessPoolExecutor:
        """A ``cf.ProcessPoolExecutor(mp_context=<context>, **kwargs)``, with two workers
        unless *kwargs* say otherwise; ``context=None`` passes no mp_context at all."""
        kwargs.setdefault("max_workers", 2)
        if context is not None:
            kwargs["mp_context"] = multiprocessing.get_context(context)
        pool = process_pool_class(cf)(**kwargs)
        # A weak reference: a test may drop the pool to see what garbage collection does.
        self._pools.append((weakref.ref(pool), cf))
        return pool

    def worker_pids(self, cf: FuturesAPI, pool: ProcessPoolExecutor) -> list[int]:
        """``worker_pids_of(cf, pool)``, remembered for the leak check."""
        pids = worker_pids_of(cf, pool)
        self._pids.update(pids)
        return pids

    def observe(self, *pids: int) -> None:
        """Remember worker pids a test learnt otherwise (from a task, a gate)."""
        self._pids.update(pids)

    def gate(self) -> Gate:
        """A closed gate, opened when the test ends if the test did not open it."""
        gate = tasks.Gate(self._manager.Queue(), self._manager.Event())
        self._gates.append(gate)
        return gate

    def close(self) -> list[str]:
        """Release everything; return the problems found (leaks, hangs), as sentences."""
        problems: list[str] = []
        for gate in self._gates:
            gate.open()
        for ref, cf in self._pools:
            pool = ref()
            if pool is None:
                continue
            try:
                self.worker_pids(cf, pool)
            except Exception as error:  # a broken hook must not hide the leak check
                problems.append(f"worker_pids() failed at the end of the test: {error!r}")
            shutdown = BackgroundCall(
                functools.partial(pool.shutdown, wait=True, cancel_futures=True),
                name="test-final-shutdown",
            )
            try:
                shutdown.outcome("the pool to shut down at the end of the test")
            except BaseException as error:  # a hang or an error: report, go on cleaning
                problems.append(f"shutdown(wait=True) at the end of the test: {error!r}")
            del pool
        running = wait_until_gone(self._pids, LONG_WAIT)
        if running:
            problems.append(f"worker processes still running {LONG_WAIT}s later: {running}")
        new_children = direct_children() - self._children_before
        stuck = wait_until_gone(new_children - running, LONG_WAIT)
        if stuck:
            problems.append(f"child processes started by the test still running: {stuck}")
        multiprocessing.active_children()  # reaps the multiprocessing children that exited
        zombies = {pid for pid in new_children - running - stuck if _state(pid) == "Z"}
        if zombies:
            problems.append(f"child processes that exited but were never reaped: {zombies}")
        for pid in running | stuck:
            kill(pid)
        return problems


# ---------------------------------------------------------------------------------------------
# A fresh interpreter


@dataclass
class PythonRun:
    """What a script run by ``run_python`` did."""

    finished: bool
    returncode: int | None
    stdout: str
    stderr: str


def run_python(script: str, bound: float) -> PythonRun:
    """Run *script* in a new interpreter that imports this checkout's executor_impl and
    ``tests.executor_impl._process_tasks``; kill it, and every process it started, if it
    has not exited after *bound* seconds (``finished`` is then False)."""
    path = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
        start_new_session=True,  # its own process group: a timeout kills its workers too
    )
    try:
        stdout, stderr = process.communicate(timeout=bound)
        finished = True
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=LONG_WAIT)
        finished = False
    return PythonRun(finished, process.returncode if finished else None, stdout, stderr)


# ---------------------------------------------------------------------------------------------
# Probes for known stdlib bugs (see _helpers.xfail_stdlib_if)


def _probe_pool(**kwargs: Any) -> ProcessPoolExecutor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", FORK_WARNING.split(":")[1], DeprecationWarning)
        return concurrent.futures.ProcessPoolExecutor(
            mp_context=multiprocessing.get_context(DEFAULT_CONTEXT), **kwargs
        )


@functools.cache
def stdlib_shares_one_broken_process_pool_error() -> bool:
    """gh-101267: the stdlib fails every future of a broken pool with one shared
    BrokenProcessPool instance, whose traceback grows each time one of them is raised."""
    crash = multiprocessing.get_context(DEFAULT_CONTEXT).Event()
    pool = _probe_pool(max_workers=1, initializer=tasks.remember, initargs=(crash,))
    try:
        crashing = pool.submit(tasks.exit_abruptly_once_remembered_event_is_set)
        pending = pool.submit(tasks.identity, 1)
        crash.set()
        errors = [crashing.exception(LONG_WAIT), pending.exception(LONG_WAIT)]
    finally:
        pool.shutdown(wait=True)
    return errors[0] is errors[1]


@functools.cache
def stdlib_process_shutdown_leaves_cancelled_futures_unnotified() -> bool:
    """gh-136655: the stdlib's process pool cancels the queued futures in its manager thread
    with ``cancel()`` alone, so ``wait()`` and ``as_completed()`` never count them as done."""
    release = multiprocessing.get_context(DEFAULT_CONTEXT).Event()
    pool = _probe_pool(max_workers=1, initializer=tasks.remember, initargs=(release,))
    running = pool.submit(tasks.wait_for_remembered_event)
    queued = [pool.submit(tasks.identity, i) for i in range(6)]
    processes = list(getattr(pool, "_processes", {}).values())
    manager_thread = getattr(pool, "_executor_manager_thread", None)
    try:
        pool.shutdown(wait=False, cancel_futures=True)
        # The manager thread cancels them once it sees the shutdown: no public API tells
        # when, so poll (without sleeping; bounded).
        deadline = time.monotonic() + LONG_WAIT
        while not queued[-1].cancelled():
            assert time.monotonic() < deadline, "the stdlib never cancelled a queued future"
        unnotified = not concurrent.futures.wait(queued[-1:], timeout=0).done
    finally:
        release.set()
        running.result(timeout=LONG_WAIT)
        # shutdown(wait=False) dropped the pool's references: join what it started.
        if manager_thread is not None:
            manager_thread.join(LONG_WAIT)
        for process in processes:
            process.join(LONG_WAIT)
    return unnotified


def stdlib_fails_to_break_when_a_pending_future_was_cancelled() -> bool:
    """gh-107219 (fixed in 3.12): when the pool breaks, the stdlib's manager thread calls
    set_exception() on every pending future; on one cancelled meanwhile that raises
    InvalidStateError, which kills the thread before it fails the other futures, terminates
    the workers and closes its queues (whose thread is then left running). Not probed by
    running it: the probe itself would leave that thread behind."""
    return sys.version_info < (3, 12)


def stdlib_races_its_wakeup_pipe_at_exit() -> bool:
    """At exit the stdlib's hook wakes every manager thread through a pipe that the thread
    may be closing at that very moment (after shutdown(wait=False)); "Exception ignored ...
    OSError: [Errno 9] Bad file descriptor" (or "handle is closed") is then printed. The
    lock that gh-125451's fix (2024) gave ``_ThreadWakeup`` closed the race."""
    wakeup = importlib.import_module("concurrent.futures.process")._ThreadWakeup()
    try:
        return not hasattr(wakeup, "_lock")
    finally:
        wakeup.close()


def without_the_stdlib_wakeup_race_report(stderr: str) -> str:
    """*stderr* of an interpreter that used the stdlib's pool, without the report of the
    race ``stdlib_races_its_wakeup_pipe_at_exit`` describes (if that is all it says)."""
    race = (
        stderr.startswith("Exception ignored")
        and "in _python_exit\n" in stderr
        and stderr.endswith(
            ("OSError: [Errno 9] Bad file descriptor\n", "OSError: handle is closed\n")
        )
    )
    return "" if race else stderr


def stdlib_lacks_max_tasks_per_child() -> bool:
    """``max_tasks_per_child`` appeared in Python 3.11."""
    return sys.version_info < (3, 11)


MAX_TASKS_STALL = 3.0
"""Seconds the gh-115634 script waits for the next task to finish (one worker start at
most) before it calls the pool stuck. The stdlib never finishes the fifth task, so this is
what its strict xfail costs; a bound on progress, not on the whole run, keeps a slow
machine from failing a pool that works."""

MAX_TASKS_SCRIPT = """
import multiprocessing, os
from {module} import ProcessPoolExecutor, TimeoutError

if __name__ == "__main__":
    pool = ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context("{context}"), max_tasks_per_child=2
    )
    futures = [pool.submit(os.getpid) for _ in range(20)]
    pids = []
    try:
        for future in futures:
            pids.append(future.result(timeout={stall}))
    except TimeoutError:
        pass
    print(len(pids), len(set(pids)), flush=True)
    if len(pids) < len(futures):  # stuck: leave without joining it
        for child in multiprocessing.active_children():
            child.kill()
        os._exit(3)
    pool.shutdown()
"""


@functools.cache
def run_a_backlog_with_max_tasks_per_child(module: str) -> PythonRun:
    """Run twenty tasks on two workers that each exit after two tasks (gh-115634), in a
    fresh interpreter: the stdlib hangs once the first workers have exited."""
    context = "forkserver" if "forkserver" in CONTEXTS else "spawn"
    script = MAX_TASKS_SCRIPT.format(module=module, context=context, stall=MAX_TASKS_STALL)
    return run_python(script, 20 * MAX_TASKS_STALL)


def stdlib_hangs_on_a_max_tasks_per_child_backlog() -> bool:
    """gh-115634: ProcessPoolExecutor hangs when 1 < max_tasks_per_child < tasks/workers."""
    if stdlib_lacks_max_tasks_per_child():
        return False
    run = run_a_backlog_with_max_tasks_per_child("concurrent.futures")
    return run.stdout.split()[:1] != ["20"]


CRASH_WITH_DATA_BOUND = 5.0
"""Seconds the gh-94777 script may take; the stdlib before 3.11 hangs in shutdown()."""

CRASH_WITH_DATA_SCRIPT = """
import multiprocessing
from {module} import ProcessPoolExecutor
from {module}.process import BrokenProcessPool
from tests.executor_impl import _process_tasks as tasks

if __name__ == "__main__":
    data = b"x" * (4 << 20)
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("{context}"))
    try:
        list(pool.map(tasks.exit_abruptly_with, [data] * 10))
    except BrokenProcessPool:
        print("BrokenProcessPool", flush=True)
    pool.shutdown(wait=True)
    print("shut down", flush=True)
"""


@functools.cache
def run_crashes_while_sending_data(module: str) -> PythonRun:
    """Map a task whose worker exits over 4 MB arguments (more than a pipe holds), then
    shut the pool down, in a fresh interpreter."""
    script = CRASH_WITH_DATA_SCRIPT.format(module=module, context=DEFAULT_CONTEXT)
    return run_python(script, CRASH_WITH_DATA_BOUND)


def stdlib_hangs_after_a_crash_while_sending_data() -> bool:
    """gh-94777: before 3.11 the stdlib's shutdown() hangs when a worker died while the
    parent was writing a call too large for the pipe."""
    return not run_crashes_while_sending_data("concurrent.futures").finished
