"""Tasks, initializers and gates that the process-pool tests send to worker processes.

Workers started with ``spawn`` or ``forkserver`` find a callable by its module and name, so
everything a test submits lives here, at module level, in a module that imports nothing
but the standard library (a spawned worker imports it quickly, and never imports pytest).
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import queue
    import threading

T = TypeVar("T")

GATE_TIMEOUT = 60.0
"""Seconds a task waits at a closed gate before it gives up. The tests open every gate when
they end, passed or failed, so only a lost parent ever makes a worker wait this long."""


class Gate:
    """Holds tasks in worker processes until the parent opens it; tells the parent which
    worker entered.

    Made of a manager's Queue and Event, whose proxies pickle into any worker whatever its
    start method, as a task argument or through the initializer.
    """

    def __init__(self, entered: queue.Queue[int], opened: threading.Event) -> None:
        self.entered = entered
        self.opened = opened

    def pass_through(self, value: T) -> T:
        """Report this worker's pid, wait until the gate is open, then return *value*."""
        self.entered.put(os.getpid())
        if not self.opened.wait(GATE_TIMEOUT):
            raise TimeoutError(f"the gate stayed closed for {GATE_TIMEOUT}s")
        return value

    def open(self) -> None:
        """Let every task waiting at the gate, and every later one, through."""
        self.opened.set()


# ---------------------------------------------------------------------------------------------
# Tasks that return


def identity(value: T) -> T:
    """Return *value* (a copy, once it crossed the process boundary)."""
    return value


def capture(*args: object, **kwargs: object) -> tuple[tuple[object, ...], dict[str, object]]:
    """Return the arguments the task received."""
    return args, kwargs


def block(gate: Gate, value: T) -> T:
    """Wait at *gate*, then return *value*."""
    return gate.pass_through(value)


def big_result(size: int) -> bytes:
    """Return *size* bytes."""
    return b"r" * size


def write_line(text: str) -> str:
    """Print *text* on the worker's stdout (inherited from its parent) and return it."""
    print(text, flush=True)
    return text


INHERITED = "set by the worker's own import"
"""A test sets this in the parent: a forked worker inherits the new value, a spawned one
imports this module afresh."""


def origin() -> tuple[int, int, str]:
    """(pid, parent pid, INHERITED) of the worker: tells how it was started."""
    return os.getpid(), os.getppid(), INHERITED


# ---------------------------------------------------------------------------------------------
# Initializers and the state they leave in a worker

_initialized: Any = None
_installed_gate: Gate | None = None


def remember(value: object) -> None:
    """An initializer: keep *value* for ``remembered()``."""
    global _initialized
    _initialized = value


def remembered() -> tuple[Any, int]:
    """What the initializer kept in this worker, and the worker's pid."""
    return _initialized, os.getpid()


def remembered_event_is_set() -> bool:
    """Whether the Event that the ``remember`` initializer kept is set."""
    event: threading.Event = _initialized
    return event.is_set()


def wait_for_remembered_event() -> bool:
    """Wait until the Event that the ``remember`` initializer kept is set."""
    event: threading.Event = _initialized
    return event.wait(GATE_TIMEOUT)


def install_gate(gate: Gate) -> None:
    """An initializer: keep *gate* for ``block_at()``, so that tasks need not carry it."""
    global _installed_gate
    _installed_gate = gate


def block_at(index: int, blocked_index: int) -> int:
    """Return *index* at once, except at *blocked_index*: wait at the installed gate."""
    if index == blocked_index:
        assert _installed_gate is not None, "block_at() needs the install_gate initializer"
        return _installed_gate.pass_through(index)
    return index


def fail_to_initialize_at(gate: Gate) -> None:
    """An initializer that waits at *gate*, then raises."""
    gate.pass_through(None)
    raise ValueError("initializer failed on purpose")


# ---------------------------------------------------------------------------------------------
# Tasks that raise or crash


def raise_value_error(message: str) -> None:
    """Raise ValueError(message) from this very function (its name is in the traceback)."""
    raise ValueError(message)


def fail_at(index: int, failing_index: int) -> int:
    """Return *index*, except at *failing_index*: raise ValueError naming it."""
    if index == failing_index:
        raise ValueError(f"item {index} failed on purpose")
    return index


class KeyboardInterruptInTask(KeyboardInterrupt):
    """A KeyboardInterrupt a task raises (a module-level class, so that it pickles)."""


class SystemExitInTask(SystemExit):
    """A SystemExit a task raises (a module-level class, so that it pickles)."""


BASE_EXCEPTIONS: dict[str, type[BaseException]] = {
    "KeyboardInterrupt": KeyboardInterruptInTask,
    "SystemExit": SystemExitInTask,
}


def raise_base_exception(kind: str, argument: int) -> None:
    """Raise the BASE_EXCEPTIONS subclass named *kind*."""
    raise BASE_EXCEPTIONS[kind](argument)


def exit_abruptly(code: int = 7) -> None:
    """End the worker at once, as a crash would: no cleanup, no result sent."""
    sys.stdout.flush()
    os._exit(code)


def exit_abruptly_at(gate: Gate) -> None:
    """Wait at *gate*, then end the worker at once."""
    gate.pass_through(None)
    exit_abruptly()


def exit_abruptly_once_remembered_event_is_set() -> None:
    """Wait until the Event that the ``remember`` initializer kept is set, then end the
    worker at once."""
    wait_for_remembered_event()
    exit_abruptly()


def exit_abruptly_with(data: bytes) -> None:
    """End the worker at once; *data* (large) is what the parent had to send first."""
    os._exit(7)


# ---------------------------------------------------------------------------------------------
# Things that do not survive pickling


class Unpicklable:
    """An object that refuses to be pickled."""

    def __reduce__(self) -> Any:
        raise pickle.PicklingError("Unpicklable refuses to be pickled, on purpose")


class UnpicklableError(Exception):
    """An exception that refuses to be pickled."""

    def __reduce__(self) -> Any:
        raise pickle.PicklingError("UnpicklableError refuses to be pickled, on purpose")


def _refuse_to_unpickle() -> None:
    raise pickle.UnpicklingError("FailsToUnpickle refuses to be unpickled, on purpose")


class FailsToUnpickle:
    """An object that pickles, but whose unpickling raises (in the parent, for a result)."""

    def __reduce__(self) -> Any:
        return _refuse_to_unpickle, ()


def return_unpicklable() -> Unpicklable:
    """Return a result that cannot be sent back."""
    return Unpicklable()


def return_fails_to_unpickle() -> FailsToUnpickle:
    """Return a result that is sent back but cannot be rebuilt."""
    return FailsToUnpickle()


def raise_unpicklable() -> None:
    """Raise an exception that cannot be sent back."""
    raise UnpicklableError("raised on purpose")


def ignore_sigterm_and_block(gate: Gate, value: T) -> T:
    """Ignore SIGTERM in this worker from now on, then wait at *gate* and return *value*."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return gate.pass_through(value)
