"""executor_impl: a compact, fast, drop-in re-implementation of ``concurrent.futures``.

The public names, signatures, exception classes (the stdlib's own, by identity) and
``repr``s are those of ``concurrent.futures``; futures interoperate with the stdlib's
``wait``/``as_completed`` and with ``asyncio.wrap_future`` / ``loop.run_in_executor``.

Modules mirror CPython's cut: ``_future`` (Future and its state machine), ``_waiting``
(wait, as_completed), ``_executor`` (Executor, map), ``thread`` (ThreadPoolExecutor), and
``_sync``, the one module that touches threads and time.
"""

from __future__ import annotations

from ._executor import Executor
from ._future import (
    BrokenExecutor,
    CancelledError,
    Future,
    InvalidStateError,
    TimeoutError,
)
from ._waiting import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    as_completed,
    wait,
)
from .thread import ThreadPoolExecutor

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "BrokenExecutor",
    "CancelledError",
    "Executor",
    "Future",
    "InvalidStateError",
    "ThreadPoolExecutor",
    "TimeoutError",
    "as_completed",
    "wait",
]
