"""Racy Futures for the parallel-section spec (``specs/test_linearizability.py``), defined in
``tests/scheduler/broken_futures.py``.

Each bug needs one unlucky preemption between two holds of a lock, so real threads seldom show
it; the spec runs every section under the deterministic scheduler as well, and catches them
there.
"""

from __future__ import annotations

from . import Broken

_M = "tests.scheduler.broken_futures"

CASES = [
    Broken(
        f"{_M}:CancelInTwoSteps.ThreadPoolExecutor",
        "test_linearizability.py",
        "cancel() checks the state and sets CANCELLED under two holds of the lock",
        race_only=True,
    ),
    Broken(
        f"{_M}:UnlockedCallback.ThreadPoolExecutor",
        "test_linearizability.py",
        "add_done_callback() loses a callback added while the future completes",
        race_only=True,
    ),
    Broken(
        f"{_M}:SetResultInTwoSteps.ThreadPoolExecutor",
        "test_linearizability.py",
        "set_result() checks the state and finishes under two holds of the lock",
        race_only=True,
    ),
]
