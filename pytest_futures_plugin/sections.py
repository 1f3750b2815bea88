"""Parallel sections, kept at this import path: the module is
:mod:`pytest_futures_plugin.linearizability._sections`, and importing this name gives that very
module (not a copy of its names), so that a scheduler told to control
``pytest_futures_plugin.sections`` controls the threads :func:`run_section` starts."""

from __future__ import annotations

import sys

from .linearizability import _sections
from .linearizability._sections import FutureErrors, SectionHungError, run_section

__all__ = ["FutureErrors", "SectionHungError", "run_section"]  # what type checkers see

sys.modules[__name__] = _sections
