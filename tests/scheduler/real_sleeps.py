"""A pytest plugin for the throwaway projects whose tests must run in virtual time: it fails
every test during which a real ``time.sleep`` of a positive duration was called, naming each
call's duration and source line.

The black-box tests of this folder copy it into their project (:data:`SOURCE`) and load it
with ``-p real_sleeps``: pytest imports such a plugin before the plugins of installed
distributions, so the ``time.sleep`` it installs here is the one every later reference takes,
pytest-futures' own "real" sleep included. Under virtual time no call reaches it on a
managed thread; with virtual time off, every sleep of the project's code does. This is what a
wall-clock limit on the project's tests used to check, without the real-time threshold.

A recorded sleep is not slept: the test has failed already, and sleeping would only make the
failing run last as long as the virtual time it covers (minutes). ``time.sleep(0)``, a yield,
goes through.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

PLUGIN_NAME = "real_sleeps"
"""The module's name in the project, where it is the plugin ``-p real_sleeps`` (imported here
for :data:`SOURCE` alone, it installs nothing)."""

_real_sleep = time.sleep
_lock = threading.Lock()
MADE: list[str] = []
"""The real sleeps of the running test: ``time.sleep(60) at fetcher/__init__.py:12``."""


def recording_sleep(seconds: float) -> None:
    """``time.sleep`` while the project's tests run: records a positive *seconds* (and does
    not sleep), sleeps 0 for real."""
    if seconds > 0:
        # The caller's line, past pytest-futures' own frames (its scheduler's real sleep).
        stack = traceback.extract_stack()[:-1]
        outside = [f for f in stack if "pytest_futures_plugin" not in Path(f.filename).parts]
        caller = (outside or stack)[-1]
        with _lock:
            MADE.append(f"time.sleep({seconds:g}) at {caller.filename}:{caller.lineno}")
        return
    _real_sleep(seconds)


def _install() -> None:
    if "pytest_futures_plugin" in sys.modules:
        raise RuntimeError(
            "real_sleeps: loaded after pytest_futures_plugin, which may hold the real "
            "time.sleep already: load it with -p real_sleeps"
        )
    time.sleep = recording_sleep


if __name__ == PLUGIN_NAME:
    _install()


@pytest.fixture(autouse=True)
def no_real_sleep() -> Iterator[None]:
    """Fails the test (at its teardown, after every other fixture's) if a real sleep was
    called during its setup, call or teardown."""
    with _lock:
        MADE.clear()
    yield
    with _lock:
        made = collections.Counter(MADE)
    summary = "; ".join(f"{call} ({n}x)" for call, n in made.items())
    assert not made, f"real sleeps, where virtual time was expected: {summary}"


SOURCE = Path(__file__).read_text(encoding="utf-8")
"""This module's text, for ``pytester.makepyfile(real_sleeps=SOURCE)``."""
