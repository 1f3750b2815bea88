"""Leak checks: threads and child processes a test started and left running, and executors
it left open. Standard library only: no pytest, no hypothesis.

:class:`LeakCheck` snapshots threads (by identity) and child processes (pid and start time,
from ``/proc``; ``multiprocessing.active_children()`` where there is no ``/proc``) and, after
the region, gives the newcomers one shared grace period to exit before naming them.

A thread is blamed on the region that started it, and only on that one: threads alive at the
snapshot belong to earlier tests; threads started inside :func:`process_wide` (a backend's
one-off probe, which may start an executor library's own process-wide threads, e.g. dask's
event loop and profiler) belong to the process, whichever test happened to probe first; and
threads named with :data:`SERVICE_THREAD_PREFIXES` (the controls' server, the hang guard's
watchdog, the specs' own helper threads) are the harness's.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

_real_monotonic = time.monotonic  # the real clock, whatever a scheduler patches later

__all__ = [
    "HELPER_THREAD_PREFIX",
    "SERVICE_PROCESS_MARKERS",
    "SERVICE_THREAD_PREFIXES",
    "LeakCheck",
    "is_shut_down",
    "process_wide",
    "unclosed_executors",
]

WATCHDOG_THREAD_NAME = "pytest-futures-hang-guard"
HELPER_THREAD_PREFIX = "pytest-futures-spec"
"""How the specs name the threads they start to watch a call block (left behind if it hangs)."""
#: Name prefixes of threads that outlive a test by design; a leak check never reports them.
SERVICE_THREAD_PREFIXES = ("pytest-futures-controls", WATCHDOG_THREAD_NAME, HELPER_THREAD_PREFIX)

_PROCESS_WIDE: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
"""The threads started inside :func:`process_wide`."""
_PROCESS_WIDE_LOCK = threading.Lock()


@contextlib.contextmanager
def process_wide() -> Iterator[None]:
    """Mark the threads started in this block, and still alive at its end, as the process's:
    no leak check reports them. For one-off work done on behalf of the whole run (probing a
    backend), whichever test runs it first."""
    before = set(threading.enumerate())
    try:
        yield
    finally:
        started = [t for t in threading.enumerate() if t not in before]
        with _PROCESS_WIDE_LOCK:
            _PROCESS_WIDE.update(started)


def _is_process_wide(thread: threading.Thread) -> bool:
    with _PROCESS_WIDE_LOCK:
        return thread in _PROCESS_WIDE


#: multiprocessing's (and loky's) helper processes are started on first use and live as long as the
#: interpreter: matched in the command line, they are never reported as leaks.
SERVICE_PROCESS_MARKERS = (
    "multiprocessing.resource_tracker",
    "multiprocessing.forkserver",
    "multiprocessing.semaphore_tracker",
    # loky (joblib's process pool) keeps its own resource tracker for the interpreter's life.
    "loky.backend.resource_tracker",
)


def _proc_stat(pid: int) -> tuple[str, int, str] | None:
    """``(state, ppid, start time)`` from ``/proc/<pid>/stat``, None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
        fields = data[data.rindex(b")") + 2 :].split()  # the name may hold spaces and parens
        return fields[0].decode(), int(fields[1]), fields[19].decode()
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, start: str) -> bool:
    """Whether the process *pid* started at *start* still runs (zombies have exited)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[2] == start and stat[0] not in "ZXx"


def _children() -> dict[int, str] | None:
    """pid -> start time of this process's running children; None where there is no ``/proc``."""
    me = os.getpid()
    try:
        tasks = os.listdir(f"/proc/{me}/task")
    except OSError:
        return None
    pids: set[int] = set()
    if os.path.exists(f"/proc/{me}/task/{me}/children"):  # needs CONFIG_PROC_CHILDREN
        for task in tasks:
            try:
                with open(f"/proc/{me}/task/{task}/children") as file:
                    pids.update(int(pid) for pid in file.read().split())
            except OSError:
                pass  # that thread has exited meanwhile
    else:
        pids.update(int(name) for name in os.listdir("/proc") if name.isdigit())
    children = {}
    for pid in pids:
        stat = _proc_stat(pid)
        if stat is not None and stat[1] == me and stat[0] not in "ZXx":
            children[pid] = stat[2]
    return children


def _wait_exit(pid: int, start: str, timeout: float) -> bool:
    """Wait up to *timeout* seconds for a child to exit without reaping it; True if it did."""
    pidfd_open = getattr(os, "pidfd_open", None)  # Linux 5.3+, Python 3.9+
    if pidfd_open is not None:
        try:
            fd = pidfd_open(pid)
        except ProcessLookupError:
            return True
        except OSError:
            fd = -1  # ENOSYS on older kernels, or forbidden by a seccomp policy
        if fd >= 0:
            try:
                if not _alive(pid, start):  # gone, or the pid reused before we opened it
                    return True
                poller = select.poll()  # a pidfd turns readable when the process exits
                poller.register(fd, select.POLLIN)
                return bool(poller.poll(math.ceil(max(timeout, 0.0) * 1000)))
            finally:
                os.close(fd)
    # No pidfd: nothing to block on for a process we must not reap (its Popen or
    # multiprocessing object will), so poll /proc with a backoff, bounded by the timeout.
    deadline = _real_monotonic() + timeout
    delay, pause = 0.001, threading.Event()
    while _alive(pid, start):
        remaining = deadline - _real_monotonic()
        if remaining <= 0:
            return False
        pause.wait(min(delay, remaining))
        delay = min(delay * 2, 0.05)
    return True


def _cmdline(pid: int) -> str:
    """The command line of *pid* ("" while it is in the middle of exec(), "?" if gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _mp_children() -> list[Any]:
    import multiprocessing  # only where there is no /proc: it is not cheap to import

    return list(multiprocessing.active_children())


class LeakCheck:
    """Name the threads and child processes a region started and left running.

    ``start()`` (or ``__enter__``) takes the snapshot; ``check()`` (or ``__exit__``, which stores
    ``problems``) gives every newcomer one shared *grace* period, in seconds, to exit and returns
    one line per survivor.  Threads whose names start with :data:`SERVICE_THREAD_PREFIXES` or
    *ignore_thread_prefixes*, and processes whose command line contains one of
    :data:`SERVICE_PROCESS_MARKERS` or *ignore_process_markers*, are never reported.  Waiting
    never reaps a process: zombies count as exited.
    """

    def __init__(
        self,
        grace: float = 10.0,
        *,
        ignore_thread_prefixes: Iterable[str] = (),
        ignore_process_markers: Iterable[str] = (),
    ) -> None:
        """Prepare a check; nothing is recorded before ``start()``."""
        self.grace = grace
        self.ignore_thread_prefixes = SERVICE_THREAD_PREFIXES + tuple(ignore_thread_prefixes)
        self.ignore_process_markers = SERVICE_PROCESS_MARKERS + tuple(ignore_process_markers)
        self.problems: list[str] = []
        self._threads: set[threading.Thread] | None = None
        self._children: dict[int, str] | None = None
        self._mp: list[Any] = []

    def start(self) -> None:
        """Snapshot the live threads and child processes."""
        self._threads = set(threading.enumerate())
        self._children = _children()
        if self._children is None:
            self._mp = _mp_children()

    def check(self) -> list[str]:
        """Wait up to *grace* seconds for what started since ``start()``; describe survivors.

        Raises ``RuntimeError`` if ``start()`` was not called.
        """
        if self._threads is None:
            raise RuntimeError("LeakCheck.check() before start()")
        deadline = _real_monotonic() + self.grace
        problems = []
        for thread in threading.enumerate():
            if (
                thread in self._threads
                or thread is threading.current_thread()
                or isinstance(thread, threading._DummyThread)  # not ours to join
                or thread.name.startswith(self.ignore_thread_prefixes)
                or _is_process_wide(thread)
            ):
                continue
            try:
                thread.join(max(deadline - _real_monotonic(), 0.0))
            except RuntimeError:
                pass  # being started by another thread right now: is_alive() is still False
            if thread.is_alive():
                daemon = ", daemon" if thread.daemon else ""
                problems.append(
                    f"thread {thread.name!r} (started during the region{daemon}) "
                    f"still alive {self.grace:g} s after the region ended"
                )
        problems.extend(self._check_children(deadline))
        return problems

    def _check_children(self, deadline: float) -> list[str]:
        problems = []
        if self._children is not None:
            for pid, start in sorted((_children() or {}).items()):
                if self._children.get(pid) == start or self._is_service(pid):
                    continue
                exited = _wait_exit(pid, start, deadline - _real_monotonic())
                # Ask again after the wait: a child caught in the middle of exec() had no
                # command line yet.
                if not exited and not self._is_service(pid):
                    problems.append(self._describe_child(pid, _cmdline(pid)))
        else:
            for process in _mp_children():
                if process in self._mp:
                    continue
                process.join(max(deadline - _real_monotonic(), 0.0))
                if process.is_alive():
                    problems.append(self._describe_child(process.pid, process.name))
        return problems

    def _is_service(self, pid: int) -> bool:
        cmdline = _cmdline(pid)
        return any(marker in cmdline for marker in self.ignore_process_markers)

    def _describe_child(self, pid: int, what: str) -> str:
        what = what if len(what) <= 120 else what[:117] + "..."
        return (
            f"child process {pid} ({what}) started during the region, "
            f"still running {self.grace:g} s after it ended"
        )

    def __enter__(self) -> LeakCheck:
        """``start()``, and return the check."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """``check()`` into ``problems``; never raises for leaks (the caller decides)."""
        self.problems = self.check()


# -- unclosed executors ------------------------------------------------------------------------


def is_shut_down(executor: object) -> bool | None:
    """Whether *executor* was shut down: True, False, or None when this cannot be told.

    A heuristic on private attributes, never a probing ``submit``: executor_impl's thread pool
    (``_shutdown_reason`` is None while open), its process pool (``_state.shutdown_reason``),
    the stdlib's thread pool (``_shutdown``) and process pool (``_shutdown_thread``).  Any other
    executor gives None.
    """
    try:
        if hasattr(executor, "_shutdown_reason"):
            return executor._shutdown_reason is not None
        state = getattr(executor, "_state", None)
        if state is not None and hasattr(state, "shutdown_reason"):
            return state.shutdown_reason is not None
        for name in ("_shutdown", "_shutdown_thread"):
            flag = getattr(executor, name, None)
            if isinstance(flag, bool):
                return flag
    except Exception:
        pass  # a property that raised: we cannot tell
    return None


def unclosed_executors(executors: Iterable[object]) -> list[str]:
    """One line per executor that :func:`is_shut_down` knows was not shut down.

    Executors it cannot judge are not reported.
    """
    return [
        f"executor {type(ex).__name__} at {id(ex):#x} was not shut down"
        for ex in executors
        if is_shut_down(ex) is False
    ]
