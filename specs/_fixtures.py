"""The fixtures the spec modules share (imported by name into each module that uses one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from . import _known_bugs
from ._harness import expecting_failure

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pytest_futures_plugin.backends import Backend


def _declared_xfail(node: pytest.Item) -> str | None:
    """The reason of an unconditional xfail marker on *node* (a deviation the backend
    declares, applied at collection), if it has one."""
    for marker in node.iter_markers("xfail"):
        if not marker.args and "condition" not in marker.kwargs:
            return str(marker.kwargs.get("reason", "xfail"))
    return None


@pytest.fixture
def futures_known_bugs(request: pytest.FixtureRequest, futures_backend: Backend) -> Iterator[None]:
    """Make the test a strict xfail, naming the issue and its link, where the backend under
    test shows one of the known bugs the test names (``@expects_known_bug(...)``); else the
    test runs strictly. Each bug's probe runs once per backend (see :mod:`._known_bugs`).

    A test so expected to fail (by a known bug, or by a deviation its backend declares) runs
    its machine without shrinking (:func:`._harness.expecting_failure`): it stops at its
    first failing example instead of re-running it to shrink a failure already known."""
    reason = _known_bugs.xfail_reason(futures_backend, _known_bugs.named_by(request.function))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    else:
        reason = _declared_xfail(request.node)
    if reason is None:
        yield
        return
    with expecting_failure(reason):
        yield
