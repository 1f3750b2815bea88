"""Deviations declared per property: the spec adopts the documented behaviour for exactly that
property and checks every other property of the area strictly.

A backend's ``deviations`` map a key to the documented reason (with the upstream link). A key is

* ``AREA/PROPERTY`` -- one property. Where PROPERTY is the name of a spec test without its
  ``test_`` prefix (``broken-pools/a_dead_worker_breaks_the_pool``), the plugin makes that test
  alone a non-strict xfail at collection; where it is one of :data:`PROPERTIES`, a property
  checked inside a state machine, the machine asks :func:`declared` and, where the backend
  declares it, checks the documented behaviour instead (strictly) and calls :func:`observed`
  when it saw it; the test then ends as that DEVIATION (:meth:`Deviations.conclude`) unless
  something else failed or a known bug is expected.
* ``AREA`` -- the whole area, for a deviation that takes away what every test of the area
  relies on (a ``SynchronousExecutor`` has no pending calls to hold anywhere).

Nothing here is run without pytest's fixture: called outside it, :func:`observed` records
nothing and :func:`declared` still answers.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pytest_futures_plugin.backends import Backend

PROPERTIES: dict[str, str] = {
    "shutdown/wait_false_cancels_pending": (
        "shutdown(wait=False) cancels the futures of the calls not done yet (the calls "
        "themselves may still run); the other shutdown properties hold"
    ),
    "exceptions/calls_are_serialized": (
        "each call's arguments and exception are serialized even in threads: an exception "
        "comes back as an equal copy and an unpicklable argument or exception fails its own "
        "call, as on a process pool (results are not: an unpicklable one is returned)"
    ),
    "exceptions/submit_pickles_the_arguments": (
        "submit() pickles the call's arguments before it returns: an unpicklable argument "
        "makes submit() raise an exception instead of failing the call's future; the pool "
        "goes on working"
    ),
}
"""The properties checked inside a state machine that a backend may declare a deviation for,
each with what the spec then checks instead."""

_LOCK = threading.Lock()
_ACTIVE: list[Deviations] = []


class Deviations:
    """The declared deviations one test saw (the ``futures_deviations`` fixture)."""

    def __init__(self, backend: Backend, node: pytest.Item) -> None:
        self.backend = backend
        self.node = node
        self.seen: dict[str, str] = {}
        self.known_bugs: dict[str, str] = {}  # known bugs the spec saw (``_seen.note``)

    def conclude(self) -> None:
        """Called at the end of a test that passed its checks: if a declared deviation was
        observed, end the test as that DEVIATION (an xfail whose reason is the declared one).
        A test already expecting a known bug is left to its strict xfail. A racy known bug
        the spec saw (``_seen.note``) comes first: KNOWN-BUG outranks DEVIATION."""
        if self.known_bugs:
            pytest.xfail("; ".join(self.known_bugs.values()))
        if not self.seen or self.node.get_closest_marker("xfail") is not None:
            return
        reason = "; ".join(dict.fromkeys(self.seen.values()))
        self.node.user_properties.append(("futures_deviation", reason))
        pytest.xfail(f"deviation: {reason}")


def declared(backend: Backend, key: str) -> bool:
    """Whether *backend* declares the deviation *key* (one of :data:`PROPERTIES`).

    Raises KeyError naming *key* if no spec checks such a property.
    """
    if key not in PROPERTIES:
        raise KeyError(f"no spec property {key!r}; known: {', '.join(sorted(PROPERTIES))}")
    return bool(backend.deviations.get(key))


def observed(backend: Backend, key: str) -> None:
    """The spec saw the declared deviation *key* of *backend* happen (see :func:`declared`)."""
    if not declared(backend, key):
        raise AssertionError(f"{backend.name} declares no deviation {key!r}")
    with _LOCK:
        for deviations in _ACTIVE:
            if deviations.backend.name == backend.name:
                deviations.seen[key] = str(backend.deviations[key])


def record_known_bug(backend: Backend, key: str, reason: str) -> None:
    """Record the known bug *key* the running test saw on *backend* (see ``_seen.note``):
    the first sighting's *reason* is kept."""
    with _LOCK:
        for deviations in _ACTIVE:
            if deviations.backend.name == backend.name:
                deviations.known_bugs.setdefault(key, reason)


def conclude(backend: Backend) -> None:
    """At the end of a test (using the ``futures_deviations`` fixture) that passed its checks:
    end it as the DEVIATION it observed, if any (see :meth:`Deviations.conclude`)."""
    with _LOCK:
        active = [d for d in _ACTIVE if d.backend.name == backend.name]
    for deviations in active:
        deviations.conclude()


@pytest.fixture
def futures_deviations(
    request: pytest.FixtureRequest, futures_backend: Backend
) -> Iterator[Deviations]:
    """The deviations this test observes; the test calls :func:`conclude` at its end."""
    deviations = Deviations(futures_backend, request.node)
    with _LOCK:
        _ACTIVE.append(deviations)
    try:
        yield deviations
    finally:
        with _LOCK:
            _ACTIVE.remove(deviations)
