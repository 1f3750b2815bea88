"""Hang guard and leak checks: turn a hung or leaky test into a failure that explains itself.

The face of the guards: :mod:`._hang` holds :class:`HangGuard` (its docstring tells how it
interrupts a hung block and why it is race-free; it stands down while a debugger is attached,
:mod:`._debugger`), :mod:`._leaks` the :class:`LeakCheck` of threads, child processes and
unclosed executors. Standard library only: no pytest, no
hypothesis; plain unittest or Hypothesis code may use them as the pytest adapter does.
"""

from __future__ import annotations

from pytest_futures_plugin import _adopt

from ._debugger import debugger_attached, debugger_entered, debugger_left
from ._hang import HANG_SIGNAL, FuturesHangError, HangGuard, describe_threads, release_waiters
from ._leaks import (
    SERVICE_PROCESS_MARKERS,
    SERVICE_THREAD_PREFIXES,
    WATCHDOG_THREAD_NAME,
    LeakCheck,
    is_shut_down,
    unclosed_executors,
)

__all__ = [
    "HANG_SIGNAL",
    "SERVICE_PROCESS_MARKERS",
    "SERVICE_THREAD_PREFIXES",
    "WATCHDOG_THREAD_NAME",
    "FuturesHangError",
    "HangGuard",
    "LeakCheck",
    "debugger_attached",
    "debugger_entered",
    "debugger_left",
    "describe_threads",
    "is_shut_down",
    "release_waiters",
    "unclosed_executors",
]

_adopt(globals())
