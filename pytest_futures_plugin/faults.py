"""Faults to inject through an executor's public API: a dying worker, a failing initializer,
values that cannot cross a process boundary.

Each is a module-level function or class, so worker processes started by any method find it.
Standard library only: no pytest, no hypothesis.

=========================  ==============================================================
fault                      what a process pool should do
=========================  ==============================================================
``crash_worker``           the worker exits at once: ``BrokenProcessPool`` for every
                           pending future, later ``submit`` calls raise it too
``kill_worker``            the same, from the test: SIGKILL a worker the pool has started
``failing_initializer``    every worker's initializer raises ``InitializerFailed``: the
                           pool breaks (``BrokenProcessPool`` / ``BrokenThreadPool``)
``Unpicklable`` argument   only that call's future fails (``pickle.PicklingError``)
``return_unpicklable``     only that call's future fails; the worker survives
``UnpicklableError``       a task raising it: only that call's future fails
=========================  ==============================================================
"""

from __future__ import annotations

import os
import pickle
import signal
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_futures_plugin import LONG_WAIT

from .tasks import get_pid

if TYPE_CHECKING:
    from concurrent.futures import Executor

CRASH_EXIT_CODE = 70
"""The exit status of a worker ended by ``crash_worker`` (distinct from 0, 1 and signals)."""


class FaultRefused(RuntimeError):
    """A fault would hit the test process itself (a thread backend): it was not injected."""


class InitializerFailed(Exception):
    """Raised by ``failing_initializer``: a distinctive error to find in a pool's logs."""


def crash_worker(test_pid: int, exit_code: int = CRASH_EXIT_CODE) -> NoReturn:
    """Task: end the worker process running it at once with ``os._exit(exit_code)``, no
    cleanup, no reply, as a segfault or the OOM killer would.

    Pass the test's pid, ``pool.submit(crash_worker, os.getpid())``: raises ``FaultRefused``
    instead if the task runs in that process (a thread pool), which must not die.
    """
    if os.getpid() == test_pid:
        raise FaultRefused(
            f"crash_worker() runs in the test process (pid {test_pid}): this executor runs "
            "tasks in threads, so there is no worker process to crash"
        )
    os._exit(exit_code)


def kill_worker(executor: Executor, timeout: float = LONG_WAIT) -> int:
    """Called by the test: SIGKILL one worker process of *executor*; return its pid.

    Runs ``get_pid`` in the pool (waiting at most *timeout* seconds) to learn a worker's
    pid, so the worker is idle when it dies. Raises ``FaultRefused`` if the task ran in the
    test process (a thread backend), and what ``submit``/``result`` raise (e.g. on a broken
    pool). The pool notices the death on its own schedule: a later call, or the next
    ``submit``, fails with ``BrokenProcessPool``.
    """
    pid = executor.submit(get_pid).result(timeout)
    if pid == os.getpid():
        raise FaultRefused(
            f"kill_worker(): {executor!r} runs tasks in the test process; "
            "there is no worker process to kill"
        )
    os.kill(pid, signal.SIGKILL)
    return pid


def failing_initializer(*args: Any) -> NoReturn:
    """Initializer for ``initializer=``: raise ``InitializerFailed`` naming *args*, which
    breaks a stdlib-like pool before it runs a task."""
    raise InitializerFailed(f"failing_initializer{args!r} failed, as the test asked")


class Unpicklable:
    """A value that refuses to be pickled (``pickle.PicklingError``): as a task's argument or
    result it cannot cross a process boundary. *note* says which one it is in messages."""

    def __init__(self, note: str = "") -> None:
        self.note = note

    def __repr__(self) -> str:
        return f"Unpicklable({self.note!r})"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise pickle.PicklingError(f"{self!r} cannot be pickled, as the test intends")


def return_unpicklable(note: str = "result") -> Unpicklable:
    """Task: return an ``Unpicklable`` (the result cannot travel back from a worker)."""
    return Unpicklable(note)


class UnpicklableError(Exception):
    """An exception that cannot be pickled (``pickle.PicklingError``): raised in a worker,
    it cannot travel back as itself, so the pool must report the pickling failure."""

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise pickle.PicklingError(f"{self!r} cannot be pickled, as the test intends")


def raise_unpicklable_error(message: str = "unpicklable") -> NoReturn:
    """Task: raise ``UnpicklableError(message)``."""
    raise UnpicklableError(message)
