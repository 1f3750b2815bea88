"""pytest-futures: an executable specification and test fixtures for concurrent.futures executors.

The parts, each importable on its own (importing this package imports none of them: pytest
loads it in every project where pytest-futures is installed):

- :mod:`.plugin`: the only pytest adapter (options, fixtures, markers, report), loaded through
  the ``pytest11`` entry point ``futures``.
- :mod:`.backends`: what ``--executor`` names: :class:`~.backends.Backend`, the module-level
  API that goes with it, probed capabilities, :class:`~.backends.ExecutorFactory`.
- :mod:`.controls`: gates, latches and recorders that work across threads and processes.
- :mod:`.tasks` and :mod:`.faults`: tasks to submit, and faults to inject, through any pool.
- :mod:`.guards`: the hang guard and the leak check.
- :mod:`.scheduler` and :mod:`.clock`: the deterministic scheduler and its virtual time.
- :mod:`.linearizability`: histories of calls on one future and their checker.
- :mod:`.report`: the conformance matrix (spec area x backend).
- ``pytest_futures_plugin.specs``: the specification itself, shipped for ``--futures-specs``.

Everything but :mod:`.plugin` and the specs is the *engine*: it imports neither pytest nor
hypothesis (a test scans every module for such imports), so it serves plain unittest or
Hypothesis code as well.
"""

from __future__ import annotations

__all__ = ["LONG_WAIT"]

LONG_WAIT = 60.0
"""Seconds a wait that must succeed may take: only a bug, or a hung task, waits so long.

The one bound of a "long wait" everywhere: the controls' default timeout, a backend's
capability probe, ``faults.kill_worker``, a parallel section's threads, the specs' waits.
Below the hang guard's default bound (120 s), so a lost future fails with the wait that names
it rather than with the guard."""


def _adopt(namespace: dict[str, object]) -> None:
    """Give the public classes a subpackage re-exports the subpackage as their module, so that
    tracebacks, reprs and pickles name the path users import, not a private module. Functions
    keep theirs: a scheduler controls a module by the name its functions carry."""
    package = str(namespace["__name__"])
    names: list[str] = namespace["__all__"]  # type: ignore[assignment]
    for name in names:
        value = namespace[name]
        if isinstance(value, type) and value.__module__.startswith(f"{package}."):
            value.__module__ = package
