"""Linearizability of ``concurrent.futures.Future``: record calls from a few threads, check them.

The face of two parts: :mod:`._checker` is pure data and search (the sequential model of a
future, its table, the backtracking :func:`check` and the explanation of a failure);
:mod:`._sections` runs a parallel section on real or managed threads and records its history
(:func:`run_section`). Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

from pytest_futures_plugin import _adopt

from ._checker import (
    CALLS,
    Call,
    FutureState,
    NotLinearizableError,
    Operation,
    Outcome,
    PlantedError,
    check,
    explain,
    format_history,
    linearize,
    step,
)
from ._sections import FutureErrors, SectionHungError, run_section

__all__ = [
    "CALLS",
    "Call",
    "FutureErrors",
    "FutureState",
    "NotLinearizableError",
    "Operation",
    "Outcome",
    "PlantedError",
    "SectionHungError",
    "check",
    "explain",
    "format_history",
    "linearize",
    "run_section",
    "step",
]

_adopt(globals())
