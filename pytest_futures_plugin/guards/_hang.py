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

import contextlib
import math
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from pytest_futures_plugin._thread_dump import describe_threads, release_waiters

from ._debugger import debugger_attached
from ._leaks import WATCHDOG_THREAD_NAME

if TYPE_CHECKING:
    from types import FrameType, TracebackType

_real_monotonic = time.monotonic  # the real clock, whatever a scheduler patches later

__all__ = [
    "DEBUGGER_POLL",
    "HANG_SIGNAL",
    "FuturesHangError",
    "HangGuard",
    "describe_threads",
    "rearm_guards",
    "release_waiters",
]

HANG_SIGNAL: int | None = getattr(signal, "SIGUSR2", None)

DEBUGGER_POLL = 0.1
"""Seconds between two checks of a guard standing down for a debugger: the debugger may go
away without telling (an IDE detaching), so the guard looks again."""


_ACTIVE: list[HangGuard] = []
"""The guards entered and not yet closed, innermost last."""


def rearm_guards() -> None:
    """Rearm (:meth:`HangGuard.rearm`) every active guard of the calling thread: called at the
    start of each part of a block bounded per part, e.g. each Hypothesis example of a spec."""
    current = threading.current_thread()
    for guard in _ACTIVE[:]:  # a copy: another thread may close its guard meanwhile
        if guard._target is current:
            guard.rearm()


class FuturesHangError(AssertionError):
    """A guarded block did not finish within its bound; the message is the hang report.

    An ``AssertionError``: pytest reports it as a plain failure in every phase and still runs
    the remaining finalizers (its teardown collects only ``Exception`` and its own outcomes),
    and unittest counts it as a failure.  Code under test that swallows it with ``except
    Exception`` is interrupted again, and the guard's exit raises it anyway.
    """


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
        self._deadline = 0.0  # real monotonic time at which the watchdog fires next
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
        _ACTIVE.append(self)
        self.interrupts = self._install_handler()
        self._started = _real_monotonic()
        self._deadline = self._started + self.bound
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
        with contextlib.suppress(ValueError):
            _ACTIVE.remove(self)
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

    def rearm(self) -> None:
        """Give the guarded block *bound* seconds from now: a block that runs many bounded
        parts (the examples of a Hypothesis test) is bounded per part, not as a whole."""
        self._deadline = _real_monotonic() + self.bound

    def _watch(self) -> None:
        """The watchdog thread: wait for the block to end; on overrun report and interrupt.

        While a debugger is attached (:func:`~._debugger.debugger_attached`) it stands down:
        it checks again every :data:`DEBUGGER_POLL` seconds and, once the debugger is gone,
        gives the block a fresh bound, so the time spent at a prompt does not count.
        """
        while True:
            remaining = self._deadline - _real_monotonic()
            if remaining > 0:
                if self._stop.wait(remaining):
                    return
                continue
            if debugger_attached(self._target.ident):
                while debugger_attached(self._target.ident):
                    if self._stop.wait(DEBUGGER_POLL):
                        return
                self.rearm()
                continue
            if not self._fire():
                return
            self._deadline = _real_monotonic() + self.bound

    def _fire(self) -> bool:
        """Take a report and interrupt the guarded thread; True if it may fire again."""
        elapsed = _real_monotonic() - self._started
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
