"""Module-level tasks and exception classes the specs send to workers.

A process pool pickles a task's function, arguments, result and exception by reference, so
whatever a spec submits lives here (or in ``pytest_futures_plugin.tasks`` / ``faults``): a
worker started by fork, spawn or forkserver finds it by its module and name.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_futures_plugin import faults
from pytest_futures_plugin.controls import ControlTimeout

if TYPE_CHECKING:
    from pytest_futures_plugin.controls import Gate, Latch, Recorder

# ------------------------------------------------------------------------------------------
# Exceptions a task raises (area "exceptions")


class SpecError(Exception):
    """A plain Exception subclass, told apart by its args."""


class SpecBaseError(BaseException):
    """A BaseException that is not an Exception: a pool must carry it all the same."""


class ManyArgsError(Exception):
    """A constructor of several required arguments, all passed on to ``Exception``."""

    def __init__(self, code: int, where: str, retry: bool) -> None:
        super().__init__(code, where, retry)


class KeywordOnlyError(Exception):
    """A keyword-only constructor: ``__reduce__`` says how to rebuild it, since the default
    (``type(e)(*e.args)``) cannot."""

    def __init__(self, *, code: int) -> None:
        super().__init__(f"failed with code {code}")
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (_keyword_only_error, (self.code,))


def _keyword_only_error(code: int) -> KeywordOnlyError:
    return KeywordOnlyError(code=code)


class NoArgsError(Exception):
    """A constructor without arguments that still gives ``Exception`` a message."""

    def __init__(self) -> None:
        super().__init__("no arguments, a fixed message")

    def __reduce__(self) -> tuple[Any, ...]:
        return (NoArgsError, ())


class AnnotatedError(Exception):
    """An exception given an attribute after construction (``e.detail = ...``): the default
    pickling carries it in ``__dict__``."""

    detail: int


class LossyError(Exception):
    """A constructor whose arguments are not its ``args``: it pickles, but unpickling calls
    ``LossyError(message)`` and fails. Only for pools that run tasks in this process."""

    def __init__(self, left: int, right: int) -> None:
        super().__init__(f"{left} does not match {right}")


class FalsyError(Exception):
    """An exception that is false in a boolean context (``__bool__``): CPython gh-132063."""

    def __bool__(self) -> bool:
        return False


class EmptyError(Exception):
    """An exception that is false in a boolean context (``__len__`` is 0): gh-132063."""

    def __len__(self) -> int:
        return 0


# ------------------------------------------------------------------------------------------
# Tasks


def return_or_raise(outcome: Any) -> Any:
    """Raise *outcome* if it is an exception, else return it: one function for ``map``."""
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def raise_falsy(kind: str, message: str) -> NoReturn:
    """Raise ``FalsyError(message)`` (*kind* ``"bool"``) or ``EmptyError(message)`` (``"len"``)."""
    raise (FalsyError if kind == "bool" else EmptyError)(message)


# ------------------------------------------------------------------------------------------
# A worker that dies on demand, an initializer that fails on demand (area "broken-pools")


def hold(gate: Gate, crash: Gate, pids: Recorder, label: Any, test_pid: int) -> Any:
    """Record ``(label, pid)`` in *pids*, wait for *gate*; then, if *crash* was released
    meanwhile, end the worker process at once (``faults.crash_worker``), else return *label*.

    A spec holds several calls this way, each at its own gate, and crashes the one whose
    gate it opens: the others stay blocked, so none of them can finish before the pool breaks.
    """
    pids.record((label, os.getpid()))
    gate.wait()
    if crash.released:
        faults.crash_worker(test_pid)
    return label


def fail_once_released(gate: Gate) -> NoReturn:
    """Initializer: wait for *gate*, then raise ``faults.InitializerFailed``. Until the test
    releases the gate every worker is still initializing, so the calls it submits meanwhile
    are all pending when the initializer fails."""
    gate.wait()
    faults.failing_initializer(gate.name)


# ------------------------------------------------------------------------------------------
# Calls of Executor.map (area "map") and pools that must run several calls at once


@dataclasses.dataclass(frozen=True)
class MapCall:
    """One input of a spec's ``Executor.map``: what its call returns or raises, what it waits
    for first, and whom it tells. Its controls pickle, so it reaches worker processes."""

    value: int
    error: BaseException | None = None
    gate: Gate | None = None
    started: Recorder | None = None  # records ``("start", value)`` as the call begins
    finished: Latch | None = None  # counted down as the call ends, returning or raising


def map_call(call: MapCall, *extras: Any) -> tuple[Any, ...]:
    """The function a spec maps: record the start, wait for the gate, then raise the call's
    error or return ``(call.value, *extras)`` (the items of the other iterables)."""
    try:
        if call.started is not None:
            call.started.started(call.value)
        if call.gate is not None:
            call.gate.wait()
        if call.error is not None:
            raise call.error
        return (call.value, *extras)
    finally:
        if call.finished is not None:
            call.finished.count_down()


def rendezvous(latch: Latch, timeout: float | None = None) -> bool:
    """Count *latch* down, then wait (at most *timeout* seconds) until it reaches zero: True
    if as many calls as the latch counted were running at once, False if the wait expired."""
    latch.count_down()
    try:
        latch.wait(timeout)
    except ControlTimeout:
        return False
    return True


# ------------------------------------------------------------------------------------------
# Calls that announce their start and then hold their worker (area "cancellation")


def arrive_and_hold(label: Any, arrivals: Gate, gate: Gate, recorder: Recorder) -> Any:
    """Record ``("start", label)``, pass *arrivals* (an open gate: it only counts the calls
    that got this far), wait for *gate*, record ``("finish", label)``, return *label*.

    The test waits on ``arrivals.wait_inside(n)`` for the n-th call to start without knowing
    which one the pool picks, then reads which from *recorder*; that call holds its worker
    until the test opens its *gate*.
    """
    recorder.started(label)
    arrivals.wait()
    gate.wait()
    recorder.finished(label)
    return label
