"""Hang guard and leak checks: turn a hung or leaky test into a failure that explains itself.

Standard library only (no pytest, no hypothesis): the pytest adapter wraps each test phase in a
:class:`HangGuard` and a :class:`LeakCheck`; plain unittest or Hypothesis code may do the same.

**Hang guard.**  A watchdog thread named :data:`WATCHDOG_THREAD_NAME` waits on an Event for
*bound* seconds; if the guarded block has not finished by then it takes the report *while the
hang is in progress* (every thread's stack, and what each thread waits on: which future, which
thread, which Event) and interrupts the guarded thread.  Only the main thread can be
interrupted: the guard installs a handler for :data:`HANG_SIGNAL` (``SIGUSR2``) for its
duration and the watchdog sends that signal to the main thread with ``signal.pthread_kill``;
on POSIX the blocked ``lock.acquire()``, ``Event.wait``, ``time.sleep`` or ``select`` returns to
run the handler, which raises :class:`FuturesHangError`.  ``SIGALRM`` belongs to pytest-timeout
and ``SIGUSR1`` is the customary ``faulthandler.register`` dump signal, hence ``SIGUSR2``.  While
a guard is active, a ``SIGUSR2`` that is not the guard's goes to the previous Python handler
(a nested guard's, or the user's) or is ignored.  If the block swallows the error and blocks
again, the watchdog interrupts it again every *bound* seconds (a ``with pool:`` whose
``shutdown(wait=True)`` waits for the hung worker is the common case).

Elsewhere (a guard entered off the main thread, no ``pthread_kill``, or ``SIGUSR2`` owned by
code outside Python) the guard only reports: once, to *on_report* or else to ``sys.stderr``,
and an outer timeout (pytest-timeout) has to stop the test.

**The race with a block that finishes as the signal is sent.**  ``__exit__`` first marks the
guard as exiting (the handler then never raises, nor does it in the frame of ``__exit__``
itself, where Python may run handlers before that first statement) and closes it under the
lock the watchdog holds while deciding to fire, so the guard fires either before ``__exit__`` or
never.  If it did fire, a signal may still be pending in the kernel: ``__exit__`` blocks
``SIGUSR2``, consumes a pending one, and restores the previous handler through
``signal.signal``, which first runs any signal that reached Python but not yet its handler.
Nothing can arrive after ``__exit__``, and a restored ``SIG_DFL`` never sees our signal (it
would kill the process).  A block that overran its bound fails even if it swallowed the
interrupt or finished just as it came: ``__exit__`` then raises :class:`FuturesHangError`
itself, with the first report.  A guard that fires inside ``__enter__`` (a bound shorter than
starting a thread) cleans up before the error leaves ``__enter__``.

**Leak check.**  :class:`LeakCheck` snapshots threads (by identity) and child processes (pid and
start time, from ``/proc``; ``multiprocessing.active_children()`` where there is no ``/proc``)
and, after the region, gives the newcomers one shared grace period to exit before naming them.
"""

from __future__ import annotations

import math
import os
import select
import signal
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import FrameType, TracebackType

__all__ = [
    "HANG_SIGNAL",
    "SERVICE_PROCESS_MARKERS",
    "SERVICE_THREAD_PREFIXES",
    "WATCHDOG_THREAD_NAME",
    "FuturesHangError",
    "HangGuard",
    "LeakCheck",
    "describe_threads",
    "is_shut_down",
    "unclosed_executors",
]

HANG_SIGNAL: int | None = getattr(signal, "SIGUSR2", None)
WATCHDOG_THREAD_NAME = "pytest-futures-hang-guard"
#: Name prefixes of threads that outlive a test by design; a leak check never reports them.
SERVICE_THREAD_PREFIXES = ("pytest-futures-controls", WATCHDOG_THREAD_NAME)
#: multiprocessing's helper processes are started on first use and live as long as the
#: interpreter: matched in the command line, they are never reported as leaks.
SERVICE_PROCESS_MARKERS = (
    "multiprocessing.resource_tracker",
    "multiprocessing.forkserver",
    "multiprocessing.semaphore_tracker",
)


class FuturesHangError(AssertionError):
    """A guarded block did not finish within its bound; the message is the hang report.

    An ``AssertionError``: pytest reports it as a plain failure in every phase and still runs
    the remaining finalizers (its teardown collects only ``Exception`` and its own outcomes),
    and unittest counts it as a failure.  Code under test that swallows it with ``except
    Exception`` is interrupted again, and the guard's exit raises it anyway.
    """


# -- the thread dump ---------------------------------------------------------------------------

_FUTURE = ("concurrent/futures/_base.py", "executor_impl/_future.py")
_WAITING = ("concurrent/futures/_base.py", "executor_impl/_waiting.py")
_MAP = ("concurrent/futures/_base.py", "executor_impl/_executor.py")
_POOLS = (
    "concurrent/futures/thread.py",
    "concurrent/futures/process.py",
    "executor_impl/thread.py",
    "executor_impl/process.py",
)
_THREADING = ("/threading.py", "/queue.py")
_SYNC_CALLS = frozenset(("join", "wait", "wait_for", "acquire", "get", "put"))
# The stdlib's state names, as its Future repr prints them.
_STATES = {
    "PENDING": "pending",
    "RUNNING": "running",
    "CANCELLED": "cancelled",
    "CANCELLED_AND_NOTIFIED": "cancelled",
    "FINISHED": "finished",
}


def _describe_future(future: Any, workers: dict[int, str]) -> str:
    """The stdlib's Future repr, built from ``_state`` without the lock a hung thread may hold."""
    state = getattr(future, "_state", None)
    text = f"<{type(future).__name__} at {id(future):#x}"
    if isinstance(state, str):
        text += f" state={_STATES.get(state, state)}"
        if state == "FINISHED":
            exc = getattr(future, "_exception", None)
            outcome = getattr(future, "_result", None) if exc is None else exc
            text += f" {'returned' if exc is None else 'raised'} {type(outcome).__name__}"
    text += ">"
    if id(future) in workers:
        text += f" (running in thread {workers[id(future)]!r})"
    return text


def _describe_futures(items: list[Any], workers: dict[int, str]) -> str:
    shown = ", ".join(_describe_future(f, workers) for f in items[:8])
    more = f", and {len(items) - 8} more" if len(items) > 8 else ""
    return f"{len(items)} future{'s' if len(items) != 1 else ''}: {shown}{more}"


def _futures_in(value: Any) -> list[Any]:
    # Only materialise containers: iterating an arbitrary iterable could run user code.
    return list(value) if isinstance(value, (set, frozenset, list, tuple)) else []


def _wait_point(frame: FrameType, workers: dict[int, str]) -> tuple[str, str, str] | None:
    """``(kind, call, target)`` if *frame* is a known wait, else None.

    Kinds: ``block`` waits on futures or a thread; ``sync`` is a threading or queue wait;
    ``context`` an enclosing API call (``map``'s iterator, ``shutdown``) worth naming.
    """
    code = frame.f_code
    name, filename = code.co_name, code.co_filename.replace(os.sep, "/")
    if name in ("result", "exception") and filename.endswith(_FUTURE):
        return "block", f"Future.{name}()", _describe_future(frame.f_locals.get("self"), workers)
    if name in ("wait", "as_completed") and filename.endswith(_WAITING):
        local = frame.f_locals
        pending = next((local[n] for n in ("not_done", "pending", "fs") if n in local), ())
        return "block", f"{name}()", _describe_futures(_futures_in(pending), workers)
    if name in _SYNC_CALLS and filename.endswith(_THREADING):
        this = frame.f_locals.get("self")
        if name == "join" and isinstance(this, threading.Thread):
            return "block", "Thread.join()", f"thread {this.name!r}"
        kind = type(this)
        return (
            "sync",
            f"{kind.__name__}.{name}()",
            f"<{kind.__module__}.{kind.__qualname__} at {id(this):#x}>",
        )
    if name in ("result_iterator", "_results_in_order") and filename.endswith(_MAP):
        return "context", "Executor.map() results", ""
    if name == "shutdown" and filename.endswith(_POOLS):
        return "context", f"{type(frame.f_locals.get('self')).__name__}.shutdown()", ""
    return None


def _wait_line(name: str, frame: FrameType | None, workers: dict[int, str]) -> str | None:
    """``"<name> waits in <call> on <target>"`` for one thread's stack, None if not waiting.

    The innermost ``block`` wins (``Future.result()``, not the lock inside it); failing that the
    outermost ``sync`` (``Event.wait()``, not the ``Condition.wait()`` inside it).
    """
    block: tuple[str, str] | None = None
    sync: tuple[str, str] | None = None
    contexts: list[str] = []
    while frame is not None:  # innermost first
        point = _wait_point(frame, workers)
        if point is not None:
            kind, call, target = point
            if kind == "block" and block is None:
                block = (call, target)
            elif kind == "sync" and block is None:
                sync = (call, target)
            elif kind == "context" and (block or sync):
                contexts.append(call)
        frame = frame.f_back
    chosen = block or sync
    if chosen is None:
        return None
    via = f" (inside {', '.join(reversed(contexts))})" if contexts else ""
    return f"{name} waits in {chosen[0]} on {chosen[1]}{via}"


def _running_futures(frames: dict[int, FrameType], names: dict[int, str]) -> dict[int, str]:
    """id(future) -> name of the pool worker thread running it (executor_impl's and stdlib's)."""
    workers: dict[int, str] = {}
    for ident, frame in frames.items():
        current: FrameType | None = frame
        while current is not None:
            # f_locals only for the frames that match: before 3.13 each read copies them.
            code = current.f_code
            filename = code.co_filename.replace(os.sep, "/")
            future: Any = None
            if code.co_name == "_worker" and filename.endswith("executor_impl/thread.py"):
                future = current.f_locals.get("future")
            elif code.co_name == "run" and filename.endswith("concurrent/futures/thread.py"):
                future = getattr(current.f_locals.get("self"), "future", None)
            if future is not None:
                workers[id(future)] = names.get(ident, f"<unknown thread {ident}>")
            current = current.f_back
    return workers


def describe_threads(*, exclude: Iterable[int] = ()) -> str:
    """Describe every Python thread: what it waits on (futures, threads, Events), then its stack.

    *exclude* lists thread idents to leave out (the hang guard leaves out its watchdog).  Reads
    the frames lock-free, so it is safe to call while other threads hang; it never raises (a
    failure is described in the text instead).
    """
    try:
        skip = set(exclude)
        frames = {k: v for k, v in sys._current_frames().items() if k not in skip}
        threads = {t.ident: t for t in threading.enumerate()}
        names = {
            ident: getattr(threads.get(ident), "name", f"<unknown {ident}>") for ident in frames
        }
        main = threading.main_thread().ident
        order = sorted(frames, key=lambda ident: (ident != main, names[ident]))
        workers = _running_futures(frames, names)
        waits, stacks = [], []
        for ident in order:
            try:
                line = _wait_line(names[ident], frames[ident], workers)
                if line is not None:
                    waits.append(f"  {line}")
                daemon = getattr(threads.get(ident), "daemon", "?")
                stacks.append(
                    f"Thread {names[ident]!r} (ident {ident}, daemon={daemon}), most recent call last:\n"
                    + "".join(traceback.format_stack(frames[ident]))
                )
            except Exception as exc:  # one odd thread must not cost the whole report
                stacks.append(f"Thread {names[ident]!r}: could not describe it: {exc!r}\n")
        waits = waits or ["  (no thread waits in a known futures or threading call)"]
        return "Waits:\n" + "\n".join(waits) + f"\n\nThreads ({len(order)}):\n" + "\n".join(stacks)
    except Exception as exc:
        return f"could not describe the threads: {exc!r}\n"


def _blocked_on(frame: FrameType | None) -> list[Any]:
    """The futures the innermost futures wait of a stack (``result()``, ``wait()``, ...) is on."""
    while frame is not None:
        code = frame.f_code
        name, filename = code.co_name, code.co_filename.replace(os.sep, "/")
        if name in ("result", "exception") and filename.endswith(_FUTURE):
            return [frame.f_locals.get("self")]
        if name in ("wait", "as_completed") and filename.endswith(_WAITING):
            local = frame.f_locals
            pending = next((local[n] for n in ("not_done", "pending", "fs") if n in local), ())
            return _futures_in(pending)
        frame = frame.f_back
    return []


def release_waiters(error: BaseException) -> list[str]:
    """Fail every unfinished future that a thread other than the caller is blocked on, with
    *error*, and return their descriptions.

    The way out of a deadlock once it has been reported: the blocked tasks return (raising),
    their workers go back to their pools, and the pools can shut down, so the process does
    not hang at exit. A future that finished meanwhile is left alone; the worker of a future
    failed before it ran finds it done and skips or drops it, as the pool does for any
    future completed behind its back.
    """
    me = threading.get_ident()
    released: list[str] = []
    seen: set[int] = set()
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        for future in _blocked_on(frame):
            if future is None or id(future) in seen or not hasattr(future, "set_exception"):
                continue
            seen.add(id(future))
            try:
                if future.done():
                    continue
                future.set_exception(error)
            except Exception:  # finished just now (InvalidStateError), or not a real Future
                continue
            released.append(_describe_future(future, {}))
    return released


# -- the hang guard ----------------------------------------------------------------------------


class HangGuard:
    """Fail the guarded block with :class:`FuturesHangError` if it runs past *bound* seconds.

    Use as a context manager, once: ``with HangGuard(5.0, "backend: thread; test: t.py::t"):``.
    *context* opens the report.  *on_report*, if given, is called in the watchdog thread with
    each report as it is taken (it must not block: ``__exit__`` waits for the watchdog);
    otherwise a guard that cannot interrupt writes its one report to ``sys.stderr``.  ``reports`` holds the reports taken; ``interrupts`` tells whether the
    guard can interrupt the guarded thread (see the module docstring).  Raises ``ValueError``
    for a *bound* that is not a positive finite number, ``RuntimeError`` if entered twice.
    """

    def __init__(
        self, bound: float, context: str = "", *, on_report: Callable[[str], object] | None = None
    ) -> None:
        """Prepare a guard; the watchdog starts on ``__enter__``."""
        if not (isinstance(bound, (int, float)) and 0 < bound < math.inf):
            raise ValueError(
                f"hang guard bound must be a positive finite number of seconds, got {bound!r}"
            )
        self.bound = float(bound)
        self.context = context
        self.on_report = on_report
        self.reports: list[str] = []
        self.interrupts = False
        self._lock = threading.Lock()  # the watchdog's decision to fire vs __exit__ closing
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._target = threading.current_thread()
        self._started = 0.0
        self._closed = False  # under _lock: the watchdog must not fire any more
        self._exiting = False  # read by the signal handler, which must not take _lock
        self._sent = 0  # signals sent (under _lock) ...
        self._handled = 0  # ... and taken by the handler, in the main thread
        self._previous: Any = None

    def __enter__(self) -> HangGuard:
        """Install the signal handler if the guard can interrupt, and start the watchdog."""
        if self._watchdog is not None:
            raise RuntimeError("a HangGuard guards one block; create one per block")
        self._target = threading.current_thread()
        self.interrupts = self._install_handler()
        self._started = time.monotonic()
        self._watchdog = threading.Thread(
            target=self._watch, name=WATCHDOG_THREAD_NAME, daemon=True
        )
        try:
            self._watchdog.start()  # with a tiny bound, the guard may fire in here already
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the watchdog, restore the handler; raise the hang if the block overran silently."""
        self._close()
        if self.reports and exc_type is None:
            raise FuturesHangError(self.reports[0])

    def _close(self) -> None:
        """Stop the watchdog, wait for it, restore the handler: nothing can fire afterwards."""
        self._exiting = True  # first: from here on the handler never raises
        with self._lock:
            self._closed = True
        self._stop.set()
        try:  # prompt: the watchdog takes no lock that the guarded code could hold
            if self._watchdog is not None:
                self._watchdog.join()
        except RuntimeError:
            pass  # it never started
        if self.interrupts:
            self._restore_handler()

    def _install_handler(self) -> bool:
        if HANG_SIGNAL is None or not hasattr(signal, "pthread_kill"):
            return False
        if self._target is not threading.main_thread():
            return False  # Python runs signal handlers in the main thread only
        try:
            previous = signal.getsignal(HANG_SIGNAL)
            if previous is None:  # installed outside Python: we could not put it back
                return False
            signal.signal(HANG_SIGNAL, self._on_signal)
        except (ValueError, OSError):  # e.g. not the main interpreter
            return False
        self._previous = previous
        return True

    def _restore_handler(self) -> None:
        if HANG_SIGNAL is None or self._previous is None:
            return
        if self._sent == self._handled:
            signal.signal(HANG_SIGNAL, self._previous)
            return
        # A signal of ours may still be pending in the kernel: block it, consume it, and
        # restore with it blocked (signal.signal first runs any signal Python has seen but not
        # yet handled, i.e. our now harmless handler).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {HANG_SIGNAL})
        try:
            if HANG_SIGNAL in signal.sigpending():
                if hasattr(signal, "sigtimedwait"):
                    signal.sigtimedwait({HANG_SIGNAL}, 0)
                else:  # macOS: pending and blocked, so sigwait returns at once
                    signal.sigwait({HANG_SIGNAL})
            self._handled = self._sent
            signal.signal(HANG_SIGNAL, self._previous)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._handled < self._sent:
            self._handled += 1  # one at a time: a signal sent during this call is counted
            # Raising at the very entry of __exit__/_close, before _exiting is set, would
            # abort them and leave the watchdog running: those frames count as exiting too.
            exiting = self._exiting or (
                frame is not None
                and frame.f_code in _EXITING_CODE
                and frame.f_locals.get("self") is self
            )
            if not exiting:
                raise FuturesHangError(self.reports[-1])
            return
        previous = self._previous  # not ours: a nested guard's, or the user's
        if callable(previous):
            previous(signum, frame)

    def _watch(self) -> None:
        """The watchdog thread: wait for the block to end; on overrun report and interrupt."""
        while not self._stop.wait(self.bound):
            if not self._fire():
                return

    def _fire(self) -> bool:
        """Take a report and interrupt the guarded thread; True if it may fire again."""
        elapsed = time.monotonic() - self._started
        head = (
            f"hang guard: thread {self._target.name!r} still running after {elapsed:.2f} s "
            f"(bound {self.bound:g} s, report {len(self.reports) + 1})"
        )
        if self.context:
            head += f"; {self.context}"
        if not self.interrupts:
            head += (
                "\n(report only: this thread cannot be interrupted; an outer timeout must stop it)"
            )
        report = f"{head}\n{describe_threads(exclude=(threading.get_ident(),))}"
        with self._lock:
            if self._closed:
                return False
            self.reports.append(report)
            ident, signum = self._target.ident, HANG_SIGNAL
            if self.interrupts and ident is not None and signum is not None:
                self._sent += 1
                try:
                    signal.pthread_kill(ident, signum)
                except Exception as exc:  # e.g. the thread is gone: the report must still go out
                    self.reports[-1] += f"\n(could not interrupt: {exc!r})"
        try:
            if self.on_report is not None:
                self.on_report(report)
            elif not self.interrupts:
                sys.stderr.write(f"\n{report}\n")
                sys.stderr.flush()
        except Exception:
            pass  # reporting must never kill the watchdog
        return self.interrupts


_EXITING_CODE = frozenset((HangGuard.__exit__.__code__, HangGuard._close.__code__))


# -- leak checks -------------------------------------------------------------------------------


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
    deadline = time.monotonic() + timeout
    delay, pause = 0.001, threading.Event()
    while _alive(pid, start):
        remaining = deadline - time.monotonic()
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
        deadline = time.monotonic() + self.grace
        problems = []
        for thread in threading.enumerate():
            if (
                thread in self._threads
                or thread is threading.current_thread()
                or isinstance(thread, threading._DummyThread)  # not ours to join
                or thread.name.startswith(self.ignore_thread_prefixes)
            ):
                continue
            try:
                thread.join(max(deadline - time.monotonic(), 0.0))
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
                exited = _wait_exit(pid, start, deadline - time.monotonic())
                # Ask again after the wait: a child caught in the middle of exec() had no
                # command line yet.
                if not exited and not self._is_service(pid):
                    problems.append(self._describe_child(pid, _cmdline(pid)))
        else:
            for process in _mp_children():
                if process in self._mp:
                    continue
                process.join(max(deadline - time.monotonic(), 0.0))
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
