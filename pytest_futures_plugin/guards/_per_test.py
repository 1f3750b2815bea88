"""The guards of one test, phase by phase, as an adapter drives them.

:class:`GuardedTest` starts a :class:`~._leaks.LeakCheck` when the test's setup begins and
checks it when its teardown ends, wraps each phase (setup, call, teardown) in a
:class:`~._hang.HangGuard`, and, once a phase was reported hung, fails the futures that
threads are still blocked on, so that deadlocked tasks return, their pools shut down at
teardown and the process can exit. Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from pytest_futures_plugin._thread_dump import release_waiters

from ._hang import FuturesHangError, HangGuard
from ._leaks import LeakCheck

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

__all__ = ["GuardedTest"]


class GuardedTest:
    """The leak check and the hang guards of the test *name*.

    *bound* is each phase's hang bound in seconds (0: no hang guard); *context* opens a hang
    report (e.g. the backend and the test id); *leak_grace* is how long the threads and
    processes the test started get to exit after it ended. The leak check starts here.
    """

    def __init__(self, name: str, bound: float, leak_grace: float, context: str = "") -> None:
        self.name = name
        self.bound = bound
        self.context = context
        self.hang_guards: list[HangGuard] = []
        self.leaks = LeakCheck(leak_grace)
        self.leaks.start()

    def phase(self) -> AbstractContextManager[object]:
        """The hang guard of one phase (a new one each time), or nothing when the bound is 0."""
        if not self.bound:
            return contextlib.nullcontext()
        guard = HangGuard(self.bound, self.context)
        self.hang_guards.append(guard)
        return guard

    def release_if_hung(self) -> None:
        """After a reported hang, fail the futures that threads are still blocked on."""
        if any(guard.reports for guard in self.hang_guards):
            release_waiters(FuturesHangError(f"released by pytest-futures: {self.name} hung"))

    def check_leaks(self) -> None:
        """Raise ``AssertionError`` naming what the test left running, once the grace is over."""
        problems = self.leaks.check()
        if problems:
            raise AssertionError(
                "pytest-futures leak check: the test left these running:\n  "
                + "\n  ".join(problems)
            )
