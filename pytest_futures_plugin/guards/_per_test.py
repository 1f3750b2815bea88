"""The guards of one test, phase by phase, as an adapter drives them.

:class:`GuardedTest` starts a :class:`~._leaks.LeakCheck` when the test's setup begins and
checks it when its teardown ends, wraps each phase (setup, call, teardown) in a
:class:`~._hang.HangGuard` (and, on real threads, in a :class:`~._deadlocks.DeadlockWatcher`
that raises at the end of the phase in which it found a deadlock), and, once a phase was reported hung, fails the futures that
threads are still blocked on, so that deadlocked tasks return, their pools shut down at
teardown and the process can exit. Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from pytest_futures_plugin._thread_dump import release_waiters

from ._deadlocks import DeadlockWatcher
from ._hang import FuturesHangError, HangGuard
from ._leaks import LeakCheck

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["GuardedTest"]


class GuardedTest:
    """The leak check and the hang guards of the test *name*.

    *bound* is each phase's hang bound in seconds (0: no hang guard); *context* opens a hang
    report (e.g. the backend and the test id); *leak_grace* is how long the threads and
    processes the test started get to exit after it ended. The leak check starts here, and
    so does the deadlock watcher when *watch_deadlocks* is not None (the test runs on real
    threads: under the deterministic scheduler, the scheduler reports deadlocks itself); it
    opens the watcher's report (e.g. the backend).
    """

    def __init__(
        self,
        name: str,
        bound: float,
        leak_grace: float,
        context: str = "",
        *,
        watch_deadlocks: str | None = None,
    ) -> None:
        self.name = name
        self.bound = bound
        self.context = context
        self.hang_guards: list[HangGuard] = []
        self.leaks = LeakCheck(leak_grace)
        self.leaks.start()
        self.watcher = None
        if watch_deadlocks is not None:
            self.watcher = DeadlockWatcher(context=watch_deadlocks).start()

    @contextlib.contextmanager
    def phase(self) -> Iterator[None]:
        """Guard one phase: a new hang guard (none when the bound is 0), and the deadlock
        watcher, which raises ``FuturesDeadlockError`` as the phase ends if it found one."""
        with contextlib.ExitStack() as stack:
            if self.bound:
                guard = HangGuard(self.bound, self.context)
                self.hang_guards.append(guard)
                stack.enter_context(guard)
            if self.watcher is not None:
                stack.enter_context(self.watcher.watching())
            yield

    def stop_watching(self) -> None:
        """Stop the deadlock watcher (at the end of the test's teardown)."""
        if self.watcher is not None:
            self.watcher.stop()

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
