"""A retry with a timeout, written as a project writes one: the code under test that the
black-box tests of this folder copy, as ``retrying.py``, into their throwaway projects
(:data:`SOURCE`), so that it runs there as the project's own module, under the virtual clock.

It retries *call* on ``ConnectionError`` or a future's ``TimeoutError``, sleeping 1, 2, 4, ...
seconds between attempts, and gives up with ``TimeoutError("gave up after Ns")`` once the next
sleep would pass the deadline.
"""

from __future__ import annotations

import time
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def retry(call: Callable[[], T], *, timeout: float, first_delay: float = 1.0) -> T:
    """``call()``, retried with doubling delays until it returns or *timeout* seconds pass.

    Raises TimeoutError naming *timeout* when the next attempt would start after the deadline.
    """
    deadline = time.monotonic() + timeout
    delay = first_delay
    while True:
        try:
            return call()
        except (ConnectionError, FuturesTimeout):
            if time.monotonic() + delay > deadline:
                raise TimeoutError(f"gave up after {timeout}s") from None
            time.sleep(delay)
            delay *= 2


SOURCE = Path(__file__).read_text(encoding="utf-8")
"""This module's text, for ``pytester.makepyfile(retrying=SOURCE)``."""
