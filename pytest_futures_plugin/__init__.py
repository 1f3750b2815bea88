"""pytest-futures: an executable specification and test fixtures for concurrent.futures executors.

The engine modules (backends, controls, scheduler, clock, faults, report) will live in this
package and import neither pytest nor hypothesis; :mod:`pytest_futures_plugin.plugin` is the only
pytest adapter, loaded through the ``pytest11`` entry point ``futures``.
"""

from __future__ import annotations

__all__: list[str] = []
