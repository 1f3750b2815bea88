"""The listener that records a run's spec test reports in its conformance matrix.

:mod:`.plugin` registers one :class:`MatrixRecorder` per run; pytest calls its
``pytest_runtest_logreport`` with each phase report. The reports are read by attribute only
(``user_properties``, ``outcome``, ``when``, ``wasxfail``, ``longrepr``, ...), so this module,
like the rest of the engine, imports no pytest.
"""

from __future__ import annotations

from typing import Any

from . import report as _report

__all__ = ["MatrixRecorder"]


class MatrixRecorder:
    """Records every labelled test report in the run's matrix (on the xdist controller too,
    which sees the workers' reports but not their items)."""

    def __init__(self, matrix: _report.Matrix) -> None:
        self.matrix = matrix

    def pytest_runtest_logreport(self, report: Any) -> None:
        properties = dict(report.user_properties)
        area, backend = properties.get("futures_area"), properties.get("futures_backend")
        if not area or not backend:
            return
        status = _report.classify(
            report.outcome,
            when=report.when,
            xfail_reason=getattr(report, "wasxfail", None),
            deviation=str(properties.get("futures_deviation") or "") or None,
        )
        if status is _report.Status.DEVIATION:
            detail = str(properties["futures_deviation"])
        else:
            detail = str(getattr(report, "wasxfail", "") or _short(report))
        self.matrix.record(  # status None (a passing setup or teardown): only its warnings
            str(area),
            str(backend),
            status,
            test_id=report.nodeid,
            detail=detail,
            warnings=_warnings_of(report.user_properties),
        )


def _warnings_of(properties: list[tuple[str, object]]) -> list[str]:
    """The warnings recorded in a test's phases so far (``futures_warnings``, one entry per
    phase that warned), as strings."""
    return [
        str(w)
        for key, recorded in properties
        if key == "futures_warnings" and isinstance(recorded, list)
        for w in recorded
    ]


def _short(report: Any) -> str:
    """One line on why *report* skipped or failed."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        return str(getattr(crash, "message", "")) if crash is not None else report.head_line or ""
    return ""
