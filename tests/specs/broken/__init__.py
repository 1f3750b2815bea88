"""Deliberately broken executors, each with the one bug a spec area must catch.

Every module here declares ``CASES``: a list of :class:`Broken`, one per broken factory, naming
the factory as ``MODULE:ATTR`` (what ``--executor`` takes), the spec module that must catch it,
and what is wrong. ``tests/specs/test_specs_catch_broken.py`` runs that spec module against each
factory in a subprocess and expects it to fail; the same specs pass on the stdlib (the main
suite runs them with ``--executor=all``).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil


@dataclasses.dataclass(frozen=True)
class Broken:
    """One broken executor: ``factory`` is ``MODULE:ATTR``; ``spec`` a file under specs/."""

    factory: str
    spec: str
    bug: str
    race_only: bool = False
    """The bug shows only under some interleavings (the deterministic scheduler's target)."""
    known_bug: str = ""
    """The issue of the known bug (``specs/_known_bugs.py``) this executor shows: known bugs
    are recognised by behaviour, so it is caught as a KNOWN-BUG cell naming it, not a FAIL."""


def all_cases() -> list[Broken]:
    """Every ``CASES`` entry of every module of this package, in module order."""
    cases: list[Broken] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cases.extend(getattr(module, "CASES", []))
    return cases
