"""Virtual time for the deterministic scheduler: no wall time passes.

Under a :class:`~pytest_futures_plugin.scheduler.Scheduler`, ``time.sleep``,
``time.monotonic`` and every timeout read this clock instead of the machine's. It moves only
when told to (``advance``) or, with *autojump* on (the default), when every managed thread is
blocked and some of them wait with a deadline: it then jumps to the earliest deadline, as trio's
``MockClock(autojump_threshold=0)`` and Go's ``testing/synctest`` bubble do. A test that waits
60 virtual seconds takes milliseconds.

The scheduler's core needs of a clock only what :class:`Clock` lists (as trio's runner sees
its clock only through the small ``trio.abc.Clock`` interface): read it (``now``), move it
(``advance``, ``jump_to`` a deadline), and reset it when a run begins a schedule afresh.
:class:`VirtualClock` is that clock.

Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import math
from typing import Protocol

__all__ = ["EPOCH", "WALL_EPOCH", "Clock", "VirtualClock"]

EPOCH = 1_000_000.0
"""What ``monotonic()`` reads at the start of a run: far from 0, as a real monotonic clock is,
so code that treats 0 as "unset" behaves as it does for real."""

WALL_EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z
"""What ``time.time()`` reads at the start of a run, in the modules a run controls."""


class Clock(Protocol):
    """What the scheduler's core reads and moves of its clock."""

    autojump: bool
    """Whether the scheduler jumps to the next deadline once every thread is blocked."""
    jumps: int
    """How many times the scheduler jumped the clock."""

    def now(self) -> float:
        """Seconds, as ``time.monotonic()`` reads them under the scheduler."""

    def elapsed(self) -> float:
        """Seconds since the start of the run."""

    def wall(self) -> float:
        """Seconds since the epoch, as ``time.time()`` reads them in controlled modules."""

    def advance(self, seconds: float) -> None:
        """Move the clock *seconds* forward."""

    def jump_to(self, deadline: float) -> None:
        """Move the clock to *deadline* (a ``now()`` value), if it is later, as a jump."""

    def reset(self) -> None:
        """Back to the start of a run, no jumps made."""


class VirtualClock:
    """A clock that only moves when told to (``advance``) or when the scheduler jumps it."""

    def __init__(self, *, autojump: bool = True) -> None:
        self._now = EPOCH
        self.autojump = autojump
        """Whether the scheduler jumps to the next deadline once every thread is blocked.
        Off, a run in which every thread waits for a deadline is a deadlock."""
        self.jumps = 0
        """How many times the scheduler jumped the clock."""

    def now(self) -> float:
        """Seconds, as ``time.monotonic()`` reads them under the scheduler."""
        return self._now

    def elapsed(self) -> float:
        """Virtual seconds since the start of the run."""
        return self._now - EPOCH

    def wall(self) -> float:
        """Seconds since the epoch, as ``time.time()`` reads them in controlled modules."""
        return WALL_EPOCH + self.elapsed()

    def advance(self, seconds: float) -> None:
        """Move the clock *seconds* forward (the threads whose deadlines pass wake at the next
        scheduling point)."""
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise TypeError(f"seconds must be a number, not {type(seconds).__name__}")
        if math.isnan(seconds) or seconds < 0:
            raise ValueError(f"seconds must be >= 0, not {seconds!r}")
        self._now += seconds

    def jump_to(self, deadline: float) -> None:
        """Move the clock to *deadline* (a ``now()`` value) if it is later, and count the jump:
        what the scheduler does when every thread is blocked and the earliest waits until
        *deadline*. An earlier *deadline* leaves the clock where it is (time does not go back)."""
        if deadline > self._now:
            self._now = deadline
            self.jumps += 1

    def reset(self) -> None:
        """Back to the start of a run, no jumps made: ``Scheduler.restart()`` calls it once no
        other thread is left that could hold a deadline."""
        self._now = EPOCH
        self.jumps = 0

    def __repr__(self) -> str:
        return f"<VirtualClock elapsed={self.elapsed():.6f}s autojump={self.autojump}>"
