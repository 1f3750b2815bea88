"""What every spec module shares: Hypothesis profiles, bounded waits, and how a state machine
is run against one backend.

Profiles (``HYPOTHESIS_PROFILE=dev|ci|thorough``, default ``dev``) are our own settings objects,
passed to each state machine; they are not registered globally, so a project that runs our specs
keeps its own Hypothesis profiles of the same names untouched.

Nothing here blocks without a bound: a wait that a correct executor finishes in milliseconds is
given :data:`BOUND` seconds, and on expiry fails naming what it waited for, instead of hanging.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable

import hypothesis
from hypothesis import HealthCheck, Verbosity, settings
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pytest_futures_plugin.backends import Backend, FuturesAPI

BOUND = float(os.environ.get("PYTEST_FUTURES_SPEC_BOUND", "30"))
"""Seconds a wait that must succeed may take; only a broken executor ever waits this long.
``PYTEST_FUTURES_SPEC_BOUND`` lowers it where only broken executors run (the tests that show
each spec catches its broken executors), so that a lost future fails fast."""

EXPIRES = 0.02
"""Seconds of a timeout the spec expects to expire (the future is held by a gate)."""

_COMMON: dict[str, Any] = {
    # Executors are slow to start and stop next to Hypothesis' expectations of a pure function.
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
    # The example database would make a run depend on earlier runs; a failure is printed as
    # a program to replay instead.
    "database": None,
    "print_blob": True,
}

PROFILES: dict[str, settings] = {
    "dev": settings(max_examples=15, stateful_step_count=12, **_COMMON),
    "ci": settings(max_examples=40, stateful_step_count=20, **_COMMON),
    "thorough": settings(
        max_examples=400, stateful_step_count=40, verbosity=Verbosity.normal, **_COMMON
    ),
}


def profile() -> settings:
    """The settings of the profile ``HYPOTHESIS_PROFILE`` names (``dev`` by default).

    Raises ValueError naming the bad value and the valid ones.
    """
    name = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"HYPOTHESIS_PROFILE={name!r}: pytest-futures' specs know {', '.join(PROFILES)}"
        ) from None


def run_spec(
    machine: Callable[[], RuleBasedStateMachine],
    *,
    seed: int,
    scale: int = 1,
    **overrides: Any,
) -> None:
    """Run the state machine that *machine* makes under the current profile, with Hypothesis
    seeded from *seed* (the test's ``futures_seed``): a run is a function of the seed, and the
    plugin's replay command (``--futures-seed=N``) reproduces a failure.

    *scale* multiplies the profile's ``max_examples``, for machines that need no executor
    and so run hundreds of examples per second.
    """
    base = profile()
    overrides.setdefault("max_examples", base.max_examples * scale)
    chosen = settings(base, **overrides)
    test = get_state_machine_test(machine, settings=chosen)  # type: ignore[no-untyped-call,unused-ignore]
    hypothesis.seed(seed)(test)
    test()


def result_within(future: Future[Any], what: str, api: FuturesAPI) -> Any:
    """``future.result()``, failing with a message naming *what* and the future if the
    executor does not finish it within :data:`BOUND` seconds."""
    try:
        return future.result(timeout=BOUND)
    except api.TimeoutError:
        raise AssertionError(f"{what}: {future!r} not done after {BOUND}s") from None


def backend_module(backend: Backend) -> str:
    """The module that ``backend`` takes its API from, for messages."""
    return backend.api_module


__all__ = [
    "BOUND",
    "EXPIRES",
    "PROFILES",
    "backend_module",
    "profile",
    "result_within",
    "run_spec",
]
