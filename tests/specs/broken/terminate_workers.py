"""Broken pools for the terminate-workers spec (specs/test_terminate_workers.py).

Each is executor_impl's ProcessPoolExecutor with one bug in ``terminate_workers()`` and
``kill_workers()``. Both still let ``shutdown()`` end the workers, so the spec fails on a
bounded wait or a check, never a hang.
"""

from __future__ import annotations

import executor_impl
from executor_impl._process_manager import PoolState

from . import Broken


class EndsOnlyTheQueue(executor_impl.ProcessPoolExecutor):
    """The methods cancel the queued calls and shut the pool down, but leave the workers
    running: the calls they run go on (a held one waits at its gate)."""

    def terminate_workers(self) -> None:
        self.shutdown(wait=False, cancel_futures=True)

    def kill_workers(self) -> None:
        self.shutdown(wait=False, cancel_futures=True)


class AcceptsCallsAfterwards(executor_impl.ProcessPoolExecutor):
    """The methods end the workers, then the pool starts afresh: later submits run."""

    def _stop_workers(self, kill: bool) -> None:
        super()._stop_workers(kill)
        old = self._state
        self._state = PoolState(old.max_workers, old.ctx, *old.worker_args[:2], old.worker_args[2])


CASES = [
    Broken(f"{__name__}:{pool.__name__}", "test_terminate_workers.py", bug)
    for pool, bug in [
        (EndsOnlyTheQueue, "terminate_workers() leaves the running calls running"),
        (AcceptsCallsAfterwards, "the pool accepts and runs calls after terminate_workers()"),
    ]
]
