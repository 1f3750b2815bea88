"""Runs under the deterministic scheduler set up from names, and read back after a failure.

What an adapter (the pytest plugin, or a unittest base class) needs around
:class:`~pytest_futures_plugin.scheduler.Scheduler`: the policy a name chooses
(:func:`policy_named`), the seed of one test (:func:`derive_seed`), the modules a test's tasks
come from (:func:`task_modules`), and the description of a failed run's schedule
(:func:`describe_schedule`). The scheduler module is
imported only when a policy is made, so importing this module costs nothing.
Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import hashlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import types

    from .scheduler import Policy, Scheduler

__all__ = [
    "POLICY_NAMES",
    "TASK_HELPERS",
    "derive_seed",
    "describe_schedule",
    "policy_named",
    "task_modules",
]

POLICY_NAMES = ("random", "pct", "fifo")
"""The policies a name chooses: seeded random, PCT (seeded), FIFO."""

TASK_HELPERS = ("pytest_futures_plugin.tasks", "pytest_futures_plugin.faults")
"""Our modules of tasks, controlled in every run so that their waits are scheduling points."""


def derive_seed(base_seed: int, nodeid: str) -> int:
    """The seed of one test: a stable function of the run's seed and the test id, so that
    it does not depend on which tests ran before or on which xdist worker."""
    digest = hashlib.sha256(f"{base_seed}:{nodeid}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def policy_named(spec: object, seed: int) -> Policy:
    """The policy *spec* names (one of :data:`POLICY_NAMES`, seeded with *seed*), or *spec*
    itself when it is a :class:`~pytest_futures_plugin.scheduler.Policy`.

    Raises ``ValueError`` naming *spec* and the valid names otherwise.
    """
    from . import scheduler

    if isinstance(spec, scheduler.Policy):
        return spec
    if spec == "random":
        return scheduler.RandomPolicy(seed)
    if spec == "pct":
        return scheduler.PCT(seed)
    if spec == "fifo":
        return scheduler.FIFO()
    raise ValueError(
        f"expected one of {', '.join(POLICY_NAMES)} or a pytest_futures_plugin.scheduler.Policy,"
        f" not {spec!r}"
    )


def task_modules(module: types.ModuleType) -> list[str]:
    """The modules a test's tasks come from: the test module, the modules of its package
    imported so far (a ``_tasks.py``, the specs' ``_harness``), and :data:`TASK_HELPERS`."""
    name = module.__name__
    package = name.rpartition(".")[0]
    siblings = (
        sorted(m for m in list(sys.modules) if m.startswith(f"{package}.") and m != name)
        if package
        else []
    )
    return [name, *siblings, *TASK_HELPERS]


def describe_schedule(sched: Scheduler, decisions: int = 200, points: int = 25) -> str:
    """What a failed run did: its statistics, its threads, its first *decisions* decisions
    (which :class:`~pytest_futures_plugin.scheduler.Scripted` replays) and its last *points*
    scheduling points."""
    stats = ", ".join(f"{key} {value}" for key, value in sched.stats().items())
    names = ", ".join(f"{t.tid_name}={t.name!r}" for t in sched.threads)
    script = " ".join(sched.schedule[:decisions])
    if len(sched.schedule) > decisions:
        script += " ..."
    return (
        f"{stats}\nthreads: {names}\n"
        f"decisions (Scripted(...) replays them): {script}\n"
        f"the last scheduling points:\n{sched.format_trace(points)}"
    )
