"""Parallel sections: calls on one future from a few threads, recorded as a history.

:func:`run_section` makes an optional sequential prefix of calls, then releases two or three
threads at once, each making its calls on the shared future, then a sequential suffix, and
returns the history (:class:`~pytest_futures_plugin.linearizability.Operation` per call: its
thread, its invocation and response points on one counter, what it returned or raised and
the done callbacks its thread ran meanwhile), for
:func:`~pytest_futures_plugin.linearizability.check`.

On real threads, or under a :class:`~pytest_futures_plugin.scheduler.Scheduler` that controls
this module (so that its threads are managed) and the module of the future's lock: the same
threads then run one at a time, in the order the policy picks.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from concurrent import futures as _futures
from typing import TYPE_CHECKING, Any, Callable

from pytest_futures_plugin import LONG_WAIT

from ._checker import Call, Operation, Outcome, PlantedError, format_history

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["FutureErrors", "SectionHungError", "run_section"]


@dataclasses.dataclass(frozen=True)
class FutureErrors:
    """Names an outcome by the exception classes of the futures API under test.

    *api* is that API as :mod:`pytest_futures_plugin.backends` describes it: a
    :class:`~pytest_futures_plugin.backends.FuturesAPI` (``backend.api``), or any module with
    the ``concurrent.futures`` API (the stdlib's by default).
    """

    api: Any = _futures

    def name(self, error: BaseException) -> str:
        """How an outcome names *error*: the API's class names, ``RuntimeError``, a
        :class:`PlantedError` by its repr; anything else by its type and message."""
        if isinstance(error, PlantedError):
            return repr(error)
        for name in ("CancelledError", "TimeoutError", "InvalidStateError"):
            if isinstance(error, getattr(self.api, name)):
                return name
        if type(error) is RuntimeError:
            return "RuntimeError"
        return f"{type(error).__name__}: {error}"


class SectionHungError(AssertionError):
    """A thread of a section did not finish within its bound."""


def _do(future: Any, call: Call) -> Any:
    name = call.name
    if name in ("result", "exception"):
        return getattr(future, name)(timeout=0)
    if name == "set_result":
        return future.set_result(call.argument)
    if name == "set_exception":
        return future.set_exception(PlantedError(call.argument))
    return getattr(future, name)()


class _Recorder:
    """Runs calls on one future, numbering invocations and responses on one counter and
    attributing each done callback to the thread that ran it."""

    def __init__(self, future: Any, errors: FutureErrors) -> None:
        self.future = future
        self.errors = errors
        # next() on an itertools.count is atomic under the GIL: no lock, which under a
        # scheduler would add scheduling points of the recorder's own.
        self.points = itertools.count()
        # Keyed by thread object, not ident: an ident is reused once its thread ends.
        self.ran: dict[threading.Thread, list[int]] = {}
        self.history: list[Operation] = []
        self.current: dict[str, Call] = {}

    def callback(self, number: int) -> Callable[[Any], None]:
        def called_back(_future: Any) -> None:
            self.ran.setdefault(threading.current_thread(), []).append(number)

        return called_back

    def perform(self, thread: str, call: Call) -> None:
        ran = self.ran.setdefault(threading.current_thread(), [])
        already = len(ran)
        self.current[thread] = call
        invoked = next(self.points)
        try:
            if call.name == "add_done_callback":
                value = self.future.add_done_callback(self.callback(call.argument))
            else:
                value = _do(self.future, call)
        except Exception as error:
            responded = next(self.points)
            outcome = Outcome(self.errors.name(error), True, tuple(ran[already:]))
        else:
            responded = next(self.points)
            outcome = Outcome(repr(value), False, tuple(ran[already:]))
        del self.current[thread]
        self.history.append(Operation(thread, call, invoked, responded, outcome))


def run_section(
    future: Any,
    threads: Sequence[Sequence[Call]],
    *,
    prefix: Sequence[Call] = (),
    suffix: Sequence[Call] = (),
    errors: FutureErrors | None = None,
    bound: float = LONG_WAIT,
    on_release: Callable[[], object] | None = None,
) -> list[Operation]:
    """Run a parallel section on *future* and return its history.

    The calling thread (``main`` in the history) makes the *prefix* calls; then one thread
    per entry of *threads* (``T1``, ``T2``, ...; started first, then released together by
    an event) makes its calls in order; once all have finished, ``main`` makes the *suffix*
    calls. *errors* names the API's exceptions (the stdlib's by default). *on_release* is
    called (in the calling thread) just before the threads are released: a schedule that
    counts its decisions from there spends none on starting them.

    Raises :class:`SectionHungError` naming the threads and calls still running if the
    threads have not finished *bound* seconds after their release (virtual seconds under a
    scheduler); the threads are daemons, left behind.
    """
    recorder = _Recorder(future, errors or FutureErrors())
    for call in prefix:
        recorder.perform("main", call)
    go = threading.Event()

    def run(label: str, calls: Sequence[Call]) -> None:
        if go.wait(bound):
            for call in calls:
                recorder.perform(label, call)

    workers = [
        threading.Thread(target=run, args=(f"T{n}", calls), name=f"section-T{n}", daemon=True)
        for n, calls in enumerate(threads, 1)
    ]
    for worker in workers:
        worker.start()
    if on_release is not None:
        on_release()
    go.set()
    for worker in workers:
        worker.join(bound)
    stuck = [w.name for w in workers if w.is_alive()]
    if stuck:
        running = ", ".join(f"{t}: {c}" for t, c in sorted(recorder.current.items()))
        raise SectionHungError(
            f"threads {stuck} of the section had not finished {bound}s after they were "
            f"released (calls in progress: {running or 'none'}); history so far:\n"
            + format_history(recorder.history)
        )
    ours = {*workers, threading.current_thread()}
    strangers = {t.name: ran for t, ran in recorder.ran.items() if ran and t not in ours}
    attributed = sum(len(op.outcome.called_back) for op in recorder.history)
    if strangers or attributed != sum(map(len, recorder.ran.values())):
        calls = {t.name: ran for t, ran in recorder.ran.items() if ran}
        raise AssertionError(
            f"done callbacks ran outside the section's calls (by thread: {calls}; by "
            f"threads outside the section: {strangers or 'none'}): a callback runs in the "
            "call that completes the future, or in add_done_callback() on a done one"
        )
    for call in suffix:
        recorder.perform("main", call)
    return recorder.history
