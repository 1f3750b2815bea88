"""Runs under the deterministic scheduler set up from names, and read back after a failure.

What an adapter (the pytest plugin, or a unittest base class) needs around
:class:`~pytest_futures_plugin.scheduler.Scheduler`: the policy a name chooses
(:func:`policy_named`), the seed of one test (:func:`derive_seed`), the modules a test's tasks
come from (:func:`task_modules`), the description of a failed run's schedule
(:func:`describe_schedule`), and a test body run under a systematic search
(:func:`search_options`, :func:`search_test`). The scheduler module is
imported only when a policy is made, so importing this module costs nothing.
Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import types

    from .scheduler import Policy, Scheduler

__all__ = [
    "POLICY_NAMES",
    "RUNTIME_MODULES",
    "SEARCH_OPTIONS",
    "TASK_HELPERS",
    "derive_seed",
    "describe_schedule",
    "policy_named",
    "preemption_bound",
    "search_options",
    "search_test",
    "task_modules",
]

POLICY_NAMES = ("random", "pct", "fifo", "systematic[:K]")
"""The policies a name chooses: seeded random, PCT (seeded), FIFO, and a systematic search
of the test body up to K preemptions (2 by default; see :func:`preemption_bound`)."""
SEARCH_OPTIONS = ("max_schedules", "max_seconds", "fine")
"""The marker's options for a systematic search (``scheduler.search.explore``'s)."""

TASK_HELPERS = ("pytest_futures_plugin.tasks", "pytest_futures_plugin.faults")
"""Our modules of tasks, controlled in every run so that their waits are scheduling points."""

RUNTIME_MODULES = (
    "concurrent.futures._base",
    "concurrent.futures.thread",
    "executor_impl",
    "executor_impl._executor",
    "executor_impl.thread",
    "executor_impl._sync",
)
"""The thread pools' modules, the stdlib's and executor_impl's, controlled in every run: a
``ThreadPoolExecutor``, ``wait()``, ``as_completed()`` or ``Future.result(timeout=)`` used on a
managed thread is controlled wherever the code that calls it lives, with no module list."""


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

    if preemption_bound(spec) is not None:
        return scheduler.FIFO()  # until the search, run by the adapter, takes over
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


def preemption_bound(spec: object) -> int | None:
    """K of a ``systematic[:K]`` policy name (2 when omitted); None for any other policy.

    Raises ``ValueError`` naming *spec* when K is not a number of preemptions.
    """
    if not isinstance(spec, str) or spec.partition(":")[0] != "systematic":
        return None
    bound = spec.partition(":")[2] or "2"
    if not bound.isdigit():
        raise ValueError(
            f"policy {spec!r}: expected 'systematic' or 'systematic:K', K the number of "
            "preemptions (0, 1, 2, ...)"
        )
    return int(bound)


def search_options(spec: object, options: dict[str, Any], module: str) -> dict[str, Any] | None:
    """The systematic search's options for a ``systematic[:K]`` *spec*, popped from the
    marker's *options* (``fine=True`` names the test's *module*); None for another policy.

    Raises ``ValueError`` for search options with another policy.
    """
    bound = preemption_bound(spec)
    search = {name: options.pop(name) for name in SEARCH_OPTIONS if name in options}
    if bound is None:
        if search:
            raise ValueError(f"{', '.join(search)}: only with policy='systematic[:K]'")
        return None
    if search.get("fine") is True:
        search["fine"] = [module]
    return {"preemption_bound": bound, **search}


def search_test(
    sched: Scheduler, function: Callable[..., Any], funcargs: dict[str, Any], options: Any
) -> str:
    """Run a test *function* (its arguments among *funcargs*) under every schedule of a
    systematic search in *sched*; return the search's report (ExplorationFailed if a
    schedule fails)."""
    names = inspect.signature(function).parameters
    arguments = {name: funcargs[name] for name in names if name in funcargs}
    return str(sched.explore(lambda: function(**arguments), **options).report())


def task_modules(module: types.ModuleType) -> list[str]:
    """The modules a test's tasks come from: the test module, the modules of its package
    imported so far (a ``_tasks.py``, the specs' ``_harness``), :data:`TASK_HELPERS` and
    :data:`RUNTIME_MODULES`."""
    name = module.__name__
    package = name.rpartition(".")[0]
    siblings = (
        sorted(m for m in list(sys.modules) if m.startswith(f"{package}.") and m != name)
        if package
        else []
    )
    return [name, *siblings, *TASK_HELPERS, *RUNTIME_MODULES]


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
