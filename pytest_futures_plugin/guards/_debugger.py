"""Whether a debugger is attached: the hang guard stands down while a person steps through code.

A hang guard that fired while someone sits at a ``(Pdb)`` prompt would interrupt the very
session that looks for the hang. So, as pytest-timeout does, :class:`~._hang.HangGuard` asks
:func:`debugger_attached` before it fires, and waits as long as the answer is yes. Two ways to
know:

- *told*: an adapter calls :func:`debugger_entered` and :func:`debugger_left` around a session
  it starts (the pytest plugin does from ``pytest_enter_pdb``/``pytest_leave_pdb``, which pytest
  calls for ``breakpoint()``, ``pdb.set_trace()`` and ``--pdb``);
- *seen*: a debugger that nobody announced (``pdb.Pdb().set_trace()`` called directly, an IDE's
  pydevd or debugpy) holds the thread it stopped inside its own code, waiting for the person:
  one of the thread's frames belongs to a module of :data:`DEBUGGER_MODULES`.
  (pytest-timeout asks which module ``sys.gettrace()`` comes from; that answers for the calling
  thread only, here the watchdog's, and a trace function stays installed after ``continue``
  on the outermost frame, so the frames of the stopped thread are the better witness.)

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["DEBUGGER_MODULES", "debugger_attached", "debugger_entered", "debugger_left"]

DEBUGGER_MODULES = frozenset({"bdb", "pdb", "pydevd", "_pydevd_bundle", "debugpy"})
"""Top-level modules of debuggers (``bdb`` is pdb's base; ``pydevd`` is PyCharm's and, inside
``debugpy``, VS Code's): a thread running in one of them is stopped in a debugger."""

_lock = threading.Lock()
_sessions = 0  # sessions announced by debugger_entered() and not yet left


def debugger_entered() -> None:
    """A debugger session began in this process: hang guards stand down until it is left."""
    global _sessions
    with _lock:
        _sessions += 1


def debugger_left() -> None:
    """The session announced by :func:`debugger_entered` ended (extra calls are ignored)."""
    global _sessions
    with _lock:
        _sessions = max(0, _sessions - 1)


def debugger_attached(thread_id: int | None = None) -> bool:
    """Whether a debugger holds the thread *thread_id* (default: the calling thread): a
    session announced and not left, or a debugger's frame on that thread's stack."""
    if _sessions:
        return True
    frame: FrameType | None
    if thread_id is None or thread_id == threading.get_ident():
        frame = sys._getframe()
    else:
        frame = sys._current_frames().get(thread_id)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.partition(".")[0] in DEBUGGER_MODULES:
            return True
        frame = frame.f_back
    return False
