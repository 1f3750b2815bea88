"""executor_impl: a compact, fast, drop-in re-implementation of ``concurrent.futures``.

The public names, signatures, exception classes (the stdlib's own, by identity) and
``repr``s are those of ``concurrent.futures``; futures interoperate with the stdlib's
``wait``/``as_completed`` and with ``asyncio.wrap_future`` / ``loop.run_in_executor``.

Modules mirror CPython's cut: ``_future`` (Future and its state machine), ``_waiting``
(wait, as_completed), ``_executor`` (Executor, map), ``thread`` (ThreadPoolExecutor),
``process`` (ProcessPoolExecutor and its testing hooks; in the parent, ``_process_manager``
holds the pool state and its manager thread, ``_process_io`` reads and decodes the wire,
``_process_direct`` lets a caller read its own answer; ``_process_worker`` is the worker side
and the frame format), and
``_sync``, the one module that touches threads and time.

Names are imported on first use (as ``concurrent.futures`` does), so that a spawned worker
process, which imports ``executor_impl._process_worker``, loads nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from .process import ProcessPoolExecutor
    from .thread import ThreadPoolExecutor

_HOME = {
    "ALL_COMPLETED": "_waiting",
    "FIRST_COMPLETED": "_waiting",
    "FIRST_EXCEPTION": "_waiting",
    "BrokenExecutor": "_future",
    "CancelledError": "_future",
    "Executor": "_executor",
    "Future": "_future",
    "InvalidStateError": "_future",
    "ProcessPoolExecutor": "process",
    "ThreadPoolExecutor": "thread",
    "TimeoutError": "_future",
    "as_completed": "_waiting",
    "wait": "_waiting",
}

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "BrokenExecutor",
    "CancelledError",
    "Executor",
    "Future",
    "InvalidStateError",
    "ProcessPoolExecutor",
    "ThreadPoolExecutor",
    "TimeoutError",
    "as_completed",
    "wait",
]
assert sorted(__all__) == sorted(_HOME)

_NOT_PROVIDED = {
    "InterpreterPoolExecutor": (
        "Python 3.14's pool of interpreters is not re-implemented here (no supported "
        "interpreter offers the public concurrent.interpreters it stands on); see "
        "'Deliberate differences' in the README"
    ),
}
"""Names of a newer ``concurrent.futures`` that executor_impl deliberately lacks, and why."""


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        reason = _NOT_PROVIDED.get(name)
        suffix = f": {reason}" if reason else ""
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}{suffix}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
