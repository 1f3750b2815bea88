"""The pytest adapter of pytest-futures, loaded through the ``pytest11`` entry point ``futures``.

For now it only announces itself in the report header; the plugin issue fills in the
``--executor`` option, the ``executor_backend``/``executor``/``futures_api`` fixtures, markers
and the conformance report. Keep this module cheap to import: pytest loads it in every
project where pytest-futures is installed.
"""

from __future__ import annotations

from importlib import metadata

_DISTRIBUTION = "pytest-futures"


def _version() -> str:
    """The installed distribution's version, or ``"unknown"`` when run from a bare checkout."""
    try:
        return metadata.version(_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def pytest_report_header() -> str:
    """Name the plugin and its version in pytest's header, e.g. ``pytest-futures 0.1.0.dev0``."""
    return f"{_DISTRIBUTION} {_version()}"
