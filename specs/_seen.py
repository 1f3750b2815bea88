"""Known bugs that are races: the spec that sees one decides, run by run.

A strict xfail (``@expects_known_bug``) suits a bug that shows every time; a race shows in some
runs only, and a strict xfail would then flip to a failure in the runs where it did not. So a
test that can see a racy known bug checks strictly, and where a check fails with exactly that
bug's behaviour it calls :func:`seen`: on a backend that can have the bug (its executor is built
from the bug's package, and the bug's probe, where it has one that can show it on demand, finds
it) the test ends as that known bug, an xfail naming the issue and what was seen; on any other
backend it fails with the same message. A run where the race did not show passes.

Inside a state machine a test must not end in the middle of an example: there the spec calls
:func:`note` instead, goes on with the example, and the test ends as the known bug after the
run (``_deviations.conclude``, which the test calls at its end).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import pytest

from . import _deviations, _known_bugs

if TYPE_CHECKING:
    from pytest_futures_plugin.backends import Backend


def seen(backend: Backend, key: str, what: str) -> NoReturn:
    """The spec has just seen *what*, the behaviour of the known bug *key*: end the test as
    that known bug where *backend* can have it, else fail with *what*.

    Raises KeyError naming *key* if no such bug is registered.
    """
    bug = _known_bugs.REGISTRY.get(key)
    if bug is None:
        raise KeyError(f"no known bug {key!r}; registered: {', '.join(_known_bugs.REGISTRY)}")
    if _known_bugs.shows(backend, key):
        pytest.xfail(f"{bug.reason}; seen in this run: {what}")
    raise AssertionError(what)


def note(backend: Backend, key: str, what: str) -> bool:
    """Inside a state machine: the spec has just seen *what*, the behaviour of the known bug
    *key*, or the input that triggers a bug whose probe shows it on demand on *backend*
    (a call that would then hang is not waited for: a wait that runs out the bound ends the
    example as hung). Where *backend* has the bug, record it for the test's end and return
    True (the spec skips the check); else return False (the spec checks as usual).

    Raises KeyError naming *key* if no such bug is registered.
    """
    bug = _known_bugs.REGISTRY.get(key)
    if bug is None:
        raise KeyError(f"no known bug {key!r}; registered: {', '.join(_known_bugs.REGISTRY)}")
    if not _known_bugs.shows(backend, key):
        return False
    _deviations.record_known_bug(backend, key, f"{bug.reason}; seen in this run: {what}")
    return True
