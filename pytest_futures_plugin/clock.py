"""The scheduler's virtual clock, where it was first imported from: it lives in
``pytest_futures_plugin.scheduler.clock``."""

from __future__ import annotations

from .scheduler.clock import EPOCH, WALL_EPOCH, Clock, VirtualClock

__all__ = ["EPOCH", "WALL_EPOCH", "Clock", "VirtualClock"]
