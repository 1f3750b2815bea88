"""A done callback that calls ``submit()`` while ``shutdown(wait=True)`` waits for the very
call whose callback it is: the experiment that the callbacks spec checks and that the
known-bug probe of futurist's deadlock runs (one experiment, two readers).

What a correct executor does (CPython 3.9-3.13 alike): ``shutdown`` marks the pool shut down
under its lock and waits for its workers *outside* that lock, so the callback's ``submit()``
finds the pool shut down and raises RuntimeError at once ("calls to submit() made after
shutdown will raise RuntimeError"); the stdlib's process pool calls the callback in its
manager thread and does the same. An executor may also accept the call and run it. What it
must not do is block the callback, and with it the worker that the shutdown waits for.

Every wait here is bounded: the callback makes its ``submit()`` in a helper thread and gives
up on it after the bound, so the worker finishes, the shutdown returns, and no thread stays
deadlocked after the experiment (the stuck ``submit()`` returns once the shutdown let go).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from pytest_futures_plugin import tasks
from pytest_futures_plugin.controls import Controls

from ._harness import (
    EXPIRES,
    Background,
    hung,
    join_threads_started_since,
    shut_down_within_bound,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pytest_futures_plugin.backends import Backend


def whereabouts() -> tuple[int, int]:
    """The process and thread a call runs in (module-level, so that it pickles)."""
    return os.getpid(), threading.get_ident()


@dataclasses.dataclass
class Outcome:
    """What happened. *inline*: the executor ran a call inside ``submit()``, in the caller's
    thread, so no call can be running while ``shutdown`` waits (nothing else was tried).
    *submit*: the callback's ``submit()`` -- its Future, or what it raised; *stuck*: it had
    neither returned nor raised after the bound (then *dump* says what every thread waited
    on); *ran*: the accepted call's result, or what it raised; *shutdown_error*: what the
    ``shutdown(wait=True)`` raised, or why it did not return."""

    inline: bool = False
    submit: Any = None
    stuck: bool = False
    dump: str = ""
    ran: Any = None
    shutdown_error: str = ""


def _until_shutdown_began(pool: Any, bound: float) -> None:
    """Return once ``shutdown`` has begun, as seen by ``submit()`` from a helper thread: it
    raises RuntimeError (the pool is shut down), or it does not return at once (a lock the
    shutdown holds keeps it: it returns once the shutdown let go). A call it accepted
    meanwhile queues behind the held one. Gives up after *bound* seconds."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        attempt = Background("submit() while shutdown begins", lambda: pool.submit(int))
        if not attempt.returned.wait(EXPIRES) or attempt.error is not None:
            return


def callback_submits_during_shutdown(backend: Backend, bound: float) -> Outcome:
    """Hold a call at a gate on a one-worker pool, give it a done callback that submits
    another call, start ``shutdown(wait=True)`` in a helper thread, wait until it began,
    release the call: what the callback's ``submit()`` did (every wait bounded by *bound*)."""
    outcome = Outcome()
    api = backend.api
    tried: list[Background] = []
    called = threading.Event()

    with Controls(timeout=bound) as controls:
        gate = controls.gate("the call shutdown(wait=True) waits for")
        before = set(threading.enumerate())
        pool = backend.make(max_workers=1)
        closer: Background | None = None
        try:
            here = (os.getpid(), threading.get_ident())
            if pool.submit(whereabouts).result(timeout=bound) == here:
                outcome.inline = True
                return outcome
            held: Future[Any] = pool.submit(tasks.block_on, gate)
            gate.wait_inside(1, timeout=bound)

            def resubmit(_: object) -> None:
                attempt = Background(
                    "a done callback's submit() during shutdown(wait=True)",
                    lambda: pool.submit(tasks.return_value, "submitted by a callback"),
                )
                tried.append(attempt)
                if not attempt.returned.wait(bound):
                    outcome.stuck = True
                    outcome.dump = hung(
                        f"a done callback's submit(), called while shutdown(wait=True) waits "
                        f"for the call whose callback it is, neither returned nor raised "
                        f"within {bound}s"
                    )
                called.set()

            held.add_done_callback(resubmit)
            closer = Background("shutdown(wait=True)", lambda: pool.shutdown(wait=True))
            _until_shutdown_began(pool, bound)
            gate.release()
            if not called.wait(2 * bound):
                outcome.shutdown_error = hung(f"the done callback not called within {2 * bound}s")
                return outcome
            if not closer.returned.wait(bound):
                outcome.shutdown_error = hung(f"shutdown(wait=True) still waiting after {bound}s")
            elif closer.error is not None:
                outcome.shutdown_error = f"shutdown(wait=True) raised {closer.error!r}"
            attempt = tried[0]
            if attempt.returned.wait(bound):
                outcome.submit = attempt.error if attempt.error is not None else attempt.value
            if not outcome.stuck and attempt.error is None and attempt.value is not None:
                try:
                    outcome.ran = attempt.value.result(timeout=bound)
                except api.TimeoutError:
                    outcome.ran = hung(f"the call the callback submitted not done after {bound}s")
                except BaseException as error:
                    outcome.ran = error
            return outcome
        finally:
            gate.release()
            if closer is not None:
                closer.returned.wait(bound)
            shut_down_within_bound(pool, "after the callback-submit experiment")
            join_threads_started_since(before)


__all__ = ["Outcome", "callback_submits_during_shutdown", "whereabouts"]
