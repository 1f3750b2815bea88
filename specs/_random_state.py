"""Hypothesis' check for strategies that use the ``random`` module, which cannot tell whose
call moved the random state while a spec runs on real threads.

Hypothesis compares the global ``random`` state before and after each ``data.draw()`` and, when
it changed, warns "Do not use the `random` module inside strategies" (a
``HypothesisDeprecationWarning``, since February 2024). The state is process-wide: a thread of the
executor under test that calls ``random.choice`` at that moment (dask's event loop does, in
``distributed.utils_comm.gather_from_workers``, on every result it fetches) makes the draw look
guilty, and the warning lands in the backend's cell. None of the specs' strategies uses
``random``; under the deterministic scheduler only one thread runs at a time, so there the
check keeps its meaning and is left alone.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import TYPE_CHECKING

from hypothesis.errors import HypothesisDeprecationWarning

if TYPE_CHECKING:
    from collections.abc import Iterator

RANDOM_IN_STRATEGIES = "Do not use the `random` module inside strategies"
"""The start of the warning's message."""


@contextlib.contextmanager
def other_threads_may_use_random() -> Iterator[None]:
    """While inside, the warning above is ignored: other threads of this process (an
    executor's) may move the global random state during a draw."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=re.escape(RANDOM_IN_STRATEGIES),
            category=HypothesisDeprecationWarning,
        )
        yield
