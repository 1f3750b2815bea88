"""Tasks for tests to submit to any executor: return, raise, block on a gate, record order.

They are module-level functions, so every pool can run them: a worker started by spawn or
forkserver imports this module and finds them by name. Each takes its controls (see
``controls``) as ordinary arguments. Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, NoReturn, TypeVar

if TYPE_CHECKING:
    from .controls import Gate, Latch, Recorder

T = TypeVar("T")


def return_value(value: T) -> T:
    """Return *value*: the task that just succeeds."""
    return value


def raise_exception(exc: BaseException) -> NoReturn:
    """Raise *exc*: the task that just fails (the exception must pickle for a process pool;
    see ``faults.UnpicklableError`` for one that does not)."""
    raise exc


def block_on(gate: Gate, value: T | None = None, timeout: float | None = None) -> T | None:
    """Wait until *gate* is released, then return *value*.

    Raises ``controls.ControlTimeout`` after *timeout* seconds (default: the gate's own).
    """
    gate.wait(timeout)
    return value


def record_start_finish(
    recorder: Recorder, label: object, value: T | None = None, gate: Gate | None = None
) -> T | None:
    """Record ``("start", label)``, wait on *gate* if given, record ``("finish", label)``,
    return *value*. ``recorder.start_order``/``finish_order`` then show the order in which
    tasks began and ended. Raises what ``gate.wait()`` raises (and then records no finish).
    """
    recorder.started(label)
    if gate is not None:
        gate.wait()
    recorder.finished(label)
    return value


def count_down(latch: Latch, value: T | None = None) -> T | None:
    """Count *latch* down once, then return *value*."""
    latch.count_down()
    return value


def get_pid() -> int:
    """The id of the process running the task: a thread pool's is the test's own."""
    return os.getpid()


def current_thread_name() -> str:
    """The name of the thread running the task (e.g. to check ``thread_name_prefix``)."""
    return threading.current_thread().name
