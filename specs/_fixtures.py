"""The fixtures the spec modules share (imported by name into each module that uses one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from . import _known_bugs

if TYPE_CHECKING:
    from pytest_futures_plugin.backends import Backend


@pytest.fixture
def futures_known_bugs(request: pytest.FixtureRequest, futures_backend: Backend) -> None:
    """Make the test a strict xfail, naming the issue and its link, where the backend under
    test shows one of the known bugs the test names (``@expects_known_bug(...)``); else the
    test runs strictly. Each bug's probe runs once per backend (see :mod:`._known_bugs`)."""
    reason = _known_bugs.xfail_reason(futures_backend, _known_bugs.named_by(request.function))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
