"""Plain subclasses of the stdlib's pools that change nothing: the specs must give each the
stdlib's own matrix (tests/specs/test_stdlib_subclasses.py)."""

from __future__ import annotations

import concurrent.futures
from typing import Any


class ThreadPool(concurrent.futures.ThreadPoolExecutor):
    pass


class ProcessPool(concurrent.futures.ProcessPoolExecutor):
    pass


class ThreadPoolPassingOn(concurrent.futures.ThreadPoolExecutor):
    """Takes ``*args, **kwargs`` and passes them on: its signature accepts any keyword."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)


class ProcessPoolPassingOn(concurrent.futures.ProcessPoolExecutor):
    """Takes ``*args, **kwargs`` and passes them on: its signature accepts any keyword."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
