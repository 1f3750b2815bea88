"""Hang guard and leak checks: turn a hung or leaky test into a failure that explains itself.

The face of the guards: :mod:`._hang` holds :class:`HangGuard` (its docstring tells how it
interrupts a hung block and why it is race-free; it stands down while a debugger is attached,
:mod:`._debugger`), :mod:`._leaks` the :class:`LeakCheck` of threads, child processes and
unclosed executors, :mod:`._deadlocks` the :class:`DeadlockWatcher` that finds futures on real
threads that can never complete; :mod:`._per_test` drives them for one test, phase by phase. Standard library only: no pytest, no
hypothesis; plain unittest or Hypothesis code may use them as the pytest adapter does.
"""

from __future__ import annotations

from pytest_futures_plugin import _adopt

from . import _deadlocks, _debugger, _hang, _leaks, _per_test
from ._deadlocks import *  # noqa: F403
from ._debugger import *  # noqa: F403 (the face: every public name of its modules)
from ._hang import *  # noqa: F403
from ._leaks import *  # noqa: F403
from ._leaks import WATCHDOG_THREAD_NAME
from ._per_test import *  # noqa: F403

__all__: list[str] = ["WATCHDOG_THREAD_NAME"]
__all__ += _deadlocks.__all__
__all__ += _debugger.__all__
__all__ += _hang.__all__
__all__ += _leaks.__all__
__all__ += _per_test.__all__

_adopt(globals())
