"""The conformance report: spec area x backend, each cell PASS, FAIL, KNOWN-BUG, DEVIATION or SKIP.

The pytest adapter turns each phase report of a test into a :class:`Status` with
:func:`classify`, records it in a :class:`Matrix` under the test's spec area and backend, prints
:meth:`Matrix.render` in the terminal summary and, for ``--futures-report=PATH``, calls
:meth:`Matrix.write_json`. Reports of several runs (one per Python version, say) are read back
with :meth:`Matrix.from_json` and combined with :meth:`Matrix.merge`.

How one phase report is classified (pytest's ``report.outcome``, ``report.when`` and
``getattr(report, "wasxfail", None)``, plus the deviation the backend declares for the area):

=============================================  =========================================
phase report                                   status
=============================================  =========================================
failed setup, call or teardown                 FAIL (errors and strict XPASS included)
passed call                                    PASS (a non-strict XPASS conformed too)
passed setup or teardown                       None: it carries no information
skipped, expected failure naming an issue      KNOWN-BUG, unless the issue is only the one
                                               the declared deviation itself cites
skipped, expected failure, deviation declared  DEVIATION
skipped, expected failure, neither             FAIL: an xfail that explains nothing hides
                                               a nonconformance (the contract allows only
                                               the five statuses, so it gets no sixth)
skipped otherwise                              SKIP (a capability is absent)
=============================================  =========================================

A test may report several phases (its call passes, its teardown fails): within a cell each test
counts once, with its most severe status, and the cell takes the most severe status of its
tests: FAIL > KNOWN-BUG > DEVIATION > PASS > SKIP. A cell is thus SKIP only if all its tests
skipped. Nothing here imports pytest or hypothesis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import platform
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

SCHEMA = "pytest-futures-report/1"
"""The ``schema`` of :meth:`Matrix.to_json`; additions keep ``/1``, renames or removals bump it."""


class Status(str, enum.Enum):
    """The status of a test or of a cell; the value is how reports spell it."""

    PASS = "PASS"
    FAIL = "FAIL"
    KNOWN_BUG = "KNOWN-BUG"
    DEVIATION = "DEVIATION"
    SKIP = "SKIP"

    def __str__(self) -> str:
        """The report spelling, on every Python (3.11 changed str() of mixed-in enums)."""
        return self.value


# Severity decides which status a test or a cell shows; the higher one wins.
_SEVERITY = {
    Status.SKIP: 0,
    Status.PASS: 1,
    Status.DEVIATION: 2,
    Status.KNOWN_BUG: 3,
    Status.FAIL: 4,
}

_ISSUE_RE = re.compile(
    r"https?://github\.com/[\w.-]+/[\w.-]+/(?:issues|pull)/\d+|\b(?:gh|bpo)-\d+\b"
    r"|(?<![\w.])pytest_futures_plugin\.upstream\.\w+",
    re.IGNORECASE,
)

_CPYTHON_ISSUE = re.compile(r"https?://github\.com/python/cpython/issues/(\d+)", re.IGNORECASE)


def issue_refs(text: str) -> list[str]:
    """The upstream issues *text* names, in order, without repeats.

    Recognises ``gh-N`` and ``bpo-N`` in any case (returned lower-case, as CPython's changelog
    spells them) and ``https://github.com/OWNER/REPO/issues/N`` or ``.../pull/N`` (returned as
    written, up to the number), except that CPython's issue pages are its ``gh-N``; and
    ``pytest_futures_plugin.upstream.NAME``, the module of a reproduction of a bug found by
    the specs that no upstream issue reports yet, shipped with pytest-futures so that
    ``python -m`` runs it from any install (returned as written).
    """
    refs: dict[str, None] = {}
    for match in _ISSUE_RE.finditer(text):
        ref = match.group()
        cpython = _CPYTHON_ISSUE.match(ref)
        if cpython is not None:  # the link of a gh-N given next to it: the same issue
            ref = f"gh-{cpython.group(1)}"
        refs.setdefault(ref if ref[:4].lower() in ("http", "pyte") else ref.lower())
    return list(refs)


def classify(
    outcome: str, *, when: str, xfail_reason: str | None = None, deviation: str | None = None
) -> Status | None:
    """The :class:`Status` of one phase report, or None when the phase tells nothing.

    *outcome* is ``"passed"``, ``"failed"`` or ``"skipped"``; *when* is ``"setup"``, ``"call"``
    or ``"teardown"``; *xfail_reason* is the report's ``wasxfail`` (None when the test was not an
    expected failure; ``""`` is an xfail without reason); *deviation* is the non-empty reason the
    backend declares for the test's area, if any. The rules are in the module docstring.
    Raises ValueError for an unknown outcome or phase.
    """
    if outcome not in ("passed", "failed", "skipped"):
        raise ValueError(f"outcome must be 'passed', 'failed' or 'skipped', not {outcome!r}")
    if when not in ("setup", "call", "teardown"):
        raise ValueError(f"when must be 'setup', 'call' or 'teardown', not {when!r}")
    if outcome == "failed":
        return Status.FAIL
    if outcome == "passed":
        return Status.PASS if when == "call" else None
    if xfail_reason is None:
        return Status.SKIP
    # The xfail a deviation causes may cite the deviation's own issue: that is still the deviation.
    if set(issue_refs(xfail_reason)) - set(issue_refs(deviation or "")):
        return Status.KNOWN_BUG
    return Status.DEVIATION if deviation else Status.FAIL


@dataclasses.dataclass(frozen=True)
class Result:
    """One test's outcome in a cell: its id, its most severe status, and that status's detail."""

    test_id: str
    status: Status
    detail: str = ""


class Cell:
    """The results of one spec area on one backend (see :meth:`Matrix.cell`)."""

    def __init__(self, area: str, backend: str) -> None:
        """An empty cell; :meth:`Matrix.record` fills it."""
        self.area = area
        self.backend = backend
        self._results: dict[str, Result] = {}
        self._warnings: dict[str, None] = {}

    @property
    def warnings(self) -> list[str]:
        """The warnings the backend emitted during the cell's tests, without repeats: shown,
        never turned into failures (they are for the executor's author to read)."""
        return list(self._warnings)

    def _add(self, result: Result) -> None:
        old = self._results.get(result.test_id)
        if old is None or _SEVERITY[result.status] > _SEVERITY[old.status]:
            self._results[result.test_id] = result

    @property
    def results(self) -> list[Result]:
        """One :class:`Result` per test, in first-recorded order."""
        return list(self._results.values())

    @property
    def status(self) -> Status:
        """The most severe status of the cell's tests."""
        return max((r.status for r in self._results.values()), key=_SEVERITY.__getitem__)

    @property
    def counts(self) -> dict[Status, int]:
        """How many tests have each status (every status present, zeros included)."""
        counts = dict.fromkeys(Status, 0)
        for result in self._results.values():
            counts[result.status] += 1
        return counts

    @property
    def issues(self) -> list[str]:
        """The issues named by the details of the cell's KNOWN-BUG tests, without repeats."""
        known = (r.detail for r in self._results.values() if r.status is Status.KNOWN_BUG)
        return list(dict.fromkeys(ref for detail in known for ref in issue_refs(detail)))

    def having(self, status: Status) -> list[Result]:
        """The results with *status*, in first-recorded order."""
        return [r for r in self._results.values() if r.status is status]


def _environment() -> dict[str, Any]:
    """What every report says about where it ran."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": sys.platform,
    }


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _one_line(text: str, limit: int = 120) -> str:
    # A detail may be a whole multi-line failure report; a footnote shows its first line.
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _strings(data: Mapping[str, Any], key: str) -> list[str]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{key!r} must be a list of strings, not {value!r}")
    return value


class Matrix:
    """The conformance matrix of a run: spec areas as rows, backends as columns.

    *backends* and *areas* fix the order of columns and rows (e.g. the ``--executor`` order, or
    the collection order, which stays stable under pytest-xdist where reports arrive in any
    order); names first seen in :meth:`record` are appended, and a listed name without results
    shows ``-`` cells. *meta* (JSON-serialisable) adds to the report's ``meta``, which starts with
    the interpreter's version and the platform. Not thread-safe: one adapter records into it.
    """

    def __init__(
        self,
        *,
        backends: Iterable[str] = (),
        areas: Iterable[str] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """An empty matrix; see the class docstring."""
        self.meta: dict[str, Any] = {**_environment(), **(meta or {})}
        self._backends = dict.fromkeys(backends)
        self._areas = dict.fromkeys(areas)
        self._cells: dict[tuple[str, str], Cell] = {}

    @property
    def backends(self) -> list[str]:
        """The column names, in order."""
        return list(self._backends)

    @property
    def areas(self) -> list[str]:
        """The row names, in order."""
        return list(self._areas)

    @property
    def conformant(self) -> bool:
        """True when no cell is FAIL."""
        return all(cell.status is not Status.FAIL for cell in self._cells.values())

    def record(
        self,
        area: str,
        backend: str,
        status: Status | None,
        *,
        test_id: str,
        detail: str = "",
        warnings: Iterable[str] = (),
    ) -> None:
        """Add one classified outcome of the test *test_id* to the cell (*area*, *backend*).

        *detail* is what the footnotes and the JSON show: the xfail reason for KNOWN-BUG (the
        cell's issues are parsed from it), the deviation for DEVIATION, a one-line failure for
        FAIL, the skip reason for SKIP. A test recorded twice keeps its most severe status.
        *warnings* (one line each) are what the backend warned of during the test. A *status*
        of None (a phase that tells nothing, such as a passing teardown) adds only *warnings*,
        to the cell if it has results already (the same test's earlier phases made it).
        Raises ValueError for an empty name or a status that is not a :class:`Status`.
        """
        if not (area and backend and test_id):
            raise ValueError(f"empty name: area={area!r} backend={backend!r} test_id={test_id!r}")
        if status is None:
            if (area, backend) in self._cells:
                self._cells[area, backend]._warnings.update(dict.fromkeys(warnings))
            return
        status = Status(status)
        self._areas.setdefault(area)
        self._backends.setdefault(backend)
        cell = self._cells.setdefault((area, backend), Cell(area, backend))
        cell._add(Result(test_id, status, detail))
        cell._warnings.update(dict.fromkeys(warnings))

    def cell(self, area: str, backend: str) -> Cell | None:
        """The cell (*area*, *backend*), or None when nothing was recorded there."""
        return self._cells.get((area, backend))

    def cells(self) -> list[Cell]:
        """The cells that have results, row by row in the table's order."""
        return [c for a in self._areas for b in self._backends if (c := self.cell(a, b))]

    def _counts(self) -> dict[Status, int]:
        totals = dict.fromkeys(Status, 0)
        for cell in self._cells.values():
            for status, count in cell.counts.items():
                totals[status] += count
        return totals

    def render(self, *, max_ids: int = 5, width: int = 100) -> list[str]:
        """The terminal summary: a title, the table, then footnotes, as lines without newlines.

        Each column is as wide as the wider of its backend's name and its cells. When the table
        would exceed *width* columns, the headers become ``[1]``, ``[2]``, ... and a legend
        below the table spells them out. Footnotes follow, FAIL cells first (at most *max_ids*
        failing tests each, then ``and K more``), then KNOWN-BUG cells with their issues, then
        DEVIATION cells with the declared deviations, then the backends whose spec machines ran
        a declared share of the examples (``meta["examples"]``), then warnings.
        """
        counts = self._counts()
        if not self._cells:
            return ["pytest-futures conformance: no results recorded"]
        tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        shape = f"{_plural(len(self._areas), 'area')} x {_plural(len(self._backends), 'backend')}"
        total = _plural(sum(counts.values()), "test")
        lines = [f"pytest-futures conformance: {shape}, {total} ({tally})"]
        areas, backends = self.areas, self.backends
        grid = [[str(c.status) if (c := self.cell(a, b)) else "-" for b in backends] for a in areas]
        area_width = max(map(len, ["area", *areas]))

        def widths(headers: list[str]) -> list[int]:
            return [max(len(h), *(len(row[i]) for row in grid)) for i, h in enumerate(headers)]

        headers, legend = backends, []
        if area_width + sum(2 + w for w in widths(headers)) > width:
            headers = [f"[{i}]" for i in range(1, len(backends) + 1)]
            legend = ["", *(f"{h} {b}" for h, b in zip(headers, backends))]
        column_widths = widths(headers)

        def row(first: str, cells: list[str]) -> str:
            padded = (f"  {c:<{w}}" for c, w in zip(cells, column_widths))
            return (f"{first:<{area_width}}" + "".join(padded)).rstrip()

        lines.append(row("area", headers))
        lines.append(row("-" * area_width, ["-" * w for w in column_widths]))
        lines.extend(row(area, cells) for area, cells in zip(areas, grid))
        lines.extend(legend)
        notes = self._footnotes(max_ids)
        return lines + (["", *notes] if notes else [])

    def _footnotes(self, max_ids: int) -> list[str]:
        notes: list[str] = []
        cells = self.cells()
        for cell in (c for c in cells if c.status is Status.FAIL):
            failing = cell.having(Status.FAIL)
            notes.append(
                f"FAIL {cell.area} on {cell.backend}: {_plural(len(failing), 'failing test')}"
            )
            for result in failing[:max_ids]:
                detail = _one_line(result.detail)
                notes.append(f"  {result.test_id}" + (f" - {detail}" if detail else ""))
            if len(failing) > max_ids:
                notes.append(f"  and {len(failing) - max_ids} more")
        notes.extend(
            f"KNOWN-BUG {c.area} on {c.backend}: {', '.join(c.issues)}"
            for c in cells
            if c.status is Status.KNOWN_BUG
        )
        for cell in (c for c in cells if c.status is Status.DEVIATION):
            reasons = dict.fromkeys(_one_line(r.detail) for r in cell.having(Status.DEVIATION))
            text = "; ".join(r for r in reasons if r) or "declared by the backend"
            notes.append(f"DEVIATION {cell.area} on {cell.backend}: {text}")
        shared: dict[str, None] = {}
        for run in self._runs():
            shares = run.get("examples")
            for backend, share in shares.items() if isinstance(shares, dict) else ():
                shared.setdefault(
                    f"EXAMPLES on {backend}: each spec machine ran {share.get('share', 0):.0%} of "
                    f"the profile's examples ({share.get('reason') or 'declared by the backend'}"
                    "); --futures-examples=full runs them all"
                )
        notes.extend(shared)
        for cell in (c for c in cells if c.warnings):
            notes.append(f"WARNINGS {cell.area} on {cell.backend}: {len(cell.warnings)}")
            notes.extend(f"  {_one_line(w)}" for w in cell.warnings[:max_ids])
            if len(cell.warnings) > max_ids:
                notes.append(f"  and {len(cell.warnings) - max_ids} more")
        return notes

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data, schema :data:`SCHEMA`::

            {"schema": "pytest-futures-report/1",
             "backends": ["thread", ...], "areas": ["future", ...],      # column and row order
             "cells": [                                   # cells with results, row by row
               {"area": "future", "backend": "stdlib-thread", "status": "KNOWN-BUG",
                "counts": {"PASS": 11, "FAIL": 0, "KNOWN-BUG": 1, "DEVIATION": 0, "SKIP": 0},
                "issues": ["gh-132063"], "warnings": [],
                "tests": [{"id": "specs/test_future.py::...", "status": "PASS", "detail": ""}]}],
             "summary": {"tests": 12, "counts": {...}, "cells": {<status>: cells}, "conformant": true},
             "meta": {"python": "3.11.9", "implementation": "CPython", "platform": "linux", ...}}

        ``summary`` and each cell's ``status``, ``counts`` and ``issues`` derive from ``tests``;
        :meth:`from_json` recomputes them. A merged report's ``meta`` is ``{"runs": [meta, ...]}``.
        """
        cells = self.cells()
        counts = self._counts()
        cell_counts = dict.fromkeys((s.value for s in Status), 0)
        for cell in cells:
            cell_counts[cell.status.value] += 1
        return {
            "schema": SCHEMA,
            "backends": self.backends,
            "areas": self.areas,
            "cells": [
                {
                    "area": cell.area,
                    "backend": cell.backend,
                    "status": cell.status.value,
                    "counts": {s.value: n for s, n in cell.counts.items()},
                    "issues": cell.issues,
                    "warnings": cell.warnings,
                    "tests": [
                        {"id": r.test_id, "status": r.status.value, "detail": r.detail}
                        for r in cell.results
                    ],
                }
                for cell in cells
            ],
            "summary": {
                "tests": sum(counts.values()),
                "counts": {s.value: n for s, n in counts.items()},
                "cells": cell_counts,
                "conformant": self.conformant,
            },
            "meta": dict(self.meta),
        }

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` to *path*, creating its directory, atomically.

        A reader sees the old file or the complete new one, never a partial write: the data
        goes to a temporary file beside *path*, is flushed to disk, then renamed over it.
        """
        target = os.path.abspath(os.fspath(path))
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        text = json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        temporary = os.path.join(
            directory, f".{os.path.basename(target)}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        )
        # os.open with 0o666 lets the umask set the mode, as for any file (mkstemp forces 0600).
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Matrix:
        """The matrix that :meth:`to_json` described as *data* (its ``meta`` unchanged).

        Raises ValueError naming the problem when *data* is not a :data:`SCHEMA` report.
        """
        schema = data.get("schema")
        if schema != SCHEMA:
            raise ValueError(f"not a {SCHEMA} report: its schema is {schema!r}")
        try:
            matrix = cls(backends=_strings(data, "backends"), areas=_strings(data, "areas"))
            matrix.meta = dict(data["meta"])
            for cell in data["cells"]:
                warnings = _strings(cell, "warnings") if "warnings" in cell else []
                for test in cell["tests"]:
                    matrix.record(
                        cell["area"],
                        cell["backend"],
                        Status(test["status"]),
                        test_id=test["id"],
                        detail=test["detail"],
                        warnings=warnings,
                    )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed {SCHEMA} report: {exc!r}") from exc
        return matrix

    def _runs(self) -> list[dict[str, Any]]:
        runs = self.meta.get("runs")
        return [dict(run) for run in runs] if isinstance(runs, list) else [dict(self.meta)]

    def merge(self, other: Matrix) -> Matrix:
        """A new matrix with the results of both; neither input changes.

        Rows and columns keep this matrix's order, then *other*'s new names. A test present in
        both keeps its most severe status, so the merge of per-Python runs shows, per cell, the
        worst any run saw. ``meta`` becomes ``{"runs": [...]}``, every input run's meta in order.
        """
        merged = Matrix(
            backends=[*self._backends, *other._backends], areas=[*self._areas, *other._areas]
        )
        merged.meta = {"runs": self._runs() + other._runs()}
        for cell in [*self._cells.values(), *other._cells.values()]:
            for result in cell.results:
                merged.record(
                    cell.area,
                    cell.backend,
                    result.status,
                    test_id=result.test_id,
                    detail=result.detail,
                    warnings=cell.warnings,
                )
        return merged
