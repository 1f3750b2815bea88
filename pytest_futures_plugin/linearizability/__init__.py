"""Linearizability of ``concurrent.futures.Future``: record calls from a few threads, check them.

The face of two parts: :mod:`._checker` is pure data and search (the sequential model of a
future, its table, the backtracking :func:`check` and the explanation of a failure);
:mod:`._sections` runs a parallel section on real or managed threads and records its history
(:func:`run_section`). Standard library only: no pytest, no hypothesis.
"""

from __future__ import annotations

from pytest_futures_plugin import _adopt

from . import _checker, _sections
from ._checker import *  # noqa: F403 (the face: every public name of its modules)
from ._sections import *  # noqa: F403

__all__: list[str] = []
__all__ += _checker.__all__
__all__ += _sections.__all__

_adopt(globals())
